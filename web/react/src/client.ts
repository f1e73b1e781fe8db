/**
 * TaskProgressClient follows one task, without React: every (re)connection first reads the
 * snapshot (`GET /api/tasks/{id}`), then subscribes over Socket.IO or SSE and applies the
 * events; a dropped connection is tried again with exponential backoff, and a final event
 * (completed, failed, cancelled, deleted) ends it.
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';

import {
  INITIAL_FACTS,
  deriveState,
  isFinalStatus,
  mergeEvent,
  type ClientFacts,
  type TaskProgressState,
} from './state.js';
import type {
  EventSourceConstructor,
  EventSourceLike,
  TaskEventData,
  TaskView,
  TransportKind,
} from './types.js';

export interface ReconnectOptions {
  /** The first retry's delay (default 500 ms); it doubles on each failure in a row. */
  initialDelayMs?: number;
  /** The longest delay between attempts (default 10 s). */
  maxDelayMs?: number;
  /** Failed attempts in a row after which the client gives up (default: never). */
  maxAttempts?: number;
}

export interface TaskProgressOptions {
  /** Where draftdl answers, e.g. `http://127.0.0.1:8000`; `''` for the page's own origin. */
  baseUrl: string;
  /** Default `socketio`. */
  transport?: TransportKind;
  /** The server's `api_token`, when it has one. */
  token?: string;
  reconnect?: ReconnectOptions;
  /** For SSE: the EventSource class (default: the global one, as in browsers). */
  EventSource?: EventSourceConstructor;
  /** For the snapshot (default: the global `fetch`). */
  fetch?: typeof fetch;
  /** Extra options for socket.io-client's `io()` (e.g. `transports: ['websocket']`). */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
}

type Listener = (state: TaskProgressState) => void;

/** A live subscription of one attempt; `close` is idempotent and silences its callbacks. */
interface Connection {
  close(): void;
}

interface ConnectionHandlers {
  subscribed(task: TaskView): void;
  event(name: string, data: TaskEventData): void;
  dropped(reason: string): void;
  notFound(reason: string): void;
  refused(reason: string): void;
}

type Snapshot =
  | { kind: 'ok'; task: TaskView }
  | { kind: 'not_found'; detail: string }
  | { kind: 'refused'; detail: string }
  | { kind: 'unavailable'; detail: string };

const SNAPSHOT_TIMEOUT_MS = 10_000;
const SUBSCRIBE_TIMEOUT_MS = 15_000;
const EVENT_NAMES = [
  'task_progress',
  'task_status_changed',
  'task_completed',
  'task_failed',
  'task_cancelled',
  'task_deleted',
] as const;
const FINAL_EVENTS: ReadonlySet<string> = new Set([
  'task_completed',
  'task_failed',
  'task_cancelled',
  'task_deleted',
]);

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message}: ${cause.message}` : error.message;
  }
  return String(error);
}

async function detailOf(resp: Response): Promise<string> {
  try {
    const body: unknown = await resp.json();
    const detail = (body as { detail?: unknown } | null)?.detail;
    if (typeof detail === 'string') return detail;
  } catch {
    // not JSON: the status says enough
  }
  return `HTTP ${resp.status}`;
}

export class TaskProgressClient {
  private facts: ClientFacts = INITIAL_FACTS;
  private state: TaskProgressState = deriveState(INITIAL_FACTS);
  private readonly listeners = new Set<Listener>();
  private readonly transport: TransportKind;
  private readonly base: string;
  private started = false;
  private stopped = false;
  private failures = 0;
  private attempt = 0; // bumped by each connection attempt: older callbacks are ignored
  private timer: ReturnType<typeof setTimeout> | null = null;
  private connection: Connection | null = null;
  private readonly aborts = new Set<AbortController>();

  constructor(
    readonly taskId: string,
    private readonly options: TaskProgressOptions,
  ) {
    this.transport = options.transport ?? 'socketio';
    this.base = trimSlash(options.baseUrl);
  }

  getState(): TaskProgressState {
    return this.state;
  }

  /** Called with every new state; returns the function that removes the listener. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    void this.connect();
  }

  /** Closes the connection and cancels every pending retry and request; for good. */
  stop(): void {
    this.halt();
    this.listeners.clear();
  }

  // -- the attempts

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const attempt = ++this.attempt;
    const snapshot = await this.fetchSnapshot();
    if (attempt !== this.attempt || this.stopped) return;
    switch (snapshot.kind) {
      case 'not_found':
        this.finish({ status: 'not_found', localError: snapshot.detail });
        return;
      case 'refused':
        this.finish({ localError: snapshot.detail });
        return;
      case 'unavailable':
        this.retryLater(snapshot.detail);
        return;
    }
    if (isFinalStatus(snapshot.task.status)) {
      this.finish({ task: snapshot.task, status: null });
      return;
    }
    this.update({ task: snapshot.task, status: null });
    try {
      this.connection = this.open(this.handlersFor(attempt));
    } catch (error) {
      this.finish({ localError: describe(error) }); // a setup problem: no retry mends it
    }
  }

  private handlersFor(attempt: number): ConnectionHandlers {
    const live = (): boolean => attempt === this.attempt && !this.stopped;
    return {
      subscribed: (task) => {
        if (!live()) return;
        this.failures = 0;
        this.update({ task, status: null, isConnected: true, connectionError: null });
      },
      event: (name, data) => {
        if (!live() || (data && data.task_id !== undefined && data.task_id !== this.taskId)) return;
        // A task's last status change comes just before its final event, with the same data.
        const ending = name === 'task_status_changed' && isFinalStatus(data.status);
        if (FINAL_EVENTS.has(name) || ending) {
          void this.finalEvent(name, data);
          return;
        }
        this.update({ task: mergeEvent(this.facts.task, data) });
      },
      dropped: (reason) => {
        if (!live()) return;
        this.closeConnection();
        this.update({ isConnected: false });
        this.retryLater(reason);
      },
      notFound: (reason) => {
        if (!live()) return;
        this.finish({ status: 'not_found', localError: reason });
      },
      refused: (reason) => {
        if (!live()) return;
        this.finish({ localError: reason });
      },
    };
  }

  /** A final event ends the subscription; the snapshot read after it brings the files in
   * their final state (final events carry none), and the state changes once with both. */
  private async finalEvent(name: string, data: TaskEventData): Promise<void> {
    const attempt = ++this.attempt; // nothing of the connection counts any more
    this.closeConnection();
    if (name === 'task_deleted') {
      this.finish({ status: 'deleted' });
      return;
    }
    let task = mergeEvent(this.facts.task, data);
    const snapshot = await this.fetchSnapshot();
    if (attempt !== this.attempt || this.stopped) return;
    if (snapshot.kind === 'ok' && snapshot.task.status === data.status) task = snapshot.task;
    this.finish({ task, status: null });
  }

  private retryLater(reason: string): void {
    this.failures += 1;
    const { initialDelayMs = 500, maxDelayMs = 10_000, maxAttempts = Infinity } =
      this.options.reconnect ?? {};
    if (this.failures >= maxAttempts) {
      const gaveUp = `gave up after ${maxAttempts} failed connection attempts: ${reason}`;
      this.finish({ connectionError: reason, localError: gaveUp });
      return;
    }
    const delay = Math.min(maxDelayMs, initialDelayMs * 2 ** (this.failures - 1));
    const jittered = delay * (0.8 + 0.4 * Math.random());
    this.update({ isConnected: false, connectionError: reason });
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, jittered);
  }

  private finish(change: Partial<ClientFacts>): void {
    this.halt();
    this.update({ ...change, isConnected: false, isStopped: true });
  }

  private halt(): void {
    this.stopped = true;
    this.attempt += 1;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.closeConnection();
    for (const abort of this.aborts) abort.abort();
    this.aborts.clear();
  }

  private closeConnection(): void {
    this.connection?.close();
    this.connection = null;
  }

  private update(change: Partial<ClientFacts>): void {
    this.facts = { ...this.facts, ...change };
    this.state = deriveState(this.facts);
    for (const listener of [...this.listeners]) listener(this.state);
  }

  // -- HTTP

  private async fetchSnapshot(): Promise<Snapshot> {
    const doFetch = this.options.fetch ?? globalThis.fetch;
    const abort = new AbortController();
    this.aborts.add(abort);
    const timer = setTimeout(() => abort.abort(), SNAPSHOT_TIMEOUT_MS);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.options.token) headers.Authorization = `Bearer ${this.options.token}`;
    try {
      const resp = await doFetch(`${this.base}/api/tasks/${encodeURIComponent(this.taskId)}`, {
        headers,
        signal: abort.signal,
        cache: 'no-store',
      });
      if (resp.ok) return { kind: 'ok', task: (await resp.json()) as TaskView };
      const detail = await detailOf(resp);
      if (resp.status === 404) return { kind: 'not_found', detail };
      if (resp.status === 401 || resp.status === 403) {
        return { kind: 'refused', detail: `${detail} (HTTP ${resp.status})` };
      }
      return { kind: 'unavailable', detail: `snapshot: ${detail}` };
    } catch (error) {
      return { kind: 'unavailable', detail: `snapshot: ${describe(error)}` };
    } finally {
      clearTimeout(timer);
      this.aborts.delete(abort);
    }
  }

  // -- the transports

  private open(handlers: ConnectionHandlers): Connection {
    let subscribed = false;
    let closed = false;
    const guard = setTimeout(() => {
      if (!subscribed) handlers.dropped('no answer to the subscription');
    }, SUBSCRIBE_TIMEOUT_MS);
    const wrapped: ConnectionHandlers = {
      ...handlers,
      subscribed: (task) => {
        subscribed = true;
        clearTimeout(guard);
        handlers.subscribed(task);
      },
    };
    const inner =
      this.transport === 'sse' ? this.openSse(wrapped) : this.openSocket(wrapped);
    return {
      close: () => {
        if (closed) return;
        closed = true;
        clearTimeout(guard);
        inner.close();
      },
    };
  }

  private openSse(handlers: ConnectionHandlers): Connection {
    const EventSourceClass =
      this.options.EventSource ??
      (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
    if (EventSourceClass === undefined) {
      throw new Error('no EventSource here: pass one in the options (e.g. the eventsource package)');
    }
    const query = this.options.token ? `?token=${encodeURIComponent(this.options.token)}` : '';
    const url = `${this.base}/api/tasks/${encodeURIComponent(this.taskId)}/progress/stream${query}`;
    const source: EventSourceLike = new EventSourceClass(url);
    let closed = false;
    const parse = (event: MessageEvent): unknown => {
      try {
        return JSON.parse(String(event.data));
      } catch {
        return null;
      }
    };
    source.addEventListener('task_subscribed', (event) => {
      const data = parse(event) as { task?: TaskView } | null;
      if (!closed && data?.task) handlers.subscribed(data.task);
    });
    for (const name of EVENT_NAMES) {
      source.addEventListener(name, (event) => {
        const data = parse(event) as TaskEventData | null;
        if (!closed && data) handlers.event(name, data);
      });
    }
    source.addEventListener('error', (event) => {
      if (closed) return;
      // The EventSource would reconnect by itself, without the snapshot: the client does it.
      closed = true;
      source.close();
      const message = (event as Event & { message?: string }).message;
      handlers.dropped(`event stream: ${message || 'connection lost'}`);
    });
    return {
      close: () => {
        closed = true;
        source.close();
      },
    };
  }

  private openSocket(handlers: ConnectionHandlers): Connection {
    const extra = this.options.socketOptions ?? {};
    const options: Partial<ManagerOptions & SocketOptions> = {
      reconnection: false, // the client reconnects, reading the snapshot first
      forceNew: true,
      timeout: SNAPSHOT_TIMEOUT_MS,
      ...extra,
    };
    if (this.options.token) options.auth = { token: this.options.token };
    let socket: Socket;
    if (this.base) {
      const url = new URL(this.base);
      options.path = options.path ?? `${trimSlash(url.pathname)}/socket.io`;
      socket = io(url.origin, options);
    } else {
      options.path = options.path ?? '/socket.io';
      socket = io(options);
    }
    let closed = false;
    const taskId = this.taskId;
    socket.on('connect', () => {
      if (!closed) socket.emit('subscribe_task', { task_id: taskId });
    });
    socket.on('subscribed', (data: { task_id?: string; task?: TaskView | null }) => {
      if (!closed && data?.task_id === taskId && data.task) handlers.subscribed(data.task);
    });
    socket.on('subscribe_error', (data: { task_id?: string; error?: string }) => {
      if (!closed && data?.task_id === taskId) {
        handlers.notFound(data.error ?? `task '${taskId}' not found`);
      }
    });
    for (const name of EVENT_NAMES) {
      socket.on(name, (data: TaskEventData) => {
        if (!closed && data) handlers.event(name, data);
      });
    }
    socket.on('connect_error', (error: Error) => {
      if (closed) return;
      if (!socket.active) {
        // The server refused the connection itself (the token): trying again will not help.
        handlers.refused(`socket.io: ${error.message}`);
      } else {
        handlers.dropped(`socket.io: ${error.message}`);
      }
    });
    socket.on('disconnect', (reason: string) => {
      if (!closed) handlers.dropped(`socket.io: ${reason}`);
    });
    return {
      close: () => {
        closed = true;
        socket.off();
        socket.disconnect();
      },
    };
  }
}
