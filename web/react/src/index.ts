export { useTaskProgress, type UseTaskProgressOptions } from './useTaskProgress.js';
export { DownloadProgressBar, type DownloadProgressBarProps } from './DownloadProgressBar.js';
export {
  DraftdlProvider,
  useDraftdlConfig,
  type DraftdlConfig,
  type DraftdlProviderProps,
} from './context.js';
export {
  TaskProgressClient,
  type ReconnectOptions,
  type TaskProgressOptions,
} from './client.js';
export {
  FINAL_STATUSES,
  IN_PROGRESS_STATUSES,
  deriveState,
  type TaskProgressState,
} from './state.js';
export { formatBytes, formatEta, formatSpeed } from './format.js';
export type * from './types.js';
