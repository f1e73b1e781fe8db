import { formatEta, formatSpeed } from './format.js';
import type { TaskEventData, TaskFile, TaskProgressInfo, TaskStatus, TaskView } from './types.js';

/** Statuses after which nothing more comes for the task (the hook stops following it). */
export const FINAL_STATUSES: ReadonlySet<TaskStatus> = new Set<TaskStatus>([
  'completed',
  'failed',
  'cancelled',
  'deleted',
  'not_found',
]);

/** Statuses of a task still on its way: waiting, downloading, held or building its draft. */
export const IN_PROGRESS_STATUSES: ReadonlySet<TaskStatus> = new Set<TaskStatus>([
  'pending',
  'downloading',
  'paused',
  'processing',
]);

/** What `useTaskProgress` returns. */
export interface TaskProgressState {
  /** null until the first snapshot arrives. */
  status: TaskStatus | null;
  progress: TaskProgressInfo | null;
  files: TaskFile[];
  draftPath: string | null;
  /** The task's `error_message`; or why the task cannot be followed (unknown id, a refused
   * token). */
  errorMessage: string | null;
  /** Subscribed to the task's live events right now. */
  isConnected: boolean;
  /** pending, downloading, paused or processing. */
  isInProgress: boolean;
  isCompleted: boolean;
  isFailed: boolean;
  /** 0–100. */
  progressPercent: number;
  /** `1.2 MB/s` while downloading, else `''`. */
  speedText: string;
  /** `12s`, `3m 05s` while downloading and the server can tell, else `''`. */
  etaText: string;
  // Beyond the original plan's names:
  /** The step the server is at or failed in (`download failed`, `deadline passed`, …). */
  message: string | null;
  isCancelled: boolean;
  /** Nothing more will come: a final event, an unknown task, a refused token, or the
   * reconnect attempts ran out. */
  isStopped: boolean;
  /** Why the last connection attempt failed (null while connected or never tried). */
  connectionError: string | null;
  /** The latest view of the task as the server sent it (title, times, priority, …). */
  task: TaskView | null;
}

/** What the client keeps; everything else is derived from it. */
export interface ClientFacts {
  task: TaskView | null;
  status: TaskStatus | null;
  localError: string | null;
  isConnected: boolean;
  isStopped: boolean;
  connectionError: string | null;
}

export const INITIAL_FACTS: ClientFacts = {
  task: null,
  status: null,
  localError: null,
  isConnected: false,
  isStopped: false,
  connectionError: null,
};

export function isFinalStatus(status: TaskStatus | null | undefined): boolean {
  return status !== null && status !== undefined && FINAL_STATUSES.has(status);
}

/** An event's fields over the view held so far: the files only when the event lists them. */
export function mergeEvent(task: TaskView | null, data: TaskEventData): TaskView | null {
  if (task === null) return null;
  const { files, ...rest } = data;
  const merged: TaskView = { ...task };
  for (const [key, value] of Object.entries(rest)) {
    if (value !== undefined) (merged as unknown as Record<string, unknown>)[key] = value;
  }
  merged.files = files ?? task.files;
  return merged;
}

export function deriveState(facts: ClientFacts): TaskProgressState {
  const { task } = facts;
  const status = facts.status ?? task?.status ?? null;
  const progress = task?.progress ?? null;
  const downloading = status === 'downloading' && progress !== null;
  const percent = progress ? Math.min(100, Math.max(0, progress.progress_percent || 0)) : 0;
  return {
    status,
    progress,
    files: task?.files ?? [],
    draftPath: task?.draft_path ?? null,
    errorMessage: task?.error_message ?? facts.localError,
    isConnected: facts.isConnected,
    isInProgress: status !== null && IN_PROGRESS_STATUSES.has(status),
    isCompleted: status === 'completed',
    isFailed: status === 'failed',
    progressPercent: status === 'completed' ? 100 : percent,
    speedText: downloading ? formatSpeed(progress.download_speed) : '',
    etaText: downloading ? formatEta(progress.eta_seconds) : '',
    message: task?.message ?? null,
    isCancelled: status === 'cancelled',
    isStopped: facts.isStopped,
    connectionError: facts.connectionError,
    task,
  };
}

export const INITIAL_STATE: TaskProgressState = deriveState(INITIAL_FACTS);
