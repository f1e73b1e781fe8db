#!/usr/bin/env python3
"""Benchmark draftdl against bare aria2c, both downloading from a private local nginx.

Bare aria2c is the floor: the design says draftdl may add at most a fixed overhead on
top of it (W1 downloads <= 1.2x time and end to end with its draft <= 2x, W2 downloads
<= 1.5x with every draft correct, W3 >= 0.9x throughput). LAT times the push of a task's
completion to Socket.IO and SSE clients after its last byte (median <= 100 ms). See
bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
import httpx
import socketio
from httpx_sse import aconnect_sse

MIB = 1024 * 1024
GIB = 1024 * MIB
BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
NGINX = "/usr/sbin/nginx"
ARIA2C = "/usr/bin/aria2c"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVICE_READY_TIMEOUT_S = 30.0
SERVICE_STOP_TIMEOUT_S = 10.0
HEALTH_POLL_S = 0.05
TASK_POLL_S = 0.02
FULL_SWEEP_S = 1.0
TERMINAL_BAD = {"failed", "cancelled", "canceled", "error"}
DOWNLOADED = {"processing", "completed"}
PHOTO = REPO / "tests" / "data" / "media" / "photo.jpg"
PIC_SECONDS = 0.5
US = 1_000_000
DRAFT_FILES = ("draft_content.json", "draft_info.json", "draft_meta_info.json")
DRAFT_STEP = re.compile(r"task (\S+): draft step took ([0-9.]+)s")

Json = dict[str, Any]


class BenchError(Exception):
    """A measurement failed; reported per workload instead of aborting the whole run."""


# --------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """One scenario from the design, with the targets draftdl must meet relative to bare."""

    name: str
    tasks: int
    files_per_task: int
    file_size: int
    metric: Literal["time", "throughput"]
    limit: float
    e2e_limit: float | None  # end to end (downloads + draft) time vs bare, when targeted
    pictures: bool  # padded JPEGs laid out in the draft; else random bytes and an empty draft

    @property
    def total_bytes(self) -> int:
        return self.tasks * self.files_per_task * self.file_size

    @property
    def target(self) -> str:
        if self.metric == "time":
            return f"time <= {self.limit:g}x"
        return f"thrpt >= {self.limit:g}x"

    @property
    def e2e_target(self) -> str:
        return "-" if self.e2e_limit is None else f"time <= {self.e2e_limit:g}x"

    def rel_paths(self) -> list[list[str]]:
        """Per task, the URL paths of its files; every file is distinct across tasks."""
        prefix = self.name.lower()
        ext = "jpg" if self.pictures else "bin"
        out: list[list[str]] = []
        for t in range(self.tasks):
            base = t * self.files_per_task
            out.append([f"{prefix}/f{base + i:03d}.{ext}" for i in range(self.files_per_task)])
        return out


def make_workloads(quick: bool) -> dict[str, Workload]:
    """Only W3 shrinks in quick mode; W1/W2 are already small."""
    w3_size = (256 * MIB) if quick else GIB
    return {
        "W1": Workload("W1", 1, 100, MIB, "time", 1.2, 2.0, True),
        "W2": Workload("W2", 10, 20, MIB, "time", 1.5, None, True),
        "W3": Workload("W3", 1, 1, w3_size, "throughput", 0.9, None, False),
    }


def write_padded_photo(path: Path, size: int, photo: bytes) -> None:
    """The draft builder probes media, so W1/W2 need real images; readers stop at the JPEG
    end marker, so zero padding gives 1 MiB files that still parse as 320x240 pictures."""
    if len(photo) > size:
        raise BenchError(f"{PHOTO} is larger than {size} bytes")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(photo + bytes(size - len(photo)))


def write_random_file(path: Path, size: int) -> None:
    """Random bytes so nothing along the path can compress or dedupe the payload."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, 4 * MIB)
            f.write(os.urandom(n))
            left -= n


def pick_tmp_root(need: int) -> Path:
    """tmpfs keeps disk I/O out of the numbers; fall back to /tmp when it is too small."""
    shm = Path("/dev/shm")
    with suppress(OSError):
        if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > need:
            return shm
    return Path(tempfile.gettempdir())


# --------------------------------------------------------------------------- processes


def free_port(taken: set[int]) -> int:
    """Ask the kernel for an unused loopback port, avoiding ports handed out already."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            taken.add(port)
            return port


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the comm; index 0 is state, 1 is ppid."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def proc_comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def proc_cpu_s(pid: int) -> float | None:
    """utime+stime of a live process (all its threads), in seconds."""
    fields = proc_stat(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def find_descendant(root: int, comm: str) -> int | None:
    """The service may start aria2c directly or via a wrapper, so search the whole subtree."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = proc_stat(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        if proc_comm(pid) == comm:
            return pid
        stack.extend(children.get(pid, []))
    return None


def stop_process(proc: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    """Polite signal first, SIGKILL if it does not exit in time; only ever this pid."""
    if proc.poll() is not None:
        return
    with suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- nginx

NGINX_CONF = """\
{user}daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    default_type application/octet-stream;
    access_log {tmp}/nginx-access.log;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 100000;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;

    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{
        }}
    }}
}}
"""


@contextmanager
def nginx_server(tmp: Path, root: Path, port: int) -> Iterator[str]:
    """Own nginx config and process, so the bench never touches the system nginx."""
    conf = tmp / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(NGINX_CONF.format(user=user, tmp=tmp, port=port, root=root))
    (root / "ready.txt").write_text("ok\n")
    log = (tmp / "nginx-stdout.log").open("wb")
    cmd = [NGINX, "-c", str(conf), "-p", f"{tmp}/", "-e", str(tmp / "nginx-error.log")]
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise BenchError(f"nginx exited: {log_tail(tmp / 'nginx-error.log')}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{base}/ready.txt", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise BenchError("nginx did not answer within 10 s")
            time.sleep(0.05)
        yield base
    finally:
        stop_process(proc, signal.SIGTERM, 5)
        log.close()


# --------------------------------------------------------------------------- measurements


@dataclass
class Run:
    """One measurement; the None fields are the ones that side cannot observe.

    ``dl_s`` runs until every file is down (all bare aria2c does); ``e2e_s`` until every task
    is completed with its draft. CPU is split at the moment the downloads were seen done.
    """

    dl_s: float | None = None
    e2e_s: float | None = None
    server_cpu_s: float | None = None
    draft_cpu_s: float | None = None
    aria2_cpu_s: float | None = None
    rpc_per_tick: float | None = None
    drafts_ok: int | None = None
    drafts_total: int | None = None
    draft_step_max_s: float | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def verify_dir(directory: Path, expected: list[int]) -> None:
    """Count and size catch a truncated or missing file; content is checked by aria2c/HTTP."""
    if not directory.is_dir():
        raise BenchError(f"missing output dir {directory}")
    sizes = sorted(
        p.stat().st_size for p in directory.rglob("*") if p.is_file() and p.suffix != ".aria2"
    )
    if sizes != sorted(expected):
        raise BenchError(
            f"{directory}: expected {len(expected)} files of {sorted(set(expected))} bytes, "
            f"found {len(sizes)} files with sizes {sorted(set(sizes))[:5]}"
        )


def run_bare(
    wl: Workload, base_url: str, tmp: Path, tag: str, extra: list[str], timeout: float
) -> Run:
    """One aria2c with every file of the workload in its input list, like the service sees."""
    out = tmp / f"bare-out-{tag}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    lst = tmp / f"bare-{tag}.txt"
    lines: list[str] = []
    for t, paths in enumerate(wl.rel_paths()):
        for rel in paths:
            lines += [f"{base_url}/{rel}", f"  out={Path(rel).name}", f"  dir={out / f't{t:02d}'}"]
    lst.write_text("\n".join(lines) + "\n")
    cmd = [
        ARIA2C,
        "--no-conf=true",
        "-i",
        str(lst),
        "-j",
        "16",
        "--file-allocation=none",
        "--allow-overwrite=true",
        "--auto-file-renaming=false",
        "--console-log-level=warn",
        "--summary-interval=0",
        "--download-result=hide",
        "-d",
        str(out),
        *extra,
    ]
    log_path = tmp / f"bare-{tag}.log"
    try:
        with log_path.open("wb") as log:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
            try:
                status, usage = wait4_timeout(proc.pid, timeout)
            except BaseException:
                stop_process(proc, signal.SIGTERM, 5)
                raise
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise BenchError(f"aria2c exit {proc.returncode}: {log_tail(log_path, 5)}")
        for t, paths in enumerate(wl.rel_paths()):
            verify_dir(out / f"t{t:02d}", [wl.file_size] * len(paths))
        return Run(dl_s=wall, aria2_cpu_s=usage.ru_utime + usage.ru_stime)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def wait4_timeout(pid: int, timeout: float) -> tuple[int, Any]:
    """os.wait4 gives the child's exact rusage; poll with WNOHANG so a hang cannot block us."""
    deadline = time.perf_counter() + timeout
    while True:
        got, status, usage = os.wait4(pid, os.WNOHANG)
        if got == pid:
            return status, usage
        if time.perf_counter() > deadline:
            raise BenchError(f"timed out after {timeout:g} s")
        time.sleep(0.002)


def dig(obj: Any, *keys: str) -> Any:
    """The API's envelope is not frozen yet: accept the key at top level or under data/task."""
    if not isinstance(obj, dict):
        return None
    for scope in (obj, obj.get("data"), obj.get("task")):
        if isinstance(scope, dict):
            for k in keys:
                if k in scope:
                    return scope[k]
    return None


def monitor_counts(health: Json) -> tuple[float, float] | None:
    mon = health.get("monitor")
    if isinstance(mon, dict):
        ticks, reqs = mon.get("ticks"), mon.get("rpc_requests")
        if isinstance(ticks, int | float) and isinstance(reqs, int | float):
            return float(ticks), float(reqs)
    return None


def task_body(pictures: bool, paths: list[str], base_url: str) -> Json:
    """W1/W2: one item whose rule names every picture, so the service lays them end to end
    on one video track, PIC_SECONDS each. W3 and LAT: no testData, hence an empty draft."""
    kind = "photo" if pictures else "video"
    materials = [
        {"id": f"m{i}", "type": kind, "path": f"{base_url}/{rel}"} for i, rel in enumerate(paths)
    ]
    ids = [m["id"] for m in materials]
    body: Json = {
        "ruleGroup": {
            "id": "bench",
            "title": "bench",
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


def check_draft(wl: Workload, view: Json, downloads: Path) -> str | None:
    """What is wrong with a completed task's draft, or None when it is what the job asked for.

    Pictures: one video track holding N segments laid end to end, every video material a file
    in the draft's own ``assets/`` that is the task's download of that name (same size).
    Otherwise: a draft without any segment.
    """
    draft_path = dig(view, "draft_path")
    if not isinstance(draft_path, str) or not draft_path:
        return "completed without a draft_path"
    folder = Path(draft_path)
    missing = [n for n in DRAFT_FILES if not (folder / n).is_file()]
    if missing:
        return f"{folder}: missing {', '.join(missing)}"
    try:
        content = json.loads((folder / "draft_content.json").read_text(encoding="utf-8"))
        tracks = [t for t in content.get("tracks", []) if isinstance(t, dict)]
        segments = [s for t in tracks for s in t.get("segments", [])]
        if not wl.pictures:
            return f"{len(segments)} segments in a draft without items" if segments else None
        video = [t for t in tracks if t.get("type") == "video"]
        if len(video) != 1 or len(tracks) != 1:
            return f"expected one video track, found {len(video)} of {len(tracks)} tracks"
        n = wl.files_per_task
        segs = video[0].get("segments", [])
        if len(segs) != n:
            return f"expected {n} segments, found {len(segs)}"
        step = round(PIC_SECONDS * US)
        spans = sorted(
            (s["target_timerange"]["start"], s["target_timerange"]["duration"]) for s in segs
        )
        if spans != [(i * step, step) for i in range(n)]:
            return f"segments not end to end at {PIC_SECONDS:g} s each: {spans[:3]}..."
        mats = {m["id"]: m for m in content["materials"]["videos"]}
        assets = folder.resolve() / "assets"
        for seg in segs:
            mat = mats.get(seg["material_id"])
            if mat is None:
                return f"segment {seg.get('id')} names a missing material"
            path = Path(mat["path"])
            if not path.is_file() or path.resolve().parent != assets:
                return f"material path {path} is not a file in {assets}"
            download = downloads / path.name
            if not download.is_file() or download.stat().st_size != path.stat().st_size:
                return f"material {path.name} is not the task's download {download}"
        if len({mats[seg["material_id"]]["path"] for seg in segs}) != n:
            return "segments do not use N distinct files"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"{folder}/draft_content.json: {type(exc).__name__}: {exc}"
    return None


def service_python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


class Service:
    """A draftdl server with a fresh data dir, started untimed and always stopped."""

    def __init__(self, tmp: Path, tag: str, ports: set[int]) -> None:
        self.data_dir = tmp / f"draftdl-data-{tag}"
        self.log_path = tmp / f"draftdl-{tag}.log"
        self.port = free_port(ports)
        self.rpc_port = free_port(ports)
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.aria2_pid: int | None = None

    def start(self, client: httpx.Client) -> Json:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir()
        env = dict(os.environ)
        env.pop("DRAFTDL_DRAFTS_ROOT", None)  # drafts stay in the data dir, removed at stop
        env.update(
            DRAFTDL_DATA_DIR=str(self.data_dir),
            DRAFTDL_PORT=str(self.port),
            DRAFTDL_HOST="127.0.0.1",
            DRAFTDL_MAX_ACTIVE_TASKS="10",
            DRAFTDL_ARIA2_RPC_PORT=str(self.rpc_port),
        )
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [service_python(), "-m", "draftdl", "serve"],
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
        assert self.proc is not None
        aria2 = health.get("aria2")
        pid = aria2.get("pid") if isinstance(aria2, dict) else None
        if isinstance(pid, int) and proc_comm(pid) == "aria2c":
            return pid
        return find_descendant(self.proc.pid, "aria2c")

    def health(self, client: httpx.Client) -> Json:
        r = client.get(f"{self.url}/api/health", timeout=5)
        r.raise_for_status()
        data = r.json()
        return data if isinstance(data, dict) else {}

    def stop(self) -> list[str]:
        """SIGINT like a user would; reap a leftover aria2c by pid so nothing outlives us."""
        notes: list[str] = []
        if self.proc is not None:
            if self.proc.poll() is None:
                self.aria2_pid = find_descendant(self.proc.pid, "aria2c") or self.aria2_pid
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(SERVICE_STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    notes.append("service ignored SIGINT for 10 s; killed")
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
        shutil.rmtree(self.data_dir, ignore_errors=True)
        return notes


def run_draftdl(
    wl: Workload, base_url: str, tmp: Path, tag: str, ports: set[int], timeout: float
) -> Run:
    """Submit every task at once; time until all files are down, then until all drafts are.

    Only that span is timed. The drafts are checked afterwards, untimed.
    """
    svc = Service(tmp, tag, ports)
    run = Run()
    try:
        with httpx.Client(timeout=10) as client:
            svc.start(client)
            assert svc.proc is not None
            server_pid = svc.proc.pid
            bodies = [task_body(wl.pictures, p, base_url) for p in wl.rel_paths()]
            h0 = svc.health(client)
            srv0 = proc_cpu_s(server_pid)
            aria_pid = svc.aria2_pid
            aria0 = proc_cpu_s(aria_pid) if aria_pid else None

            t0 = time.perf_counter()
            ids: list[str] = []
            for body in bodies:
                r = client.post(f"{svc.url}/api/tasks/submit", json=body)
                if r.status_code >= 300:
                    raise BenchError(f"submit -> HTTP {r.status_code}: {r.text[:300]}")
                tid = dig(r.json(), "task_id", "taskId", "id")
                if tid is None:
                    raise BenchError(f"no task id in submit response: {r.text[:300]}")
                ids.append(str(tid))
            poll_until(client, svc.url, ids, is_downloaded, t0, timeout)
            run.dl_s = time.perf_counter() - t0
            srv1 = proc_cpu_s(server_pid)
            aria_pid_after = find_descendant(server_pid, "aria2c") or aria_pid
            aria1 = proc_cpu_s(aria_pid_after) if aria_pid_after else None
            h1 = svc.health(client)

            views = poll_until(client, svc.url, ids, is_completed, t0, timeout)
            run.e2e_s = time.perf_counter() - t0
            srv2 = proc_cpu_s(server_pid)

            if srv0 is not None and srv1 is not None:
                run.server_cpu_s = srv1 - srv0
            if srv1 is not None and srv2 is not None:
                run.draft_cpu_s = srv2 - srv1
            if aria_pid_after != aria_pid:
                run.notes.append(f"aria2c pid changed {aria_pid} -> {aria_pid_after}")
            elif aria0 is not None and aria1 is not None:
                run.aria2_cpu_s = aria1 - aria0
            else:
                run.notes.append("aria2c process not found")
            c0, c1 = monitor_counts(h0), monitor_counts(h1)
            if c0 and c1 and c1[0] > c0[0]:
                run.rpc_per_tick = (c1[1] - c0[1]) / (c1[0] - c0[0])

            for tid, paths in zip(ids, wl.rel_paths(), strict=True):
                verify_dir(svc.data_dir / "downloads" / tid, [wl.file_size] * len(paths))
            run.drafts_total = len(ids)
            run.drafts_ok = 0
            for tid in ids:
                problem = check_draft(wl, views[tid], svc.data_dir / "downloads" / tid)
                if problem is None:
                    run.drafts_ok += 1
                else:
                    run.notes.append(f"draft of task {tid}: {problem}")
            run.draft_step_max_s = draft_step_max(svc.log_path, ids)
    except (BenchError, httpx.HTTPError, ValueError) as exc:
        run.error = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, BenchError):
            run.error += f"\n{log_tail(svc.log_path)}"
    finally:
        run.notes += svc.stop()
    return run


def draft_step_max(log_path: Path, ids: list[str]) -> float | None:
    """The slowest "draft step took" the service logged for these tasks, to spot slow builds."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return None
    wanted = set(ids)
    steps = [float(m[2]) for m in DRAFT_STEP.finditer(text) if m[1] in wanted]
    return max(steps) if steps else None


def task_view(client: httpx.Client, url: str, tid: str) -> Json:
    """One task as the API shows it; a failed or cancelled task aborts the measurement."""
    r = client.get(f"{url}/api/tasks/{tid}")
    r.raise_for_status()
    data: Any = r.json()
    info: Json = data if isinstance(data, dict) else {}
    status = str(dig(info, "status") or "").lower()
    if status in TERMINAL_BAD:
        err = dig(info, "error_message", "error", "message", "detail")
        files = dig(info, "files")
        bad = [
            f"{f.get('file_name') or f.get('url')}: {f.get('error_message')}"
            for f in (files if isinstance(files, list) else [])
            if isinstance(f, dict) and f.get("error_message")
        ]
        detail = f"; {len(bad)} file(s) failed, first: {bad[0]}" if bad else ""
        raise BenchError(f"task {tid} {status}: {str(err)[:300]}{detail[:400]}")
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

    Sweeping all ten W2 tasks each round would be ~500 requests/s against a server that
    shares two cores with aria2c, inflating the very overhead being measured. The last
    task is still seen within one poll interval; a full sweep each second catches a
    failed task that is not at the head.
    """
    pending = list(ids)
    seen: dict[str, Json] = {}

    def finished(tid: str) -> bool:
        view = task_view(client, url, tid)
        if done(view):
            seen[tid] = view
            return True
        return False

    last_sweep = time.perf_counter()
    while pending:
        now = time.perf_counter()
        if now - last_sweep >= FULL_SWEEP_S:
            last_sweep = now
            pending = [t for t in pending if not finished(t)]
        while pending and finished(pending[0]):
            pending.pop(0)
        if not pending:
            break
        if time.perf_counter() - t0 > timeout:
            raise BenchError(f"timed out after {timeout:g} s; {len(pending)} tasks pending")
        time.sleep(TASK_POLL_S)
    return seen


def median_run(runs: list[Run]) -> Run:
    """Median per timing over the successful repeats, worst draft count; failures stay visible."""
    good = [r for r in runs if r.error is None]
    errors = [r.error for r in runs if r.error is not None]
    notes = sorted({n for r in runs for n in r.notes})
    if not good:
        return Run(error=errors[0] if errors else "no runs", notes=notes)

    def med(get: Callable[[Run], float | None]) -> float | None:
        vals = [v for v in map(get, good) if v is not None]
        return statistics.median(vals) if vals else None

    counted = [r for r in good if r.drafts_ok is not None]
    worst = min(counted, key=lambda r: (r.drafts_ok or 0) - (r.drafts_total or 0), default=None)
    steps = [r.draft_step_max_s for r in good if r.draft_step_max_s is not None]
    out = Run(
        dl_s=med(lambda r: r.dl_s),
        e2e_s=med(lambda r: r.e2e_s),
        server_cpu_s=med(lambda r: r.server_cpu_s),
        draft_cpu_s=med(lambda r: r.draft_cpu_s),
        aria2_cpu_s=med(lambda r: r.aria2_cpu_s),
        rpc_per_tick=med(lambda r: r.rpc_per_tick),
        drafts_ok=None if worst is None else worst.drafts_ok,
        drafts_total=None if worst is None else worst.drafts_total,
        draft_step_max_s=max(steps) if steps else None,
        notes=notes,
    )
    if errors:
        out.notes.append(f"{len(errors)}/{len(runs)} repeats failed: {errors[0]}")
    return out


# --------------------------------------------------------------------------- LAT: push latency

LAT_ROUNDS = 20
LAT_ROUNDS_QUICK = 8
LAT_RATE = 4 * MIB  # bytes/s the throttled server sends at
LAT_MIN_SIZE = 2 * MIB
LAT_SPAN = MIB  # sizes in [2, 3) MiB: 0.25 s of spread, the ends cover a whole monitor tick
LAT_CHUNK = 16 * 1024
LAT_TARGET_MS = 100.0
LAT_READY_TIMEOUT_S = 5.0
LAT_PATH = re.compile(r"/lat/r\d+-(\d+)\.bin")
LAT_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
FINAL_EVENTS = {"task_completed", "task_failed", "task_cancelled"}
TRANSPORTS = {"socketio": "Socket.IO", "sse": "SSE"}
LAT_EVENTS = {
    "processing": "task_status_changed processing",
    "completed": "task_completed",
}


class ThrottledServer(ThreadingHTTPServer):
    """Serves /lat/r<N>-<size>.bin (zeros, <size> bytes) at LAT_RATE and notes, per path,
    the wall time its last byte was written: the moment the service's latency counts from."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ThrottledHandler)
        self.lock = threading.Lock()
        self.last_byte: dict[str, float] = {}
        self.bodies: dict[str, int] = {}

    def finished(self, path: str, at: float) -> None:
        with self.lock:
            self.last_byte[path] = max(at, self.last_byte.get(path, at))
            self.bodies[path] = self.bodies.get(path, 0) + 1


class ThrottledHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with Content-Length (keep-alive works) and one optional `bytes=a-b` range."""

    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, like nginx's tcp_nodelay: otherwise Nagle holds a short last segment until
    # aria2's delayed ACK (~40 ms) on a reused connection, and "last byte written" would be
    # that much before aria2 can have it.
    disable_nagle_algorithm = True
    block = bytes(LAT_CHUNK)

    def do_GET(self) -> None:
        srv = self.server
        assert isinstance(srv, ThrottledServer)
        path = urlsplit(self.path).path
        m = LAT_PATH.fullmatch(path)
        if m is None:
            self.send_error(404)
            return
        size = int(m[1])
        start, end = 0, size - 1
        rng = LAT_RANGE.fullmatch(self.headers.get("Range", "").strip())
        if rng is not None:
            start, end = int(rng[1]), min(int(rng[2] or size - 1), size - 1)
            if start > end:
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        length = end - start + 1
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        t0 = time.perf_counter()
        sent = 0
        try:
            while sent < length:
                wait = t0 + sent / LAT_RATE - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                n = min(LAT_CHUNK, length - sent)
                self.wfile.write(self.block[:n])
                sent += n
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return
        if end == size - 1:
            srv.finished(path, time.time())

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a line per request on stderr would be noise in the bench output."""


@contextmanager
def throttled_server() -> Iterator[ThrottledServer]:
    """In a thread of this process; stopped (and its port closed) on the way out."""
    srv = ThrottledServer()
    thread = threading.Thread(target=srv.serve_forever, name="lat-files", daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@dataclass
class LatRun:
    """Every finished round; a failed round ends the workload with ``error``."""

    rounds: list[LatRound] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    load_before: tuple[float, float, float] | None = None
    load_after: tuple[float, float, float] | None = None


@dataclass
class Seen:
    """When (time.time()) one client got each event of one task."""

    ready: float | None = None  # subscribed / task_subscribed
    ready_status: str | None = None  # the task's status in that snapshot
    processing: float | None = None
    completed: float | None = None
    final: str | None = None
    ready_evt: asyncio.Event = field(default_factory=asyncio.Event)
    done_evt: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, name: str, data: Any, now: float) -> None:
        data = data if isinstance(data, dict) else {}
        if name in ("subscribed", "task_subscribed"):
            task = data.get("task")
            self.ready = now
            self.ready_status = str(task.get("status")) if isinstance(task, dict) else None
            self.ready_evt.set()
        elif name == "subscribe_error":
            self.final = f"subscribe_error: {data.get('error')}"
            self.ready_evt.set()
            self.done_evt.set()
        elif name == "task_status_changed":
            if data.get("status") == "processing" and self.processing is None:
                self.processing = now
        elif name in FINAL_EVENTS:
            self.final = name
            if name == "task_completed":
                self.completed = now
            self.done_evt.set()


@dataclass
class LatRound:
    """One task: the file's last byte and what each client saw, all wall times in s."""

    task_id: str
    size: int
    submitted: float
    last_byte: float
    seen: dict[str, Seen]
    aria2_done: float | None = None  # aria2's onDownloadComplete reached our own WebSocket

    def latency_ms(self, transport: str, event: str) -> float | None:
        at = getattr(self.seen[transport], event)
        return None if at is None else (at - self.last_byte) * 1000

    def aria2_ms(self) -> float | None:
        return None if self.aria2_done is None else (self.aria2_done - self.last_byte) * 1000

    def as_json(self) -> Json:
        out: Json = {
            "task_id": self.task_id,
            "size": self.size,
            "download_s": self.last_byte - self.submitted,
            "aria2_notified_ms": self.aria2_ms(),
        }
        for tr, s in self.seen.items():
            out[tr] = {
                "ready_before_last_byte_ms": None
                if s.ready is None
                else (self.last_byte - s.ready) * 1000,
                "ready_status": s.ready_status,
                **{f"{ev}_ms": self.latency_ms(tr, ev) for ev in LAT_EVENTS},
            }
        return out


async def sse_listen(http: httpx.AsyncClient, url: str, seen: Seen) -> None:
    """Reads the stream until the server closes it after the final event."""
    async with aconnect_sse(http, "GET", url) as source:
        if source.response.status_code != 200:
            await source.response.aread()
            raise BenchError(f"SSE {url} -> HTTP {source.response.status_code}")
        async for sse in source.aiter_sse():
            seen.record(sse.event, json.loads(sse.data) if sse.data else {}, time.time())
    if not seen.done_evt.is_set():
        raise BenchError("SSE stream closed before a final event")


async def lat_round(
    i: int,
    size: int,
    svc: Service,
    files: ThrottledServer,
    sio: Any,
    sio_seen: dict[str, Seen],
    http: httpx.AsyncClient,
    timeout: float,
) -> LatRound:
    """Submit one file, subscribe on both transports at once, wait for both to complete."""
    base = f"http://127.0.0.1:{files.server_address[1]}"
    rel = f"lat/r{i:03d}-{size}.bin"
    submitted = time.time()
    r = await http.post(f"{svc.url}/api/tasks/submit", json=task_body(False, [rel], base))
    if r.status_code >= 300:
        raise BenchError(f"submit -> HTTP {r.status_code}: {r.text[:300]}")
    tid = dig(r.json(), "task_id", "taskId", "id")
    if tid is None:
        raise BenchError(f"no task id in submit response: {r.text[:300]}")
    tid = str(tid)
    seen = {"socketio": Seen(), "sse": Seen()}
    sio_seen[tid] = seen["socketio"]
    await sio.emit("subscribe_task", {"task_id": tid})
    url = f"{svc.url}/api/tasks/{tid}/progress/stream"
    sse = asyncio.create_task(sse_listen(http, url, seen["sse"]))
    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(seen["socketio"].done_evt.wait(), sse)
    except TimeoutError:
        raise BenchError(
            f"task {tid}: no final event on both transports in {timeout:g} s"
        ) from None
    finally:
        sse.cancel()
        with suppress(asyncio.CancelledError, BenchError):
            await sse
        sio_seen.pop(tid, None)
    for tr, s in seen.items():
        if s.final != "task_completed":
            raise BenchError(f"task {tid}: {TRANSPORTS[tr]} ended with {s.final}")
    last = files.last_byte.get(f"/{rel}")
    if last is None:
        raise BenchError(f"task {tid}: the file server never sent the last byte of /{rel}")
    verify_dir(svc.data_dir / "downloads" / tid, [size])
    return LatRound(tid, size, submitted, last, seen)


def aria2_ws_url(pid: int | None) -> str | None:
    """aria2c's RPC WebSocket, the port read from its own conf: the service moves off the
    port it was given when that one is taken."""
    if pid is None:
        return None
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        conf = next(a.split("=", 1)[1] for a in args if a.startswith("--conf-path="))
        m = re.search(r"^rpc-listen-port=(\d+)$", Path(conf).read_text(), re.MULTILINE)
    except (OSError, StopIteration, UnicodeDecodeError):
        return None
    return None if m is None else f"ws://127.0.0.1:{m[1]}/jsonrpc"


async def watch_aria2(url: str, stamps: list[float], connected: asyncio.Event) -> None:
    """aria2 sends its notifications to every WebSocket client, no secret needed; when one
    arrives splits the latency into aria2's part and draftdl's."""
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        connected.set()
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                now = time.time()
                if json.loads(msg.data).get("method") == "aria2.onDownloadComplete":
                    stamps.append(now)


async def lat_rounds(
    svc: Service, files: ThrottledServer, sizes: list[int], timeout: float, run: LatRun
) -> None:
    """One Socket.IO connection and one HTTP client for all rounds, as a UI would keep them;
    the rounds run one after another so each task has the service to itself."""
    sio = socketio.AsyncClient(reconnection=False)
    sio_seen: dict[str, Seen] = {}

    async def on_any(event: str, data: Any = None) -> None:
        now = time.time()
        tid = data.get("task_id") if isinstance(data, dict) else None
        seen = sio_seen.get(str(tid))
        if seen is not None:
            seen.record(event, data, now)

    sio.on("*", on_any)
    await sio.connect(svc.url, socketio_path="/socket.io", transports=["websocket"])
    stamps: list[float] = []
    watcher: asyncio.Task[None] | None = None
    url = aria2_ws_url(svc.aria2_pid)
    if url is None:
        run.notes.append("aria2c's RPC port not found; no aria2 reference times")
    else:
        connected = asyncio.Event()
        watcher = asyncio.create_task(watch_aria2(url, stamps, connected))
        waiter = asyncio.create_task(connected.wait())
        await asyncio.wait(
            [watcher, waiter], timeout=LAT_READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()
        if not connected.is_set():
            watcher.cancel()
            reason = (
                "timed out" if not watcher.done() or watcher.cancelled() else watcher.exception()
            )
            run.notes.append(f"aria2 WebSocket {url} not watched ({reason}); no aria2 times")
            watcher = None
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)) as http:
            for i, size in enumerate(sizes):
                rnd = await lat_round(i, size, svc, files, sio, sio_seen, http, timeout)
                rnd.aria2_done = next((t for t in stamps if t >= rnd.submitted), None)
                run.rounds.append(rnd)
                for tr, s in rnd.seen.items():
                    if s.ready is None or s.ready > rnd.last_byte:
                        run.notes.append(
                            f"round {i}: {TRANSPORTS[tr]} subscribed after the last byte"
                        )
                    elif s.ready_status not in ("pending", "downloading"):
                        run.notes.append(
                            f"round {i}: {TRANSPORTS[tr]} snapshot already {s.ready_status}"
                        )
                print(f"LAT #{i + 1}: {lat_line(rnd)}")
    finally:
        if watcher is not None:
            watcher.cancel()
            with suppress(asyncio.CancelledError, Exception):  # only reference times lost
                await watcher
        await sio.disconnect()


def run_lat(n: int, tmp: Path, ports: set[int], timeout: float) -> LatRun:
    """The service with its default tick settings; only the push path may make it fast."""
    run = LatRun(load_before=os.getloadavg())
    rng = random.Random(20240)  # same sizes every run
    sizes = [LAT_MIN_SIZE + rng.randrange(LAT_SPAN) for _ in range(n)]
    svc = Service(tmp, "LAT", ports)
    try:
        with throttled_server() as files, httpx.Client(timeout=10) as client:
            svc.start(client)
            asyncio.run(lat_rounds(svc, files, sizes, timeout, run))
            many = [p for p, k in files.bodies.items() if k > 1]
            if many:
                run.notes.append(f"{len(many)} file(s) were sent more than once (retry/range)")
    except (BenchError, httpx.HTTPError, ValueError, OSError) as exc:
        run.error = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, BenchError):
            run.error += f"\n{log_tail(svc.log_path)}"
    except Exception as exc:  # socketio's own errors: report, don't lose the other workloads
        run.error = f"{type(exc).__name__}: {exc}\n{log_tail(svc.log_path)}"
    finally:
        run.notes += svc.stop()
        run.load_after = os.getloadavg()
    return run


def lat_line(r: LatRound) -> str:
    parts = [f"download {r.last_byte - r.submitted:.2f} s", f"aria2 {fmt(r.aria2_ms(), '.1f')} ms"]
    for tr, name in TRANSPORTS.items():
        lat = ", ".join(f"{ev} {fmt(r.latency_ms(tr, ev), '.1f')}" for ev in LAT_EVENTS)
        parts.append(f"{name} {lat} ms")
    return "; ".join(parts)


def spread(values: list[float]) -> Json:
    """median/p90/max of a small sample (p90 by linear interpolation)."""
    if not values:
        return {"n": 0, "median_ms": None, "p90_ms": None, "max_ms": None, "min_ms": None}
    p90 = (
        values[0]
        if len(values) == 1
        else statistics.quantiles(values, n=10, method="inclusive")[-1]
    )
    return {
        "n": len(values),
        "median_ms": statistics.median(values),
        "p90_ms": p90,
        "max_ms": max(values),
        "min_ms": min(values),
    }


def summarize_lat(run: LatRun, n: int) -> Json:
    """Target: every transport's median for both events <= 100 ms after the last byte."""
    stats: Json = {}
    ok: bool | None = True if run.rounds else None
    for tr in TRANSPORTS:
        stats[tr] = {}
        for ev in LAT_EVENTS:
            vals = [v for r in run.rounds if (v := r.latency_ms(tr, ev)) is not None]
            st = spread(vals)
            st["meets_target"] = None if not vals else st["median_ms"] <= LAT_TARGET_MS
            stats[tr][ev] = st
            if ok is not None:
                ok = ok and bool(st["meets_target"]) and len(vals) == len(run.rounds)
    aria2 = spread([v for r in run.rounds if (v := r.aria2_ms()) is not None])
    gaps = [
        (s.completed - s.processing) * 1000
        for r in run.rounds
        if (s := r.seen["socketio"]).completed is not None and s.processing is not None
    ]
    env = os.environ
    return {
        "workload": "LAT",
        "rounds_planned": n,
        "rounds": len(run.rounds),
        "file_sizes": [LAT_MIN_SIZE, LAT_MIN_SIZE + LAT_SPAN],
        "rate_bytes_per_s": LAT_RATE,
        "target": f"median <= {LAT_TARGET_MS:g} ms",
        "settings": {
            "progress_interval": env.get("DRAFTDL_PROGRESS_INTERVAL", "1.0 (default)"),
            "poll_interval": env.get("DRAFTDL_POLL_INTERVAL", "0.25 (default)"),
        },
        "stats": stats,
        "meets_target": ok,
        "aria2_notified_ms": aria2,
        "processing_to_completed_ms": spread(gaps),
        "loadavg_before": run.load_before,
        "loadavg_after": run.load_after,
        "error": run.error,
        "notes": sorted(set(run.notes)),
        "each": [r.as_json() for r in run.rounds],
    }


def print_lat_table(lat: Json) -> None:
    head = ["transport", "event", "n", "median ms", "p90 ms", "max ms", "min ms", "target", "ok"]
    table = [head]
    for tr, name in TRANSPORTS.items():
        for ev, label in LAT_EVENTS.items():
            st = lat["stats"][tr][ev]
            table.append(
                [
                    name,
                    label,
                    str(st["n"]),
                    fmt(st["median_ms"], ".1f"),
                    fmt(st["p90_ms"], ".1f"),
                    fmt(st["max_ms"], ".1f"),
                    fmt(st["min_ms"], ".1f"),
                    lat["target"],
                    yes_no(st["meets_target"]),
                ]
            )
    a = lat["aria2_notified_ms"]
    table.append(
        [
            "aria2 WS",
            "onDownloadComplete (reference)",
            str(a["n"]),
            fmt(a["median_ms"], ".1f"),
            fmt(a["p90_ms"], ".1f"),
            fmt(a["max_ms"], ".1f"),
            fmt(a["min_ms"], ".1f"),
            "-",
            "-",
        ]
    )
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    print(
        f"LAT: {lat['rounds']}/{lat['rounds_planned']} rounds, one file of "
        f"{lat['file_sizes'][0] / MIB:g}-{lat['file_sizes'][1] / MIB:g} MiB at "
        f"{lat['rate_bytes_per_s'] / MIB:g} MiB/s each; latency from its last byte "
        f"(progress_interval {lat['settings']['progress_interval']}, "
        f"poll_interval {lat['settings']['poll_interval']})"
    )
    for n, r in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    gap = lat["processing_to_completed_ms"]
    print(
        f"LAT target (all four medians <= {LAT_TARGET_MS:g} ms): {yes_no(lat['meets_target'])}; "
        f"processing -> completed (empty draft) median {fmt(gap['median_ms'], '.1f')} ms; "
        f"load avg {fmt_load(lat['loadavg_before'])} before, {fmt_load(lat['loadavg_after'])} after"
    )
    if lat["error"]:
        print(f"\nLAT ERROR: {lat['error']}")
    if lat["notes"]:
        print(f"LAT notes: {'; '.join(lat['notes'])}")


def fmt_load(load: Any) -> str:
    return "-" if not load else "/".join(f"{x:.2f}" for x in load)


# --------------------------------------------------------------------------- report


def mibps(wl: Workload, seconds: float | None) -> float | None:
    return wl.total_bytes / MIB / seconds if seconds else None


def summarize(wl: Workload, bare_runs: list[Run], dl_runs: list[Run] | None) -> Json:
    """Downloads follow the design's metric (time for W1/W2, throughput for W3); end to end
    is always time, and only W1 has a target for it. Every draft must be correct."""
    bare = median_run(bare_runs)
    dl = None if dl_runs is None else median_run(dl_runs)
    ratio: float | None = None
    ok: bool | None = None
    e2e_ratio: float | None = None
    e2e_ok: bool | None = None
    drafts_ok: bool | None = None
    if dl is not None and bare.dl_s:
        if dl.dl_s:
            if wl.metric == "time":
                ratio = dl.dl_s / bare.dl_s
                ok = ratio <= wl.limit
            else:
                ratio = bare.dl_s / dl.dl_s
                ok = ratio >= wl.limit
        if dl.e2e_s and wl.pictures:
            e2e_ratio = dl.e2e_s / bare.dl_s
            e2e_ok = None if wl.e2e_limit is None else e2e_ratio <= wl.e2e_limit
        if dl.drafts_total is not None:
            drafts_ok = dl.drafts_ok == dl.drafts_total
    return {
        "workload": wl.name,
        "tasks": wl.tasks,
        "files_per_task": wl.files_per_task,
        "file_size": wl.file_size,
        "files": "padded 320x240 JPEG" if wl.pictures else "random bytes",
        "total_bytes": wl.total_bytes,
        "metric": wl.metric,
        "target": wl.target,
        "e2e_target": wl.e2e_target,
        "bare": asdict(bare) | {"mib_per_s": mibps(wl, bare.dl_s)},
        "draftdl": None if dl is None else asdict(dl) | {"mib_per_s": mibps(wl, dl.dl_s)},
        "ratio": ratio,
        "meets_target": ok,
        "e2e_ratio": e2e_ratio,
        "meets_e2e_target": e2e_ok,
        "drafts_all_correct": drafts_ok,
        "bare_dl_s_each": [r.dl_s for r in bare_runs],
        "draftdl_dl_s_each": None if dl_runs is None else [r.dl_s for r in dl_runs],
        "draftdl_e2e_s_each": None if dl_runs is None else [r.e2e_s for r in dl_runs],
        "draftdl_drafts_ok_each": None if dl_runs is None else [r.drafts_ok for r in dl_runs],
    }


def fmt(v: float | None, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def yes_no(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "NO")


def print_table(rows: list[Json]) -> None:
    head = [
        "workload",
        "bare s",
        "dl s",
        "e2e s",
        "bare MiB/s",
        "dl MiB/s",
        "dl ratio",
        "dl target",
        "ok",
        "e2e ratio",
        "e2e target",
        "ok",
        "drafts",
        "srv CPU s",
        "draft CPU s",
        "dl aria2 CPU s",
        "bare aria2 CPU s",
        "req/tick",
    ]
    table = [head]
    for row in rows:
        b, d = row["bare"], row["draftdl"] or {}
        drafts = "-"
        if d.get("drafts_total") is not None:
            drafts = f"{d['drafts_ok']}/{d['drafts_total']}"
            drafts += "" if row["drafts_all_correct"] else " NO"
        table.append(
            [
                row["workload"],
                fmt(b["dl_s"]),
                fmt(d.get("dl_s")),
                fmt(d.get("e2e_s")),
                fmt(b["mib_per_s"], ".0f"),
                fmt(d.get("mib_per_s"), ".0f"),
                fmt(row["ratio"], ".2f"),
                row["target"],
                yes_no(row["meets_target"]),
                fmt(row["e2e_ratio"], ".2f"),
                row["e2e_target"],
                yes_no(row["meets_e2e_target"]),
                drafts,
                fmt(d.get("server_cpu_s"), ".2f"),
                fmt(d.get("draft_cpu_s"), ".2f"),
                fmt(d.get("aria2_cpu_s"), ".2f"),
                fmt(b["aria2_cpu_s"], ".2f"),
                fmt(d.get("rpc_per_tick"), ".2f"),
            ]
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for n, r in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for row in rows:
        for side in ("bare", "draftdl"):
            res = row[side]
            if res and res["error"]:
                print(f"\n{row['workload']} {side} ERROR: {res['error']}")
            if res and res["notes"]:
                notes = res["notes"]
                shown = "; ".join(notes[:3]) + (
                    f"; (+{len(notes) - 3} more)" if len(notes) > 3 else ""
                )
                print(f"{row['workload']} {side} notes: {shown}")
        d = row["draftdl"] or {}
        if d.get("draft_step_max_s") is not None:
            print(
                f"{row['workload']} slowest draft step in the service log: "
                f"{d['draft_step_max_s']:.2f} s"
            )


def run_line(r: Run) -> str:
    """One repeat as printed while the bench runs."""
    if r.error:
        return f"ERROR {r.error.splitlines()[0]}"
    return (
        f"downloads {fmt(r.dl_s)} s, end to end {fmt(r.e2e_s)} s, "
        f"drafts {r.drafts_ok}/{r.drafts_total}"
    )


def tool_version(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except OSError as exc:
        return f"unavailable ({exc})"
    text = (p.stdout + p.stderr).strip().splitlines()
    return text[0] if text else "?"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--workloads", default="W1,W2,W3,LAT", help="comma list of W1,W2,W3,LAT")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"W3 uses 256 MiB, not 1 GiB; LAT runs {LAT_ROUNDS_QUICK} rounds, not {LAT_ROUNDS}",
    )
    p.add_argument("--repeat", type=int, default=1, help="runs per measurement; median kept")
    p.add_argument("--only-bare", action="store_true", help="skip the draftdl side")
    p.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed bare aria2c passes per workload first (default 1); the first pass on a "
        "fresh data set is markedly slower and would otherwise penalise whichever side goes first",
    )
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per measurement")
    p.add_argument(
        "--aria2-opt",
        action="append",
        default=[],
        metavar="OPT",
        help="extra option for bare aria2c, e.g. --aria2-opt=--split=5 (repeatable)",
    )
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs) at exit")
    p.add_argument(
        "--output", type=Path, default=BENCH_DIR / "results" / "latest.json", help="JSON path"
    )
    p.add_argument("--lat-rounds", type=int, help="LAT tasks (default 20, 8 with --quick)")
    args = p.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0 or (args.lat_rounds is not None and args.lat_rounds < 1):
        p.error("--repeat and --lat-rounds must be >= 1 and --warmup >= 0")
    return args


def raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM takes the same cleanup path as Ctrl-C."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    all_wl = make_workloads(args.quick)
    names = [n.strip().upper() for n in args.workloads.split(",") if n.strip()]
    unknown = [n for n in names if n not in all_wl and n != "LAT"]
    if unknown or not names:
        print(f"unknown workloads {unknown}; choose from {', '.join(all_wl)}, LAT", file=sys.stderr)
        return 2
    workloads = [all_wl[n] for n in dict.fromkeys(names) if n != "LAT"]
    lat_rounds = 0
    if "LAT" in names and args.only_bare:
        print("LAT has no bare side; skipped with --only-bare", file=sys.stderr)
    elif "LAT" in names:
        lat_rounds = args.lat_rounds or (LAT_ROUNDS_QUICK if args.quick else LAT_ROUNDS)
    for tool in (NGINX, ARIA2C) if workloads else (ARIA2C,):
        if not os.access(tool, os.X_OK):
            print(f"{tool} not found", file=sys.stderr)
            return 2

    # Explicit handlers: an inherited SIG_IGN (e.g. started with `&` from a script) would
    # otherwise make Ctrl-C a no-op here and be passed on to the service, which then cannot
    # be stopped with SIGINT either.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, raise_interrupt)
    data_bytes = sum(w.total_bytes for w in workloads)
    need = data_bytes + max((w.total_bytes for w in workloads), default=0) + 256 * MIB
    tmp = Path(tempfile.mkdtemp(prefix="draftdl-bench-", dir=pick_tmp_root(need)))
    print(f"temp dir: {tmp}")
    ports: set[int] = set()
    rows: list[Json] = []
    lat: Json | None = None
    failed = False
    try:
        root = tmp / "www"
        t0 = time.perf_counter()
        photo = PHOTO.read_bytes() if any(w.pictures for w in workloads) else b""
        for wl in workloads:
            for paths in wl.rel_paths():
                for rel in paths:
                    if wl.pictures:
                        write_padded_photo(root / rel, wl.file_size, photo)
                    else:
                        write_random_file(root / rel, wl.file_size)
        if workloads:
            print(f"wrote {data_bytes / MIB:.0f} MiB of data in {time.perf_counter() - t0:.1f} s")
        with (
            nginx_server(tmp, root, free_port(ports)) if workloads else nullcontext("") as base_url
        ):
            if workloads:
                print(f"nginx at {base_url}")
            for wl in workloads:
                bare_runs: list[Run] = []
                dl_runs: list[Run] = []
                for i in range(args.warmup):
                    with suppress(BenchError):
                        warm = f"{wl.name}-warm{i}"
                        run_bare(wl, base_url, tmp, warm, args.aria2_opt, args.timeout)
                for i in range(args.repeat):
                    tag = f"{wl.name}-{i}"
                    try:
                        r = run_bare(wl, base_url, tmp, tag, args.aria2_opt, args.timeout)
                    except BenchError as exc:
                        r = Run(error=str(exc))
                    bare_runs.append(r)
                    print(f"{wl.name} bare #{i + 1}: {fmt(r.dl_s)} s {r.error or ''}".rstrip())
                    if not args.only_bare:
                        r = run_draftdl(wl, base_url, tmp, tag, ports, args.timeout)
                        dl_runs.append(r)
                        print(f"{wl.name} draftdl #{i + 1}: {run_line(r)}")
                row = summarize(wl, bare_runs, None if args.only_bare else dl_runs)
                failed |= bool(row["bare"]["error"] or (row["draftdl"] or {}).get("error"))
                rows.append(row)
        if lat_rounds:
            lat = summarize_lat(run_lat(lat_rounds, tmp, ports, args.timeout), lat_rounds)
            failed |= bool(lat["error"])
    except KeyboardInterrupt:
        print("\ninterrupted; cleaned up", file=sys.stderr)
        return 130
    finally:
        if args.keep_tmp:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    if rows:
        print()
        print_table(rows)
    if lat is not None:
        print()
        print_lat_table(lat)
    result = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": args.quick,
        "repeat": args.repeat,
        "warmup": args.warmup,
        "only_bare": args.only_bare,
        "bare_aria2c_extra_opts": args.aria2_opt,
        "host": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "nginx": tool_version([NGINX, "-v"]),
        "aria2c": tool_version([ARIA2C, "--version"]),
        "tmp_root": str(tmp.parent),
        "inherited_draftdl_env": {k: v for k, v in os.environ.items() if k.startswith("DRAFTDL_")},
        "workloads": rows,
        "latency": lat,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
