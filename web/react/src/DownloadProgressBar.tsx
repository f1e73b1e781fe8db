import { useEffect, useRef, type CSSProperties, type ReactNode } from 'react';

import { formatBytes } from './format.js';
import type { TaskProgressState } from './state.js';
import type { TaskStatus } from './types.js';
import { useTaskProgress, type UseTaskProgressOptions } from './useTaskProgress.js';

export interface DownloadProgressBarProps extends UseTaskProgressOptions {
  taskId: string;
  /** Once, when the task completes (its draft is built). */
  onComplete?: (state: TaskProgressState) => void;
  /** Once, when the task ends any other way (failed, cancelled, deleted, unknown id, a
   * refused token, reconnecting given up), with the reason. */
  onError?: (message: string, state: TaskProgressState) => void;
  /** Sizes, files, speed, time left and the draft's folder under the bar. */
  showDetails?: boolean;
  className?: string;
  /** The bar's accessible name (default "Download progress"). */
  label?: string;
}

const STATUS_TEXT: Record<TaskStatus, string> = {
  pending: 'Waiting',
  downloading: 'Downloading',
  paused: 'Paused',
  processing: 'Building draft',
  completed: 'Completed',
  failed: 'Failed',
  cancelled: 'Cancelled',
  deleted: 'Deleted',
  not_found: 'Not found',
};

const BAR_COLOR: Partial<Record<TaskStatus, string>> = {
  completed: '#2e7d32',
  failed: '#c62828',
  cancelled: '#757575',
  deleted: '#757575',
  not_found: '#757575',
  paused: '#f9a825',
};

const TRACK: CSSProperties = {
  height: 8,
  borderRadius: 4,
  background: '#e0e0e0',
  overflow: 'hidden',
};

/** A progress bar for one task, built on `useTaskProgress` (options as props, or from the
 * nearest `DraftdlProvider`). Class names `draftdl-progress*` and `data-status` for styling. */
export function DownloadProgressBar({
  taskId,
  onComplete,
  onError,
  showDetails = false,
  className,
  label = 'Download progress',
  ...options
}: DownloadProgressBarProps): ReactNode {
  const state = useTaskProgress(taskId, options);
  const callbacks = useRef({ onComplete, onError });
  callbacks.current = { onComplete, onError };
  const reported = useRef<string | null>(null);

  useEffect(() => {
    if (reported.current === taskId || (state.status === null && !state.isStopped)) return;
    // Only the bar's own task counts: a state of the task it showed before is not its end.
    if (state.task !== null && state.task.task_id !== taskId) return;
    if (state.isCompleted) {
      reported.current = taskId;
      callbacks.current.onComplete?.(state);
    } else if (state.isStopped) {
      reported.current = taskId;
      const why = state.errorMessage ?? STATUS_TEXT[state.status ?? 'failed'];
      callbacks.current.onError?.(why, state);
    }
  }, [state, taskId]);

  const { status, progress, progressPercent } = state;
  const statusKey = status ?? 'connecting';
  const summary = status === null ? (state.isStopped ? 'Stopped' : 'Connecting…') : STATUS_TEXT[status];
  const reconnecting = status !== null && !state.isConnected && !state.isStopped;
  const fill: CSSProperties = {
    height: '100%',
    width: `${progressPercent}%`,
    background: (status && BAR_COLOR[status]) ?? '#1976d2',
    transition: 'width 0.3s ease',
  };
  const classes = ['draftdl-progress', `draftdl-progress--${statusKey}`, className]
    .filter(Boolean)
    .join(' ');

  return (
    <div className={classes} data-status={statusKey}>
      <div
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(progressPercent * 10) / 10}
        className="draftdl-progress__track"
        style={TRACK}
      >
        <div className="draftdl-progress__bar" style={fill} />
      </div>
      <div className="draftdl-progress__summary">
        <span className="draftdl-progress__status">{summary}</span>{' '}
        <span className="draftdl-progress__percent">{progressPercent.toFixed(1)}%</span>
        {reconnecting && <span className="draftdl-progress__reconnecting"> (reconnecting…)</span>}
      </div>
      {showDetails && progress && (
        <dl className="draftdl-progress__details">
          <dt>Size</dt>
          <dd data-field="size">
            {formatBytes(progress.downloaded_size)} / {formatBytes(progress.total_size)}
          </dd>
          <dt>Files</dt>
          <dd data-field="files">
            {progress.completed_files} / {progress.total_files}
            {progress.failed_files > 0 && `, ${progress.failed_files} failed`}
          </dd>
          {state.speedText && (
            <>
              <dt>Speed</dt>
              <dd data-field="speed">{state.speedText}</dd>
            </>
          )}
          {state.etaText && (
            <>
              <dt>Time left</dt>
              <dd data-field="eta">{state.etaText}</dd>
            </>
          )}
          {state.draftPath && (
            <>
              <dt>Draft</dt>
              <dd data-field="draft">{state.draftPath}</dd>
            </>
          )}
        </dl>
      )}
      {state.errorMessage && !state.isInProgress && (
        <div role="alert" className="draftdl-progress__error">
          {state.errorMessage}
        </div>
      )}
    </div>
  );
}
