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
  // The state is kept with the inputs it was made for: the render right after any of them
  // changed (before the effect below has run) gets the initial state, never the old task's.
  const key = JSON.stringify([taskId || null, baseUrl ?? null, transport, token || null]);
  const [held, setHeld] = useState<{ key: string; state: TaskProgressState }>({
    key,
    state: INITIAL_STATE,
  });

  useEffect(() => {
    if (!taskId || baseUrl === undefined) return undefined;
    const client = new TaskProgressClient(taskId, {
      ...rest.current,
      baseUrl,
      transport,
      ...(token ? { token } : {}),
    });
    const unsubscribe = client.subscribe((state) => setHeld({ key, state }));
    client.start();
    return () => {
      unsubscribe();
      client.stop();
    };
  }, [key]); // the four inputs, as the key holds them

  return held.key === key ? held.state : INITIAL_STATE;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, v]) => v !== undefined),
  ) as Partial<T>;
}
