import { renderHook, waitFor } from '@testing-library/react';
import { EventSource } from 'eventsource';
import { expect } from 'vitest';

import type { TaskProgressState } from '../../src/state.js';
import type { TransportKind } from '../../src/types.js';
import { useTaskProgress, type UseTaskProgressOptions } from '../../src/useTaskProgress.js';

/** The hook's options for a live server: the npm EventSource (Node has none), a fetch that
 * records which URLs it was asked for, quick reconnects. */
export function liveOptions(baseUrl: string, transport: TransportKind, token?: string) {
  const fetched: string[] = [];
  const options: UseTaskProgressOptions = {
    baseUrl,
    transport,
    ...(token ? { token } : {}),
    EventSource,
    reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
    fetch: (input, init) => {
      fetched.push(String(input));
      return fetch(input, init);
    },
  };
  return { options, fetched };
}

/** Renders the hook and keeps every state it returned, in order. */
export function renderProgress(taskId: string, options: UseTaskProgressOptions) {
  const history: TaskProgressState[] = [];
  const rendered = renderHook(() => {
    const state = useTaskProgress(taskId, options);
    if (history[history.length - 1] !== state) history.push(state);
    return state;
  });
  return { ...rendered, history };
}

export async function until(
  check: () => boolean,
  what: string,
  timeout = 30_000,
  describe: () => unknown = () => null,
): Promise<void> {
  await waitFor(
    () => {
      expect(check(), `${what}: ${JSON.stringify(describe())}`).toBe(true);
    },
    { timeout, interval: 25 },
  );
}
