import { describe, expect, test } from 'vitest';

import { INITIAL_FACTS, deriveState, mergeEvent, type ClientFacts } from '../src/state.js';
import type { TaskStatus, TaskView } from '../src/types.js';

function view(status: TaskView['status'], extra: Partial<TaskView> = {}): TaskView {
  return {
    task_id: 'abc',
    title: 't',
    status,
    priority: 0,
    max_download_limit: null,
    message: null,
    progress: {
      total_files: 2,
      completed_files: 1,
      failed_files: 0,
      active_files: 1,
      total_size: 3_000_000,
      downloaded_size: 1_500_000,
      progress_percent: 50,
      download_speed: 1_200_000,
      eta_seconds: 185,
    },
    draft_path: null,
    error_message: null,
    created_at: '2024-01-01T00:00:00+00:00',
    updated_at: '2024-01-01T00:00:01+00:00',
    completed_at: null,
    files: [],
    ...extra,
  };
}

const facts = (task: TaskView | null, more: Partial<ClientFacts> = {}): ClientFacts => ({
  ...INITIAL_FACTS,
  task,
  ...more,
});

describe('deriveState', () => {
  test('nothing known yet', () => {
    const state = deriveState(INITIAL_FACTS);
    expect(state).toMatchObject({
      status: null,
      progress: null,
      files: [],
      draftPath: null,
      errorMessage: null,
      isConnected: false,
      isInProgress: false,
      isCompleted: false,
      isFailed: false,
      isStopped: false,
      progressPercent: 0,
      speedText: '',
      etaText: '',
    });
  });

  const flags: [TaskStatus, boolean, boolean, boolean, boolean][] = [
    // status, isInProgress, isCompleted, isFailed, isCancelled
    ['pending', true, false, false, false],
    ['downloading', true, false, false, false],
    ['paused', true, false, false, false],
    ['processing', true, false, false, false],
    ['completed', false, true, false, false],
    ['failed', false, false, true, false],
    ['cancelled', false, false, false, true],
    ['deleted', false, false, false, false],
    ['not_found', false, false, false, false],
  ];
  test.each(flags)('%s', (status, inProgress, completed, failed, cancelled) => {
    const state = deriveState(facts(view('pending'), { status }));
    expect(state.status).toBe(status);
    expect(state.isInProgress).toBe(inProgress);
    expect(state.isCompleted).toBe(completed);
    expect(state.isFailed).toBe(failed);
    expect(state.isCancelled).toBe(cancelled);
  });

  test('speed and time left only while downloading', () => {
    const downloading = deriveState(facts(view('downloading')));
    expect(downloading.speedText).toBe('1.2 MB/s');
    expect(downloading.etaText).toBe('3m 05s');
    expect(downloading.progressPercent).toBe(50);
    for (const status of ['pending', 'paused', 'processing', 'completed'] as const) {
      const state = deriveState(facts(view(status)));
      expect([state.speedText, state.etaText]).toEqual(['', '']);
    }
  });

  test('no time left when the server cannot tell', () => {
    const task = view('downloading');
    task.progress.eta_seconds = null;
    expect(deriveState(facts(task)).etaText).toBe('');
  });

  test('a completed task is at 100 %; percents stay within 0–100', () => {
    expect(deriveState(facts(view('completed'))).progressPercent).toBe(100);
    const over = view('downloading');
    over.progress.progress_percent = 140;
    expect(deriveState(facts(over)).progressPercent).toBe(100);
  });

  test("the task's error message wins over the client's own", () => {
    const failed = view('failed', { error_message: 'http://x/a: not found (HTTP 404)' });
    expect(deriveState(facts(failed, { localError: 'other' })).errorMessage).toBe(
      'http://x/a: not found (HTTP 404)',
    );
    expect(deriveState(facts(null, { localError: "task 'x' not found" })).errorMessage).toBe(
      "task 'x' not found",
    );
  });
});

describe('mergeEvent', () => {
  test('an event changes what it carries and keeps the rest', () => {
    const files = [
      {
        url: 'http://x/a',
        file_path: '/d/a',
        file_name: 'a',
        gid: '0123456789abcdef',
        status: 'active' as const,
        total_length: 10,
        completed_length: 5,
        download_speed: 1,
        attempts: 1,
        next_retry_at: null,
        error_code: null,
        error_message: null,
      },
    ];
    const task = view('downloading', { files });
    const merged = mergeEvent(task, {
      task_id: 'abc',
      status: 'completed',
      draft_path: '/drafts/t_abc',
    });
    expect(merged?.status).toBe('completed');
    expect(merged?.draft_path).toBe('/drafts/t_abc');
    expect(merged?.title).toBe('t');
    expect(merged?.files).toBe(files);
    const fresh = mergeEvent(task, { task_id: 'abc', files: [] });
    expect(fresh?.files).toEqual([]);
    expect(mergeEvent(null, { task_id: 'abc' })).toBeNull();
  });
});
