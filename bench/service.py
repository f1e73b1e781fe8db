"""The draftdl server as the bench runs it, the jobs it is sent, and how tasks are watched.

``python -m draftdl serve`` with a fresh ``DRAFTDL_DATA_DIR``, free ports, cwd in the temp
dir, started untimed (until ``/api/health`` says ``aria2.running``) and always stopped
(SIGINT, SIGKILL after 10 s, a leftover aria2c by pid). Other ``DRAFTDL_*`` variables of the
caller's environment are passed on (to try settings), except the ones that would move the
data out of the temp dir.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    REPO,
    BenchError,
    Json,
    find_descendant,
    free_port,
    log_tail,
    proc_comm,
)

SERVICE_READY_TIMEOUT_S = 30.0
SERVICE_STOP_TIMEOUT_S = 10.0
HEALTH_POLL_S = 0.05
TASK_POLL_S = 0.02
FAILED_SWEEP_S = 1.0
TERMINAL_BAD = {"failed", "cancelled", "canceled", "error"}
DOWNLOADED = {"processing", "completed"}
PIC_SECONDS = 0.5
DRAFT_STEP = re.compile(r"task (\S+): draft step took ([0-9.]+)s")
# Kept out of the server's environment: the data (drafts, database) stays in the temp dir.
PINNED_ENV = ("DRAFTDL_DRAFTS_ROOT", "DRAFTDL_DATABASE_URL", "DRAFTDL_CONFIG")


def service_python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def inherited_env() -> dict[str, str]:
    """The caller's DRAFTDL_* settings the server gets (recorded in the JSON)."""
    return {k: v for k, v in os.environ.items() if k.startswith("DRAFTDL_") and k not in PINNED_ENV}


def dig(obj: Any, *keys: str) -> Any:
    """A key at the top level of an answer, or under its ``data``/``task``."""
    if not isinstance(obj, dict):
        return None
    for scope in (obj, obj.get("data"), obj.get("task")):
        if isinstance(scope, dict):
            for k in keys:
                if k in scope:
                    return scope[k]
    return None


def monitor_counts(health: Json) -> tuple[float, float] | None:
    """(ticks, aria2 RPC requests other than health checks) from /api/health's monitor."""
    mon = health.get("monitor")
    if isinstance(mon, dict):
        ticks, reqs = mon.get("ticks"), mon.get("rpc_requests")
        if isinstance(ticks, int | float) and isinstance(reqs, int | float):
            return float(ticks), float(reqs)
    return None


def rpc_per_tick(before: Json, after: Json) -> float | None:
    c0, c1 = monitor_counts(before), monitor_counts(after)
    if c0 and c1 and c1[0] > c0[0]:
        return (c1[1] - c0[1]) / (c1[0] - c0[0])
    return None


def task_body(pictures: bool, paths: list[str], base_url: str, title: str = "bench") -> Json:
    """Pictures: one item whose rule names every picture, so the service lays them end to end
    on one video track, PIC_SECONDS each. Otherwise no testData, hence an empty draft."""
    kind = "photo" if pictures else "video"
    materials = [
        {"id": f"m{i}", "type": kind, "path": f"{base_url}/{rel}"} for i, rel in enumerate(paths)
    ]
    ids = [m["id"] for m in materials]
    body: Json = {
        "ruleGroup": {
            "id": "bench",
            "title": title,
            "rules": [{"type": "pic", "title": "p", "material_ids": ids}],
        },
        "materials": materials,
        "draft_config": {"canvas_config": {"canvas_width": 1080, "canvas_height": 1920}, "fps": 30},
    }
    if pictures:
        body["testData"] = {
            "tracks": [{"id": "v", "type": "video", "title": "Pictures"}],
            "items": [{"type": "pic", "data": {"track": "v", "start": 0, "duration": PIC_SECONDS}}],
        }
    return body


def submitted_id(status: int, text: str, answer: Any) -> str:
    """The task id of a submit answer; anything else is a BenchError."""
    if status >= 300:
        raise BenchError(f"submit -> HTTP {status}: {text[:300]}")
    tid = dig(answer, "task_id", "taskId", "id")
    if tid is None:
        raise BenchError(f"no task id in submit response: {text[:300]}")
    return str(tid)


class Service:
    """A draftdl server with a fresh data dir, started untimed and always stopped; ready when
    its aria2c runs (an api node of a cluster, which has none: when it answers health)."""

    def __init__(
        self,
        tmp: Path,
        tag: str,
        ports: set[int],
        env: dict[str, str] | None = None,
        data_dir: Path | None = None,
        src: Path | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.data_dir = data_dir or tmp / f"draftdl-data-{tag}"
        self.log_path = tmp / f"draftdl-{tag}.log"
        self.port = free_port(ports)
        self.rpc_port = free_port(ports)
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.args = args or []  # after ``serve``, e.g. a cluster node's --role and --node-name
        self.src = src
        self.proc: subprocess.Popen[bytes] | None = None
        self.aria2_pid: int | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, "service not started"
        return self.proc.pid

    def start(self, client: httpx.Client, fresh: bool = True) -> Json:
        if fresh:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in PINNED_ENV}
        env.update(
            DRAFTDL_DATA_DIR=str(self.data_dir),
            DRAFTDL_PORT=str(self.port),
            DRAFTDL_HOST="127.0.0.1",
            DRAFTDL_ARIA2_RPC_PORT=str(self.rpc_port),
            **self.extra_env,
        )
        if self.src is not None:  # ahead of the installed (editable) draftdl
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(self.src), os.environ.get("PYTHONPATH")) if p
            )
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [service_python(), "-m", "draftdl", "serve", *self.args],
                cwd=self.data_dir.parent,  # not the repo: no stray ./config.json or ./data
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + SERVICE_READY_TIMEOUT_S
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"service exited with {self.proc.returncode}:\n{log_tail(self.log_path)}"
                )
            try:
                r = client.get(f"{self.url}/api/health", timeout=2)
                last = f"HTTP {r.status_code}"
                if r.status_code == 200:
                    data: Any = r.json()
                    health: Json = data if isinstance(data, dict) else {}
                    if health.get("role") == "api":  # a cluster's api node runs no aria2c
                        return health
                    aria2 = health.get("aria2")
                    if isinstance(aria2, dict) and aria2.get("running") is True:
                        self.aria2_pid = self.locate_aria2(health)
                        return health
                    last = f"aria2 not running: {aria2!r}"
            except (httpx.HTTPError, ValueError) as exc:
                last = type(exc).__name__
            time.sleep(HEALTH_POLL_S)
        raise BenchError(f"service not ready in {SERVICE_READY_TIMEOUT_S:g} s ({last})")

    def locate_aria2(self, health: Json) -> int | None:
        """Prefer a pid the health endpoint reports, else find aria2c in the process tree."""
        aria2 = health.get("aria2")
        pid = aria2.get("pid") if isinstance(aria2, dict) else None
        if isinstance(pid, int) and proc_comm(pid) == "aria2c":
            return pid
        return find_descendant(self.pid, "aria2c")

    def current_aria2(self) -> int | None:
        """aria2c's pid now (the service restarts it when it dies)."""
        return find_descendant(self.pid, "aria2c") or self.aria2_pid

    def health(self, client: httpx.Client) -> Json:
        r = client.get(f"{self.url}/api/health", timeout=5)
        data = r.json()
        return data if isinstance(data, dict) else {}

    def stop(self, remove: bool = True) -> list[str]:
        """SIGINT like a user would; reap a leftover aria2c by pid so nothing outlives us."""
        notes: list[str] = []
        if self.proc is not None:
            if self.proc.poll() is None:
                self.aria2_pid = find_descendant(self.proc.pid, "aria2c") or self.aria2_pid
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(SERVICE_STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    notes.append(f"service ignored SIGINT for {SERVICE_STOP_TIMEOUT_S:g} s; killed")
                    self.proc.kill()
                    self.proc.wait()
            elif self.proc.returncode not in (0, -signal.SIGINT):
                notes.append(f"service had exited early with {self.proc.returncode}")
        pid = self.aria2_pid
        if pid is not None and proc_comm(pid) == "aria2c":
            deadline = time.monotonic() + 3
            while proc_comm(pid) == "aria2c" and time.monotonic() < deadline:
                time.sleep(0.05)
            if proc_comm(pid) == "aria2c":
                notes.append(f"service left aria2c pid {pid} running; sent SIGTERM")
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        if remove:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        return notes

    def draft_step_max(self, ids: list[str]) -> float | None:
        """The slowest "draft step took" the service logged for these tasks."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return None
        wanted = set(ids)
        steps = [float(m[2]) for m in DRAFT_STEP.finditer(text) if m[1] in wanted]
        return max(steps) if steps else None


def task_problem(view: Json) -> str | None:
    """Why a failed or cancelled task failed (its files' first error), else None."""
    status = str(dig(view, "status") or "").lower()
    if status not in TERMINAL_BAD:
        return None
    err = dig(view, "error_message", "error", "message", "detail")
    files = dig(view, "files")
    bad = [
        f"{f.get('file_name') or f.get('url')}: {f.get('error_message')}"
        for f in (files if isinstance(files, list) else [])
        if isinstance(f, dict) and f.get("error_message")
    ]
    detail = f"; {len(bad)} file(s) failed, first: {bad[0]}" if bad else ""
    return f"{status}: {str(err)[:300]}{detail[:400]}"


def task_view(client: httpx.Client, url: str, tid: str, files: bool = True) -> Json:
    """One task as the API shows it; a failed or cancelled task aborts the measurement.

    Polls ask without the files (``files=false``), as a client following a task of 1,000
    files would: answering with the whole list 50 times a second was 11 % of the server's
    busy samples in W4 (py-spy), and the bench parsed it too. A failed task is read again
    with them, for its errors.
    """
    r = client.get(f"{url}/api/tasks/{tid}", params=None if files else {"files": "false"})
    r.raise_for_status()
    data: Any = r.json()
    info: Json = data if isinstance(data, dict) else {}
    if not files and str(dig(info, "status") or "").lower() in TERMINAL_BAD:
        return task_view(client, url, tid)
    problem = task_problem(info)
    if problem is not None:
        raise BenchError(f"task {tid} {problem}")
    return info


def is_downloaded(view: Json) -> bool:
    """Every file down: counted by the progress, or the task has moved past downloading."""
    if str(dig(view, "status") or "").lower() in DOWNLOADED:
        return True
    prog = dig(view, "progress")
    if not isinstance(prog, dict):
        return False
    total, done = prog.get("total_files"), prog.get("completed_files")
    return isinstance(total, int) and total > 0 and done == total


def is_completed(view: Json) -> bool:
    return str(dig(view, "status") or "").lower() == "completed"


def check_failed(client: httpx.Client, url: str, ids: set[str]) -> None:
    """One listing request for failed/cancelled tasks: a failure anywhere ends the wait."""
    r = client.get(f"{url}/api/tasks", params={"status": "failed,cancelled", "limit": 100})
    if r.status_code != 200:
        return
    for task in r.json().get("tasks", []):
        if isinstance(task, dict) and task.get("task_id") in ids:
            tid = str(task["task_id"])
            task_view(client, url, tid)  # raises with the files' errors


def poll_until(
    client: httpx.Client,
    url: str,
    ids: list[str],
    done: Callable[[Json], bool],
    t0: float,
    timeout: float,
) -> dict[str, Json]:
    """Poll every 20 ms until ``done`` holds for every task, but only up to the first task
    for which it does not; returns each task's view at the moment it was seen done.

    Sweeping all W5 tasks each round would be thousands of requests a second against a
    server that shares two cores with aria2c, inflating the very overhead being measured.
    Tasks start in the order they were submitted, so the last one is still seen within one
    poll interval; one listing of failed/cancelled tasks each second catches a failure that
    is not at the head.
    """
    pending = list(ids)
    wanted = set(ids)
    seen: dict[str, Json] = {}

    def finished(tid: str) -> bool:
        view = task_view(client, url, tid, files=False)
        if done(view):
            seen[tid] = view
            return True
        return False

    last_sweep = time.perf_counter()
    while pending:
        while pending and finished(pending[0]):
            pending.pop(0)
        if not pending:
            break
        now = time.perf_counter()
        if now - last_sweep >= FAILED_SWEEP_S:
            last_sweep = now
            check_failed(client, url, wanted)
        if now - t0 > timeout:
            raise BenchError(f"timed out after {timeout:g} s; {len(pending)} tasks pending")
        time.sleep(TASK_POLL_S)
    return seen


SUBMIT_CONCURRENCY = 10


def submit_all(url: str, bodies: list[Json], concurrency: int = SUBMIT_CONCURRENCY) -> list[str]:
    """Submits every job, up to ``concurrency`` at once as several clients would; the task
    ids in the order of ``bodies``."""

    async def go() -> list[str]:
        limits = httpx.Limits(max_connections=concurrency)
        gate = asyncio.Semaphore(concurrency)
        # verify=False: plain HTTP on loopback, so the CA bundle is not loaded (21-38 ms
        # here), which fell inside the timed span of every workload.
        async with httpx.AsyncClient(timeout=30, limits=limits, verify=False) as http:

            async def one(body: Json) -> str:
                async with gate:
                    r = await http.post(f"{url}/api/tasks/submit", json=body)
                return submitted_id(r.status_code, r.text, r.json())

            return list(await asyncio.gather(*(one(b) for b in bodies)))

    return asyncio.run(go())
