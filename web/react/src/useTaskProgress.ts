import { useEffect, useRef, useState } from 'react';

import { TaskProgressClient, type TaskProgressOptions } from './client.js';
import { useDraftdlConfig } from './context.js';
import { INITIAL_STATE, type TaskProgressState } from './state.js';

export type UseTaskProgressOptions = Partial<TaskProgressOptions>;

/**
 * Follows one task live: its snapshot on every (re)connect, then its events over Socket.IO
 * or SSE, reconnecting with backoff, until its final event. Options not given come from the
 * nearest `DraftdlProvider`; `baseUrl` is needed in one of the two. A new `taskId`,
 * `baseUrl`, `transport` or `token` starts over; pass `null` (or `''`) to follow nothing.
 */
export function useTaskProgress(
  taskId: string | null | undefined,
  options: UseTaskProgressOptions = {},
): TaskProgressState {
  const config = useDraftdlConfig();
  const merged: Partial<TaskProgressOptions> = { ...config, ...definedOnly(options) };
  const { baseUrl, transport = 'socketio', token } = merged;
  if (taskId && baseUrl === undefined) {
    throw new Error('useTaskProgress: no baseUrl (give it, or wrap in a DraftdlProvider)');
  }
  // The rest (reconnect delays, fetch, EventSource, socket options) is read when a
  // connection starts; changing it alone does not start over.
  const rest = useRef(merged);
  rest.current = merged;
  const [state, setState] = useState<TaskProgressState>(INITIAL_STATE);

  useEffect(() => {
    setState(INITIAL_STATE);
    if (!taskId || baseUrl === undefined) return undefined;
    const client = new TaskProgressClient(taskId, {
      ...rest.current,
      baseUrl,
      transport,
      ...(token ? { token } : {}),
    });
    const unsubscribe = client.subscribe(setState);
    client.start();
    return () => {
      unsubscribe();
      client.stop();
    };
  }, [taskId, baseUrl, transport, token]);

  return state;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, v]) => v !== undefined),
  ) as Partial<T>;
}
