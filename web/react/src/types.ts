/** Payload shapes of the draftdl API and of its live events (`TaskState.view()` / `event()`). */

/** A task's status as the server reports it; `deleted` comes with `task_deleted`. */
export type ServerTaskStatus =
  | 'pending'
  | 'downloading'
  | 'paused'
  | 'processing'
  | 'completed'
  | 'failed'
  | 'cancelled'
  | 'deleted';

/** The server's statuses, plus `not_found`: the server does not know the task id (404). */
export type TaskStatus = ServerTaskStatus | 'not_found';

export type FileStatus = 'waiting' | 'active' | 'paused' | 'complete' | 'error' | 'removed';

/** `progress` of a task: counts and bytes over all of its files. */
export interface TaskProgressInfo {
  total_files: number;
  completed_files: number;
  failed_files: number;
  active_files: number;
  total_size: number;
  downloaded_size: number;
  /** 0–100, never going backwards. */
  progress_percent: number;
  /** Bytes per second over the active files. */
  download_speed: number;
  /** null when it cannot be told (a size unknown, no speed yet). */
  eta_seconds: number | null;
}

export interface TaskFile {
  url: string;
  file_path: string;
  file_name: string;
  gid: string;
  status: FileStatus;
  total_length: number;
  completed_length: number;
  download_speed: number;
  attempts: number;
  next_retry_at: string | null;
  error_code: number | null;
  error_message: string | null;
}

/** `GET /api/tasks/{id}`, and the `task` of `subscribed` / `task_subscribed`. */
export interface TaskView {
  task_id: string;
  title: string;
  status: ServerTaskStatus;
  priority: number;
  max_download_limit: string | null;
  message: string | null;
  progress: TaskProgressInfo;
  draft_path: string | null;
  error_message: string | null;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
  files: TaskFile[];
}

/** What `task_progress`, `task_status_changed` and the final events carry: the view without
 * title and times; `files` only for tasks small enough to send often (never on final events). */
export interface TaskEventData {
  task_id: string;
  status?: ServerTaskStatus;
  priority?: number;
  max_download_limit?: string | null;
  message?: string | null;
  progress?: TaskProgressInfo;
  draft_path?: string | null;
  error_message?: string | null;
  updated_at?: string | null;
  files?: TaskFile[];
}

export type TransportKind = 'socketio' | 'sse';

/** The parts of an EventSource the hook uses: the browser's, or one from npm in Node. */
export interface EventSourceLike {
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  close(): void;
}

export type EventSourceConstructor = new (url: string) => EventSourceLike;
