/** DownloadProgressBar on its own, over a stand-in hook: a state that belongs to another
 * task than the bar's `taskId` is never reported for it (whatever the hook returns). */
import { cleanup, render } from '@testing-library/react';
import { afterEach, beforeEach, expect, test, vi } from 'vitest';

import { DownloadProgressBar } from '../src/DownloadProgressBar.js';
import { deriveState, INITIAL_FACTS, INITIAL_STATE, type TaskProgressState } from '../src/state.js';
import { useTaskProgress } from '../src/useTaskProgress.js';
import { view } from './helpers/fake.js';

vi.mock('../src/useTaskProgress.js', () => ({ useTaskProgress: vi.fn() }));
const hook = vi.mocked(useTaskProgress);

const ended = (task: ReturnType<typeof view>): TaskProgressState =>
  deriveState({ ...INITIAL_FACTS, task, isStopped: true });

beforeEach(() => hook.mockReset());
afterEach(() => cleanup());

test('the old task’s final state, still returned for a new taskId, is not reported', () => {
  const onComplete = vi.fn<(state: TaskProgressState) => void>();
  const onError = vi.fn<(message: string, state: TaskProgressState) => void>();
  const bar = (taskId: string) => (
    <DownloadProgressBar taskId={taskId} baseUrl="http://x" onComplete={onComplete} onError={onError} />
  );
  const doneA = ended(view('task-a', 'completed'));
  hook.mockReturnValue(doneA);
  const { rerender } = render(bar('task-a'));
  expect(onComplete.mock.calls).toEqual([[doneA]]);

  rerender(bar('task-b')); // the hook has not caught up yet
  expect(onComplete).toHaveBeenCalledTimes(1);
  hook.mockReturnValue(ended(view('task-a', 'failed', { error_message: 'boom' })));
  rerender(bar('task-b'));
  expect(onError).not.toHaveBeenCalled();

  hook.mockReturnValue(INITIAL_STATE);
  rerender(bar('task-b'));
  const doneB = ended(view('task-b', 'completed'));
  hook.mockReturnValue(doneB);
  rerender(bar('task-b'));
  rerender(bar('task-b'));
  expect(onComplete.mock.calls).toEqual([[doneA], [doneB]]);
  expect(onError).not.toHaveBeenCalled();
});

test('a final state without a task (an unknown id) is still reported', () => {
  const onError = vi.fn<(message: string, state: TaskProgressState) => void>();
  const notFound = deriveState({
    ...INITIAL_FACTS,
    status: 'not_found',
    localError: "task 'nope' not found",
    isStopped: true,
  });
  hook.mockReturnValue(notFound);
  render(<DownloadProgressBar taskId="nope" baseUrl="http://x" onError={onError} />);
  expect(onError.mock.calls).toEqual([["task 'nope' not found", notFound]]);
});
