/** DownloadProgressBar against a real draftdl server: its settings from a DraftdlProvider or
 * from its own props, under StrictMode (effects run twice), callbacks called once. */
import { cleanup, render, screen, waitFor } from '@testing-library/react';
import { EventSource } from 'eventsource';
import { StrictMode } from 'react';
import { afterAll, afterEach, beforeAll, expect, test, vi } from 'vitest';

import { DownloadProgressBar } from '../src/DownloadProgressBar.js';
import { DraftdlProvider } from '../src/context.js';
import type { TaskProgressState } from '../src/state.js';
import { DraftdlServer, FileServer, job } from './helpers/servers.js';

const TOKEN = 'react-component-token';
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

const field = (container: HTMLElement, name: string) =>
  container.querySelector(`[data-field="${name}"]`)?.textContent ?? null;

test('from a provider: details while downloading, onComplete once at the end', async () => {
  const urls = [files.url('/size/1M/bar-a.mp4'), files.url('/slow/512K/bar-b.mp4?rate=256K')];
  const taskId = await server.submit(job(urls, 'bar'));
  const onComplete = vi.fn<(state: TaskProgressState) => void>();
  const onError = vi.fn<(message: string, state: TaskProgressState) => void>();
  const { container } = render(
    <StrictMode>
      <DraftdlProvider baseUrl={server.baseUrl} transport="sse" token={TOKEN} EventSource={EventSource}>
        <DownloadProgressBar taskId={taskId} onComplete={onComplete} onError={onError} showDetails />
      </DraftdlProvider>
    </StrictMode>,
  );
  const root = container.firstElementChild as HTMLElement;

  await waitFor(() => expect(field(container, 'speed')).toMatch(/^\d+(\.\d)? (B|kB|MB)\/s$/), {
    timeout: 20_000,
    interval: 25,
  });
  expect(root.dataset.status).toBe('downloading');
  expect(screen.getByRole('progressbar').getAttribute('aria-valuenow')).not.toBe('100');

  await waitFor(() => expect(onComplete).toHaveBeenCalled(), { timeout: 30_000, interval: 25 });
  const view = await server.task(taskId);
  expect(onComplete).toHaveBeenCalledTimes(1);
  expect(onComplete.mock.calls[0]?.[0].task).toEqual(view);
  expect(onError).not.toHaveBeenCalled();
  expect(root.dataset.status).toBe('completed');
  expect(root.className).toBe('draftdl-progress draftdl-progress--completed');
  const bar = screen.getByRole('progressbar', { name: 'Download progress' });
  expect(bar.getAttribute('aria-valuenow')).toBe('100');
  expect(container.querySelector('.draftdl-progress__summary')?.textContent).toBe(
    'Completed 100.0%',
  );
  expect(field(container, 'size')).toBe('1.6 MB / 1.6 MB'); // 1,572,864 bytes
  expect(field(container, 'files')).toBe('2 / 2');
  expect(field(container, 'speed')).toBeNull();
  expect(field(container, 'eta')).toBeNull();
  expect(field(container, 'draft')).toBe(view.draft_path);
  expect(screen.queryByRole('alert')).toBeNull();
  await new Promise((r) => setTimeout(r, 300));
  expect(onComplete).toHaveBeenCalledTimes(1);
});

test('from its props: a 404 URL calls onError once and shows why', async () => {
  const missing = files.url('/status/404/bar-missing.mp4');
  const taskId = await server.submit(job([missing], 'bar 404'));
  const onComplete = vi.fn();
  const onError = vi.fn<(message: string, state: TaskProgressState) => void>();
  const { container } = render(
    <StrictMode>
      <DownloadProgressBar
        taskId={taskId}
        baseUrl={server.baseUrl}
        transport="socketio"
        token={TOKEN}
        onComplete={onComplete}
        onError={onError}
        className="mine"
      />
    </StrictMode>,
  );

  await waitFor(() => expect(onError).toHaveBeenCalled(), { timeout: 30_000, interval: 25 });
  const view = await server.task(taskId);
  expect(view.status).toBe('failed');
  expect(onError).toHaveBeenCalledTimes(1);
  expect(onError.mock.calls[0]?.[0]).toBe(view.error_message);
  expect(onError.mock.calls[0]?.[1].isFailed).toBe(true);
  expect(onComplete).not.toHaveBeenCalled();
  const root = container.firstElementChild as HTMLElement;
  expect(root.dataset.status).toBe('failed');
  expect(root.className).toBe('draftdl-progress draftdl-progress--failed mine');
  expect(screen.getByRole('alert').textContent).toBe(view.error_message);
  expect(screen.getByRole('alert').textContent).toContain('not found (HTTP 404)');
  expect(container.querySelector('.draftdl-progress__status')?.textContent).toBe('Failed');
  expect(container.querySelector('dl')).toBeNull(); // no details unless asked
});

test('an unknown task calls onError with the server’s answer', async () => {
  const onError = vi.fn<(message: string, state: TaskProgressState) => void>();
  render(
    <DraftdlProvider baseUrl={server.baseUrl} token={TOKEN}>
      <DownloadProgressBar taskId="feedfacefeedface" onError={onError} />
    </DraftdlProvider>,
  );
  await waitFor(() => expect(onError).toHaveBeenCalled(), { timeout: 10_000, interval: 25 });
  expect(onError.mock.calls).toHaveLength(1);
  expect(onError.mock.calls[0]?.[0]).toBe("task 'feedfacefeedface' not found");
  expect(onError.mock.calls[0]?.[1].status).toBe('not_found');
  expect(screen.getByRole('alert').textContent).toBe("task 'feedfacefeedface' not found");
});

test('a task finished before it mounts calls onComplete once', async () => {
  const taskId = await server.submit(job([files.url('/size/8K/bar-done.mp4')], 'done'));
  await server.waitTask(taskId, (t) => t.status === 'completed');
  const onComplete = vi.fn<(state: TaskProgressState) => void>();
  const onError = vi.fn();
  const bar = (transport: 'socketio' | 'sse') => (
    <StrictMode>
      <DraftdlProvider baseUrl={server.baseUrl} token={TOKEN} EventSource={EventSource}>
        <DownloadProgressBar
          taskId={taskId}
          transport={transport}
          onComplete={onComplete}
          onError={onError}
        />
      </DraftdlProvider>
    </StrictMode>
  );
  const { container, rerender } = render(bar('socketio'));
  await waitFor(() => expect(onComplete).toHaveBeenCalled(), { timeout: 10_000, interval: 25 });
  // Another transport for the same task starts over, and finds it completed again: the
  // callback is for the task, so it does not come twice.
  rerender(bar('sse'));
  await waitFor(() => expect(container.textContent).toContain('Completed'), { timeout: 10_000 });
  await new Promise((r) => setTimeout(r, 300));
  expect(onComplete).toHaveBeenCalledTimes(1);
  expect(onComplete.mock.calls[0]?.[0].progress?.downloaded_size).toBe(8 * K);
  expect(onError).not.toHaveBeenCalled();
});

test('a new taskId: the old task’s completion is not reported for it, the new one’s is, once', async () => {
  const first = await server.submit(job([files.url('/size/8K/bar-first.mp4')], 'first'));
  await server.waitTask(first, (t) => t.status === 'completed');
  const second = await server.submit(
    job([files.url('/slow/256K/bar-second.mp4?rate=256K')], 'second'),
  );
  const onComplete = vi.fn<(state: TaskProgressState) => void>();
  const onError = vi.fn();
  const bar = (taskId: string) => (
    <StrictMode>
      <DraftdlProvider baseUrl={server.baseUrl} token={TOKEN} transport="socketio">
        <DownloadProgressBar taskId={taskId} onComplete={onComplete} onError={onError} />
      </DraftdlProvider>
    </StrictMode>
  );
  const { container, rerender } = render(bar(first));
  await waitFor(() => expect(onComplete).toHaveBeenCalled(), { timeout: 10_000, interval: 25 });
  expect(onComplete.mock.calls[0]?.[0].task?.task_id).toBe(first);

  rerender(bar(second));
  await waitFor(() => expect(container.textContent).toContain('Downloading'), {
    timeout: 10_000,
    interval: 25,
  });
  expect(onComplete).toHaveBeenCalledTimes(1); // the first task's state, not for the second

  await waitFor(() => expect(onComplete).toHaveBeenCalledTimes(2), { timeout: 30_000, interval: 25 });
  const view = await server.task(second);
  expect(view.status).toBe('completed');
  expect(onComplete.mock.calls[1]?.[0].task).toEqual(view);
  await new Promise((r) => setTimeout(r, 300));
  expect(onComplete).toHaveBeenCalledTimes(2);
  expect(onError).not.toHaveBeenCalled();
});
