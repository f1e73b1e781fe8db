/** useTaskProgress against a real draftdl server (with its aria2c, and a token) downloading
 * real bytes from the repository's file server, over Socket.IO and over SSE. */
import { cleanup } from '@testing-library/react';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';

import type { TaskProgressState } from '../src/state.js';
import type { TransportKind } from '../src/types.js';
import { liveOptions, renderProgress, until } from './helpers/hook.js';
import { DraftdlServer, FileServer, job } from './helpers/servers.js';

const TOKEN = 'react-live-token';
const K = 1024;

let files: FileServer;
let server: DraftdlServer;

beforeAll(async () => {
  files = await FileServer.start();
  server = await DraftdlServer.start({ token: TOKEN });
});

afterAll(async () => {
  await Promise.all([server?.stop(), files?.stop()]);
});

afterEach(() => cleanup());

const SPEED = /^\d+(\.\d)? (B|kB|MB)\/s$/;
const ETA = /^(\d+s|\d+m \d\ds)$/;

describe.each<TransportKind>(['socketio', 'sse'])('over %s', (transport) => {
  test('reaches isCompleted with the exact sizes and file counts', async () => {
    const urls = [
      files.url(`/size/300K/${transport}-a.mp4`),
      files.url(`/size/1M/${transport}-b.mp4`),
      files.url(`/slow/512K/${transport}-c.mp4?rate=256K`),
    ];
    const total = 300 * K + 1024 * K + 512 * K;
    const taskId = await server.submit(job(urls, `complete ${transport}`));
    const { options, fetched } = liveOptions(server.baseUrl, transport, TOKEN);
    const { result, history } = renderProgress(taskId, options);

    await until(() => result.current.isCompleted, 'completed', 30_000, () => result.current);
    const state = result.current;
    const view = await server.task(taskId);
    expect(view.status).toBe('completed');
    expect(state.status).toBe('completed');
    expect(state.progress).toEqual({
      total_files: 3,
      completed_files: 3,
      failed_files: 0,
      active_files: 0,
      total_size: total,
      downloaded_size: total,
      progress_percent: 100,
      download_speed: 0,
      eta_seconds: 0,
    });
    expect(state.progressPercent).toBe(100);
    expect(state.files.map((f) => [f.url, f.status, f.total_length, f.completed_length])).toEqual([
      [urls[0], 'complete', 300 * K, 300 * K],
      [urls[1], 'complete', 1024 * K, 1024 * K],
      [urls[2], 'complete', 512 * K, 512 * K],
    ]);
    expect(state.draftPath).toBe(view.draft_path);
    expect(state.draftPath).toMatch(new RegExp(`complete ${transport}_${taskId.slice(0, 8)}$`));
    expect(state.task).toEqual(view); // the final state is the server's, files included
    expect(state.errorMessage).toBeNull();
    expect([state.isInProgress, state.isFailed, state.isConnected, state.isStopped]).toEqual([
      false,
      false,
      false,
      true,
    ]);
    expect([state.speedText, state.etaText]).toEqual(['', '']);

    // It followed the live events (not only snapshots): connected while downloading, with
    // figures for people, the percent never going backwards.
    const live = history.filter((s) => s.isConnected && s.status === 'downloading');
    expect(live.length).toBeGreaterThan(0);
    expect(live.some((s) => SPEED.test(s.speedText))).toBe(true);
    for (const s of live) {
      expect(s.speedText).toMatch(SPEED);
      if (s.etaText) expect(s.etaText).toMatch(ETA);
    }
    // No state says completed while its files still show the download.
    for (const s of history.filter((h) => h.isCompleted)) {
      expect(s.files.map((f) => f.status)).toEqual(['complete', 'complete', 'complete']);
    }
    const percents = history.map((s) => s.progressPercent);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    // One snapshot when it connected, one after the final event: nothing polled.
    const taskUrl = `${server.baseUrl}/api/tasks/${taskId}`;
    expect(fetched).toEqual([taskUrl, taskUrl]);
  });

  test('reports the failure of a 404 URL', async () => {
    const missing = files.url(`/status/404/${transport}-missing.mp4`);
    const fine = files.url(`/size/64K/${transport}-fine.mp4`);
    const taskId = await server.submit(job([fine, missing], `fail ${transport}`));
    const { options } = liveOptions(server.baseUrl, transport, TOKEN);
    const { result } = renderProgress(taskId, options);

    await until(() => result.current.isStopped, 'stopped', 30_000, () => result.current);
    const state = result.current;
    const view = await server.task(taskId);
    expect(view.status).toBe('failed');
    expect(state.status).toBe('failed');
    expect([state.isFailed, state.isCompleted, state.isInProgress, state.isCancelled]).toEqual([
      true,
      false,
      false,
      false,
    ]);
    expect(state.errorMessage).toBe(view.error_message);
    expect(state.errorMessage).toContain(missing);
    expect(state.errorMessage).toContain('not found (HTTP 404)');
    expect(state.message).toBe('download failed');
    expect(state.progress?.failed_files).toBe(1);
    expect(state.progress?.total_files).toBe(2);
    const byUrl = Object.fromEntries(state.files.map((f) => [f.url, f.status]));
    expect(byUrl[missing]).toBe('error');
    expect(state.draftPath).toBeNull();
    expect(state.task).toEqual(view);
  });

  test('shows a paused task as in progress, and follows it on after resume', async () => {
    const url = files.url(`/slow/1M/${transport}-paused.mp4?rate=256K`);
    const taskId = await server.submit(job([url], `pause ${transport}`));
    const { options } = liveOptions(server.baseUrl, transport, TOKEN);
    const { result } = renderProgress(taskId, options);
    const control = async (action: string) => {
      const resp = await fetch(`${server.baseUrl}/api/tasks/${taskId}/${action}`, {
        method: 'POST',
        headers: server.headers(),
      });
      expect(resp.status, await resp.text()).toBe(200);
    };

    await until(
      () => result.current.isConnected && (result.current.progress?.downloaded_size ?? 0) > 0,
      'downloading',
    );
    await control('pause');
    await until(() => result.current.status === 'paused', 'paused');
    const paused: TaskProgressState = result.current;
    expect([paused.isInProgress, paused.isConnected, paused.isStopped]).toEqual([
      true,
      true,
      false,
    ]);
    expect([paused.speedText, paused.etaText]).toEqual(['', '']);
    await control('resume');
    await until(() => result.current.isCompleted, 'completed', 30_000, () => result.current);
    expect(result.current.progress?.downloaded_size).toBe(1024 * K);
  });

  test('a finished task gives its snapshot and nothing more', async () => {
    const taskId = await server.submit(job([files.url(`/size/10K/${transport}-done.mp4`)]));
    const view = await server.waitTask(taskId, (t) => t.status === 'completed');
    const { options, fetched } = liveOptions(server.baseUrl, transport, TOKEN);
    const { result, history } = renderProgress(taskId, options);

    await until(() => result.current.isStopped, 'stopped');
    expect(result.current.task).toEqual(view);
    expect(result.current.isCompleted).toBe(true);
    expect(result.current.progress?.downloaded_size).toBe(10 * K);
    expect(history.some((s) => s.isConnected)).toBe(false);
    expect(fetched).toEqual([`${server.baseUrl}/api/tasks/${taskId}`]);
  });

  test('an unknown task id is not_found, without retrying', async () => {
    const { options, fetched } = liveOptions(server.baseUrl, transport, TOKEN);
    const { result } = renderProgress('0123456789abcdef', options);

    await until(() => result.current.isStopped, 'stopped');
    expect(result.current.status).toBe('not_found');
    expect(result.current.errorMessage).toBe("task '0123456789abcdef' not found");
    expect([result.current.isFailed, result.current.isInProgress]).toEqual([false, false]);
    await new Promise((r) => setTimeout(r, 400)); // longer than a retry's delay
    expect(fetched.length).toBe(1);
  });

  test('a wrong token stops it with the reason', async () => {
    const taskId = await server.submit(job([files.url(`/size/1K/${transport}-token.mp4`)]));
    const { options, fetched } = liveOptions(server.baseUrl, transport, 'wrong');
    const { result } = renderProgress(taskId, options);

    await until(() => result.current.isStopped, 'stopped');
    expect(result.current.status).toBeNull();
    expect(result.current.errorMessage).toMatch(/\(HTTP 401\)$/);
    expect(result.current.isConnected).toBe(false);
    await new Promise((r) => setTimeout(r, 400));
    expect(fetched.length).toBe(1);
  });
});

test('a Socket.IO connection the server refuses stops it, without retrying', async () => {
  const taskId = await server.submit(job([files.url('/slow/256K/refused.mp4?rate=64K')]));
  const { options } = liveOptions(server.baseUrl, 'socketio', 'wrong');
  let snapshots = 0;
  // The snapshot is read with the right token; only the socket gets the wrong one.
  options.fetch = (input, init) => {
    snapshots += 1;
    return fetch(input, { ...init, headers: server.headers() });
  };
  const { result, history } = renderProgress(taskId, options);

  await until(() => result.current.isStopped, 'stopped', 10_000, () => result.current);
  expect(result.current.errorMessage).toBe('socket.io: missing or wrong API token');
  expect(result.current.status).not.toBeNull(); // the snapshot was read
  expect(history.some((s) => s.isConnected)).toBe(false);
  await new Promise((r) => setTimeout(r, 400));
  expect(snapshots).toBe(1);
});
