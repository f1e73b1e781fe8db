"""What every workload family shares: paths, units, /proc readings, ports and child processes."""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Coroutine
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
GIB = 1024 * MIB
KIB = 1024
BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
NGINX = "/usr/sbin/nginx"
ARIA2C = "/usr/bin/aria2c"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

Json = dict[str, Any]


class BenchError(Exception):
    """A measurement failed; reported with its workload instead of ending the whole run."""


# --------------------------------------------------------------------------- /proc


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


def proc_cpu_s(pid: int | None) -> float | None:
    """utime+stime of a live process (all its threads), in seconds."""
    fields = None if pid is None else proc_stat(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_memory(pid: int | None) -> dict[str, float] | None:
    """VmRSS and VmHWM (the peak RSS) of a live process, in MiB."""
    if pid is None:
        return None
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    out: dict[str, float] = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name.lower()] = int(value.split()[0]) / 1024  # kB
    return out or None


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


def self_cpu_s() -> float:
    """This process's own CPU (the bench's clients), to show they were not the bottleneck."""
    t = os.times()
    return t.user + t.system


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


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def pick_tmp_root(need: int) -> Path:
    """tmpfs keeps disk I/O out of the numbers; fall back to /tmp when it is too small."""
    shm = Path("/dev/shm")
    with suppress(OSError):
        if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > need:
            return shm
    return Path(tempfile.gettempdir())


def tool_version(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except OSError as exc:
        return f"unavailable ({exc})"
    text = (p.stdout + p.stderr).strip().splitlines()
    return text[0] if text else "?"


def machine(src: Path | None = None) -> Json:
    """What the README's table names: CPU, cores, memory, kernel, tools, the commit measured
    (the repository's, with a mark when its src/ has changes; or the --src tree's)."""
    model = "?"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib: float | None = None
    with suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    commit = tool_version(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "--", "src"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if src is not None:
        commit, dirty = f"{commit} (server from {src})", ""
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "memory_gib": mem_gib,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nginx": tool_version([NGINX, "-v"]),
        "aria2c": tool_version([ARIA2C, "--version"]),
        "commit": commit + (" (src/ modified)" if dirty else ""),
    }


def fmt(v: float | None, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def yes_no(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "NO")


@dataclass
class Context:
    """What every workload run needs: the temp dir, nginx's URL, the ports handed out."""

    tmp: Path
    base_url: str
    ports: set[int]
    timeout: float
    aria2_opts: list[str] = field(default_factory=list)
    only_bare: bool = False
    quick: bool = False
    src: Path | None = None  # the server's source tree (--src); None: the installed draftdl


async def gather_all(*coros: Coroutine[Any, Any, None]) -> None:
    """Runs the coroutines together; the first to fail cancels the others and is raised."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            exc = None if t.cancelled() else t.exception()
            if exc is not None:
                raise exc
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
