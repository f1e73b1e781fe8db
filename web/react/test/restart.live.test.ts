/** The server is killed (-9) while a throttled download runs and started again on the same
 * port and data folder: the hook notices, retries with backoff while nothing answers,
 * reconnects, reads the snapshot again and reaches isCompleted with the exact figures. */
import { cleanup } from '@testing-library/react';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';

import type { TransportKind } from '../src/types.js';
import { liveOptions, renderProgress, until } from './helpers/hook.js';
import { DraftdlServer, FileServer, job } from './helpers/servers.js';

const TOKEN = 'react-restart-token';
const SIZE = 3 * 1024 * 1024; // at 384 KiB/s: about 8 s, so the kill lands mid-download

let files: FileServer;
const servers: DraftdlServer[] = [];

beforeAll(async () => {
  files = await FileServer.start();
});

afterAll(async () => {
  await Promise.all([...servers.map((s) => s.stop()), files?.stop()]);
});

afterEach(() => cleanup());

describe.each<TransportKind>(['socketio', 'sse'])('over %s', (transport) => {
  test('recovers after the server restarts mid-task', async () => {
    const server = await DraftdlServer.start({ token: TOKEN });
    servers.push(server);
    const url = files.url(`/slow/3M/${transport}-restart.mp4?rate=384K`);
    const taskId = await server.submit(job([url], `restart ${transport}`));
    const { options, fetched } = liveOptions(server.baseUrl, transport, TOKEN);
    const { result, history } = renderProgress(taskId, options);
    const taskUrl = `${server.baseUrl}/api/tasks/${taskId}`;

    await until(
      () => result.current.isConnected && (result.current.progress?.downloaded_size ?? 0) > 0,
      'downloading',
    );
    const before = result.current;
    expect(before.status).toBe('downloading');
    expect(before.progress?.downloaded_size).toBeLessThan(SIZE / 2);
    expect(fetched).toEqual([taskUrl]);

    await server.kill();
    await until(() => !result.current.isConnected, 'disconnected', 10_000);
    expect(result.current.isStopped).toBe(false);
    expect(result.current.status).toBe('downloading'); // what it knew stays shown
    // While nothing answers it keeps trying (backoff from 100 ms, at most 500 ms apart).
    await until(() => fetched.length >= 4, 'retrying', 10_000, () => fetched);
    expect(result.current.connectionError).toMatch(/^snapshot: /);
    expect(result.current.isConnected).toBe(false);

    await server.start();
    await until(() => result.current.isConnected, 'reconnected', 15_000, () => result.current);
    await until(() => result.current.isCompleted, 'completed', 40_000, () => result.current);

    const state = result.current;
    const view = await server.task(taskId);
    expect(state.progress).toEqual({
      total_files: 1,
      completed_files: 1,
      failed_files: 0,
      active_files: 0,
      total_size: SIZE,
      downloaded_size: SIZE,
      progress_percent: 100,
      download_speed: 0,
      eta_seconds: 0,
    });
    expect(state.files.map((f) => [f.status, f.completed_length])).toEqual([['complete', SIZE]]);
    expect(state.task).toEqual(view);
    expect([state.isConnected, state.isStopped, state.connectionError]).toEqual([
      false,
      true,
      null,
    ]);

    // Two connected stretches with the gap between; every attempt read the snapshot first.
    const stretches = history.reduce(
      (n, s, i) => n + (s.isConnected && !history[i - 1]?.isConnected ? 1 : 0),
      0,
    );
    expect(stretches).toBe(2);
    expect(fetched.every((u) => u === taskUrl)).toBe(true);
    expect(history.some((s) => !s.isConnected && s.status === 'downloading')).toBe(true);
  });
});
