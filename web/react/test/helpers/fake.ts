/** A draftdl without a network, for unit tests of the hook and the component: `fetch` answers
 * `GET /api/tasks/{id}` from a map of views, `EventSource` records the streams opened and lets
 * the test send events down the open ones. */
import type { TaskView } from '../../src/types.js';
import type { UseTaskProgressOptions } from '../../src/useTaskProgress.js';

export function view(taskId: string, status: TaskView['status'], extra: Partial<TaskView> = {}): TaskView {
  const done = status === 'completed';
  return {
    task_id: taskId,
    title: `title ${taskId}`,
    status,
    priority: 0,
    max_download_limit: null,
    message: null,
    progress: {
      total_files: 1,
      completed_files: done ? 1 : 0,
      failed_files: 0,
      active_files: done ? 0 : 1,
      total_size: 1_000,
      downloaded_size: done ? 1_000 : 400,
      progress_percent: done ? 100 : 40,
      download_speed: done ? 0 : 500,
      eta_seconds: done ? 0 : 2,
    },
    draft_path: done ? `/drafts/${taskId}` : null,
    error_message: null,
    created_at: '2024-01-01T00:00:00+00:00',
    updated_at: '2024-01-01T00:00:01+00:00',
    completed_at: done ? '2024-01-01T00:00:02+00:00' : null,
    files: [],
    ...extra,
  };
}

interface Stream {
  url: string;
  closed: boolean;
  listeners: Map<string, Array<(event: MessageEvent) => void>>;
}

export class FakeDraftdl {
  readonly baseUrl = 'http://fake.test';
  /** What the snapshot of each task id answers now (a missing id: 404). */
  readonly tasks = new Map<string, TaskView>();
  readonly fetched: string[] = [];
  readonly streams: Stream[] = [];

  readonly fetch = (async (input: string | URL | Request) => {
    const url = String(input);
    this.fetched.push(url);
    const id = decodeURIComponent(url.slice(`${this.baseUrl}/api/tasks/`.length));
    const task = this.tasks.get(id);
    if (!task) {
      return new Response(JSON.stringify({ detail: `task '${id}' not found` }), { status: 404 });
    }
    return new Response(JSON.stringify(task), { status: 200 });
  }) as typeof globalThis.fetch;

  readonly EventSource = (() => {
    const streams = this.streams;
    return class FakeEventSource {
      private readonly stream: Stream;
      constructor(url: string) {
        this.stream = { url, closed: false, listeners: new Map() };
        streams.push(this.stream);
      }
      addEventListener(type: string, listener: (event: MessageEvent) => void): void {
        const list = this.stream.listeners.get(type) ?? [];
        list.push(listener);
        this.stream.listeners.set(type, list);
      }
      close(): void {
        this.stream.closed = true;
      }
    };
  })();

  /** The hook's options for this fake, over SSE. */
  options(): UseTaskProgressOptions {
    return {
      baseUrl: this.baseUrl,
      transport: 'sse',
      fetch: this.fetch,
      EventSource: this.EventSource,
    };
  }

  /** The open streams of a task. */
  openStreams(taskId: string): Stream[] {
    const path = `/api/tasks/${encodeURIComponent(taskId)}/progress/stream`;
    return this.streams.filter((s) => !s.closed && s.url === `${this.baseUrl}${path}`);
  }

  /** Sends an event down every open stream of the task; returns how many got it. */
  emit(taskId: string, type: string, data: unknown): number {
    const open = this.openStreams(taskId);
    for (const stream of open) {
      const event = new MessageEvent(type, { data: JSON.stringify(data) });
      for (const listener of stream.listeners.get(type) ?? []) listener(event);
    }
    return open.length;
  }

  /** The task completes: its snapshot says so, and its open streams get the final event. */
  complete(taskId: string): number {
    const done = view(taskId, 'completed');
    this.tasks.set(taskId, done);
    const { title: _t, created_at: _c, completed_at: _d, files: _f, ...event } = done;
    return this.emit(taskId, 'task_completed', event);
  }
}
