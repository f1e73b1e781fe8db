import { createContext, useContext, type ReactNode } from 'react';

import type { TaskProgressOptions } from './client.js';

/** Connection settings shared by every hook and progress bar below a `DraftdlProvider`. */
export type DraftdlConfig = Partial<TaskProgressOptions>;

const DraftdlContext = createContext<DraftdlConfig>({});

export interface DraftdlProviderProps extends DraftdlConfig {
  children?: ReactNode;
}

/** `<DraftdlProvider baseUrl="http://127.0.0.1:8000" transport="sse" token={token}>`: the
 * defaults for `useTaskProgress` and `DownloadProgressBar` below it (their own options win). */
export function DraftdlProvider({ children, ...config }: DraftdlProviderProps): ReactNode {
  const outer = useContext(DraftdlContext);
  return (
    <DraftdlContext.Provider value={{ ...outer, ...config }}>{children}</DraftdlContext.Provider>
  );
}

export function useDraftdlConfig(): DraftdlConfig {
  return useContext(DraftdlContext);
}
