/** A new taskId for a mounted hook or progress bar, without a server (a fake fetch and
 * EventSource): no render for the new id carries the old task's state, and the bar reports
 * the new task's own completion, once. */
import { act, cleanup, render, renderHook, waitFor } from '@testing-library/react';
import { StrictMode } from 'react';
import { afterEach, expect, test, vi } from 'vitest';

import { DownloadProgressBar } from '../src/DownloadProgressBar.js';
import type { TaskProgressState } from '../src/state.js';
import { useTaskProgress } from '../src/useTaskProgress.js';
import { FakeDraftdl, view } from './helpers/fake.js';

afterEach(() => cleanup());

const flush = () => act(() => new Promise<void>((r) => setTimeout(r, 20)));

test('the hook: the first render for a new taskId is the initial state, not the old task', async () => {
  const fake = new FakeDraftdl();
  fake.tasks.set('task-a', view('task-a', 'completed'));
  fake.tasks.set('task-b', view('task-b', 'downloading'));
  const options = fake.options();
  const renders: Array<{ taskId: string; state: TaskProgressState }> = [];
  const { result, rerender } = renderHook(
    ({ taskId }: { taskId: string }) => {
      const state = useTaskProgress(taskId, options);
      renders.push({ taskId, state });
      return state;
    },
    { initialProps: { taskId: 'task-a' } },
  );
  await waitFor(() => expect(result.current.isCompleted).toBe(true));
  expect(result.current.task?.task_id).toBe('task-a');

  const before = renders.length;
  rerender({ taskId: 'task-b' });
  // The render of the rerender itself, before any effect ran for task-b.
  const first = renders[before];
  expect(first?.taskId).toBe('task-b');
  expect(first?.state).toMatchObject({ status: null, task: null, isCompleted: false, isStopped: false });

  // task-b: its snapshot (downloading), its stream, then its final event.
  await waitFor(() => expect(fake.openStreams('task-b')).toHaveLength(1));
  expect(fake.emit('task-b', 'task_subscribed', { task: view('task-b', 'downloading') })).toBe(1);
  await waitFor(() => expect(result.current.isConnected).toBe(true));
  expect(result.current).toMatchObject({ status: 'downloading', progressPercent: 40 });
  expect(fake.complete('task-b')).toBe(1);
  await waitFor(() => expect(result.current.isCompleted).toBe(true));
  expect(result.current.task).toEqual(view('task-b', 'completed'));

  const forB = renders.filter((r) => r.taskId === 'task-b');
  expect(forB.every((r) => r.state.task === null || r.state.task.task_id === 'task-b')).toBe(true);
  expect(forB.every((r) => r.state.status !== 'completed' || r.state.task?.task_id === 'task-b')).toBe(
    true,
  );

  // Following nothing: the initial state at once.
  rerender({ taskId: '' });
  expect(renders[renders.length - 1]?.state).toMatchObject({ status: null, task: null });
});

test('the hook: another transport for the same task starts from the initial state too', async () => {
  const fake = new FakeDraftdl();
  fake.tasks.set('task-a', view('task-a', 'completed'));
  const renders: TaskProgressState[] = [];
  const { result, rerender } = renderHook(
    ({ transport }: { transport: 'sse' | 'socketio' }) => {
      const state = useTaskProgress('task-a', { ...fake.options(), transport });
      renders.push(state);
      return state;
    },
    { initialProps: { transport: 'sse' as 'sse' | 'socketio' } },
  );
  await waitFor(() => expect(result.current.isCompleted).toBe(true));
  const before = renders.length;
  // A finished task opens no connection, so Socket.IO is never dialled here.
  rerender({ transport: 'socketio' });
  expect(renders[before]).toMatchObject({ status: null, task: null });
  await waitFor(() => expect(result.current.isCompleted).toBe(true));
});

test('the bar: a new taskId reports the new task’s completion once, never the old state', async () => {
  const fake = new FakeDraftdl();
  fake.tasks.set('task-a', view('task-a', 'completed'));
  fake.tasks.set('task-b', view('task-b', 'downloading'));
  const onComplete = vi.fn<(state: TaskProgressState) => void>();
  const onError = vi.fn<(message: string, state: TaskProgressState) => void>();
  const bar = (taskId: string) => (
    <StrictMode>
      <DownloadProgressBar taskId={taskId} {...fake.options()} onComplete={onComplete} onError={onError} />
    </StrictMode>
  );
  const { container, rerender } = render(bar('task-a'));
  await waitFor(() => expect(onComplete).toHaveBeenCalledTimes(1));
  expect(onComplete.mock.calls[0]?.[0].task?.task_id).toBe('task-a');

  rerender(bar('task-b'));
  await flush();
  expect(onComplete).toHaveBeenCalledTimes(1); // not again, with task-a's state, for task-b
  await waitFor(() => expect(fake.openStreams('task-b')).toHaveLength(1));
  fake.emit('task-b', 'task_subscribed', { task: view('task-b', 'downloading') });
  await waitFor(() =>
    expect((container.firstElementChild as HTMLElement).dataset.status).toBe('downloading'),
  );
  expect(onComplete).toHaveBeenCalledTimes(1);

  fake.complete('task-b');
  await waitFor(() => expect(onComplete).toHaveBeenCalledTimes(2));
  expect(onComplete.mock.calls[1]?.[0].task).toEqual(view('task-b', 'completed'));
  expect(onComplete.mock.calls[1]?.[0].draftPath).toBe('/drafts/task-b');
  await flush();
  expect(onComplete).toHaveBeenCalledTimes(2);
  expect(onError).not.toHaveBeenCalled();
  expect((container.firstElementChild as HTMLElement).dataset.status).toBe('completed');
});

test('the bar: a failed old task is not reported as the new task’s error', async () => {
  const fake = new FakeDraftdl();
  fake.tasks.set('task-a', view('task-a', 'failed', { error_message: 'a: not found (HTTP 404)' }));
  fake.tasks.set('task-b', view('task-b', 'completed'));
  const onComplete = vi.fn<(state: TaskProgressState) => void>();
  const onError = vi.fn<(message: string, state: TaskProgressState) => void>();
  const bar = (taskId: string) => (
    <DownloadProgressBar taskId={taskId} {...fake.options()} onComplete={onComplete} onError={onError} />
  );
  const { rerender } = render(bar('task-a'));
  await waitFor(() => expect(onError).toHaveBeenCalledTimes(1));
  expect(onError.mock.calls[0]?.[0]).toBe('a: not found (HTTP 404)');
  rerender(bar('task-b'));
  await waitFor(() => expect(onComplete).toHaveBeenCalledTimes(1));
  expect(onComplete.mock.calls[0]?.[0].task?.task_id).toBe('task-b');
  await flush();
  expect(onError).toHaveBeenCalledTimes(1);
});
