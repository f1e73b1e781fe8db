/**
 * Real servers for the live tests, on 127.0.0.1 only: the repository's test file server
 * (`tests/fileserver.py`) and `python -m draftdl serve` with its own data folder and aria2c.
 * Whatever a test starts it stops; a worker that exits early takes its children along.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { TaskView } from '../../src/types.js';

const REACT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const REPO = resolve(REACT_DIR, '../..');
/** The Python that has draftdl installed: `DRAFTDL_PYTHON`, else the repository's venv. */
export const PYTHON = process.env.DRAFTDL_PYTHON
  ? resolve(process.env.DRAFTDL_PYTHON)
  : resolve(REACT_DIR, '../../.venv/bin/python');

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((done) => {
    const timer = setTimeout(() => done(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      done(true);
    });
  });
}

/** SIGTERM/SIGINT first, SIGKILL when it takes longer than `graceMs`. */
async function terminate(child: ChildProcess, signal: NodeJS.Signals, graceMs: number) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  if (!(await exited(child, graceMs))) {
    child.kill('SIGKILL');
    await exited(child, 5_000);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

function checkPython(): void {
  if (!existsSync(PYTHON)) {
    throw new Error(`no Python with draftdl at ${PYTHON}: set DRAFTDL_PYTHON or make the venv`);
  }
}

export class FileServer {
  private constructor(
    private readonly child: ChildProcess,
    readonly baseUrl: string,
  ) {}

  static async start(timeoutMs = 15_000): Promise<FileServer> {
    checkPython();
    const child = track(
      spawn(PYTHON, [join(REPO, 'tests', 'fileserver.py'), '--until-stdin-closes'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    );
    let out = '';
    let err = '';
    child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const port = await new Promise<number>((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`file server silent: ${err}`)), timeoutMs);
      child.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const line = /^(\d+)\n/.exec(out);
        if (line) {
          clearTimeout(timer);
          done(Number(line[1]));
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        fail(new Error(`file server exited (${code}): ${err}`));
      });
    });
    return new FileServer(child, `http://127.0.0.1:${port}`);
  }

  url(path: string): string {
    return this.baseUrl + (path.startsWith('/') ? path : `/${path}`);
  }

  async stop(): Promise<void> {
    this.child.stdin?.end();
    await terminate(this.child, 'SIGTERM', 5_000);
  }
}

export interface DraftdlServerOptions {
  token?: string;
  /** Extra `DRAFTDL_*` settings. */
  env?: Record<string, string>;
}

/** `python -m draftdl serve` on a free port with a fresh data folder; `kill()` + `start()`
 * brings the same server back (same port, same data). */
export class DraftdlServer {
  readonly root: string;
  readonly dataDir: string;
  readonly baseUrl: string;
  private child: ChildProcess | null = null;
  private readonly logPath: string;
  private starts = 0;

  private constructor(
    readonly port: number,
    private readonly options: DraftdlServerOptions,
  ) {
    this.root = tempDir('draftdl-react-');
    this.dataDir = join(this.root, 'data');
    this.logPath = join(this.root, 'server.log');
    this.baseUrl = `http://127.0.0.1:${port}`;
  }

  static async start(options: DraftdlServerOptions = {}): Promise<DraftdlServer> {
    const server = new DraftdlServer(await freePort(), options);
    try {
      await server.start();
    } catch (error) {
      await server.stop(); // its error already holds the log
      throw error;
    }
    return server;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  log(): string {
    return existsSync(this.logPath) ? readFileSync(this.logPath, 'utf8') : '';
  }

  async start(timeoutMs = 30_000): Promise<void> {
    checkPython();
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined && !key.startsWith('DRAFTDL_')) env[key] = value;
    }
    Object.assign(env, {
      DRAFTDL_ARIA2_RPC_PORT: '0',
      DRAFTDL_DRAFTS_ROOT: join(this.dataDir, 'drafts'),
      DRAFTDL_MIN_FREE_SPACE: '1M',
      DRAFTDL_POLL_INTERVAL: '0.1',
      DRAFTDL_PROGRESS_INTERVAL: '0.2',
      DRAFTDL_FLUSH_INTERVAL: '0.3',
      DRAFTDL_HEALTH_CHECK_INTERVAL: '0.5',
      DRAFTDL_CLEANUP_DAYS: '0',
      DRAFTDL_SHUTDOWN_GRACE: '1',
      ...(this.options.token ? { DRAFTDL_API_TOKEN: this.options.token } : {}),
      ...this.options.env,
    });
    const log = openSync(this.logPath, 'a');
    this.starts += 1;
    const child = track(
      spawn(
        PYTHON,
        ['-m', 'draftdl', 'serve', '--host', '127.0.0.1', '--port', String(this.port),
          '--data-dir', this.dataDir],
        { cwd: this.root, env, stdio: ['ignore', log, log] },
      ),
    );
    closeSync(log);
    this.child = child;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`draftdl serve exited (${child.exitCode}):\n${this.log()}`);
      }
      try {
        const resp = await fetch(`${this.baseUrl}/api/health`, {
          headers: this.headers(),
          signal: AbortSignal.timeout(2_000),
        });
        if (resp.status === 200) {
          const health = (await resp.json()) as { aria2?: { running?: boolean } };
          if (health.aria2?.running) return;
        }
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`draftdl serve did not start within ${timeoutMs} ms:\n${this.log()}`);
  }

  /** kill -9: no shutdown at all (its aria2c follows within a second: stop-with-process). */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child) await terminate(child, 'SIGKILL', 5_000);
  }

  /** A clean stop, then whatever aria2c is left of it, then the data folder. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child) await terminate(child, 'SIGINT', 15_000);
    await this.killLeftAria2c();
    rmSync(this.root, { recursive: true, force: true });
  }

  private async killLeftAria2c(): Promise<void> {
    const pidfile = join(this.dataDir, 'aria2', 'aria2c.pid');
    if (!existsSync(pidfile)) return;
    const pid = Number(readFileSync(pidfile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return;
    const cmdline = `/proc/${pid}/cmdline`;
    if (!existsSync(cmdline) || !readFileSync(cmdline, 'utf8').includes('aria2c')) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    for (let i = 0; i < 50 && existsSync(`/proc/${pid}`); i++) await sleep(50);
  }

  headers(json = false): Record<string, string> {
    const headers: Record<string, string> = {};
    if (this.options.token) headers.Authorization = `Bearer ${this.options.token}`;
    if (json) headers['Content-Type'] = 'application/json';
    return headers;
  }

  async submit(body: unknown): Promise<string> {
    const resp = await fetch(`${this.baseUrl}/api/tasks/submit`, {
      method: 'POST',
      headers: this.headers(true),
      body: JSON.stringify(body),
    });
    const text = await resp.text();
    if (resp.status !== 200) throw new Error(`submit answered ${resp.status}: ${text}`);
    return (JSON.parse(text) as { task_id: string }).task_id;
  }

  async task(taskId: string): Promise<TaskView> {
    const resp = await fetch(`${this.baseUrl}/api/tasks/${taskId}`, { headers: this.headers() });
    if (resp.status !== 200) throw new Error(`task answered ${resp.status}: ${await resp.text()}`);
    return (await resp.json()) as TaskView;
  }

  async waitTask(
    taskId: string,
    predicate: (task: TaskView) => boolean,
    timeoutMs = 30_000,
  ): Promise<TaskView> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const task = await this.task(taskId);
      if (predicate(task)) return task;
      if (Date.now() > deadline) throw new Error(`task never reached it: ${JSON.stringify(task)}`);
      await sleep(50);
    }
  }

  get startCount(): number {
    return this.starts;
  }
}

/** A minimal valid job downloading `urls` (as `job()` in tests/servers.py). */
export function job(urls: string[], title = 't', extra: Record<string, unknown> = {}) {
  const materials = urls.map((path, i) => ({ id: `m${i}`, type: 'video', path }));
  return {
    ruleGroup: {
      id: 'g',
      title,
      rules: [{ type: 'clip', title: 'c', material_ids: materials.map((m) => m.id) }],
    },
    materials,
    draft_config: {},
    ...extra,
  };
}
