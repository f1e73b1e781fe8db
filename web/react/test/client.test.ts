/** TaskProgressClient's retries, without a server: a fetch that fails, and fake timers. */
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';

import { TaskProgressClient } from '../src/client.js';
import type { TaskProgressState } from '../src/state.js';

beforeEach(() => {
  vi.useFakeTimers();
  vi.spyOn(Math, 'random').mockReturnValue(0.5); // no jitter: the delays are exact
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

function unreachable() {
  const started = Date.now();
  const times: number[] = [];
  const fetch = vi.fn(async (input: string | URL | Request) => {
    times.push(Date.now() - started);
    void input;
    throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:9') });
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, times };
}

describe('reconnecting', () => {
  test('waits twice as long after each failure, up to the longest delay', async () => {
    const { fetch, times } = unreachable();
    const client = new TaskProgressClient('t1', {
      baseUrl: 'http://127.0.0.1:9/',
      fetch,
      reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
    });
    const states: TaskProgressState[] = [];
    client.subscribe((s) => states.push(s));
    client.start();
    await vi.advanceTimersByTimeAsync(2_300);
    expect(times).toEqual([0, 100, 300, 700, 1_200, 1_700, 2_200]);
    const state = client.getState();
    expect(state.connectionError).toBe(
      'snapshot: fetch failed: connect ECONNREFUSED 127.0.0.1:9',
    );
    expect([state.isConnected, state.isStopped, state.status]).toEqual([false, false, null]);
    client.stop();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(times).toHaveLength(7); // stopped: no attempt after stop()
  });

  test('gives up after maxAttempts failures in a row', async () => {
    const { fetch, times } = unreachable();
    const client = new TaskProgressClient('t2', {
      baseUrl: 'http://127.0.0.1:9',
      fetch,
      reconnect: { initialDelayMs: 1_000, maxAttempts: 3 },
    });
    client.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(times).toEqual([0, 1_000, 3_000]);
    expect(client.getState()).toMatchObject({
      isStopped: true,
      isConnected: false,
      errorMessage:
        'gave up after 3 failed connection attempts: snapshot: fetch failed: connect ECONNREFUSED 127.0.0.1:9',
    });
  });

  test('the snapshot is asked for at the right place, with the token', async () => {
    const fetch = vi.fn(async () => new Response('{"detail":"task \'a b\' not found"}', { status: 404 }));
    const client = new TaskProgressClient('a b', {
      baseUrl: 'http://h:1/draftdl//',
      token: 's3cret',
      fetch: fetch as unknown as typeof globalThis.fetch,
    });
    client.start();
    await vi.advanceTimersByTimeAsync(10);
    expect(fetch).toHaveBeenCalledTimes(1);
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('http://h:1/draftdl/api/tasks/a%20b');
    expect(init.headers).toEqual({ Accept: 'application/json', Authorization: 'Bearer s3cret' });
    expect(client.getState()).toMatchObject({
      status: 'not_found',
      errorMessage: "task 'a b' not found",
      isStopped: true,
    });
  });
});
