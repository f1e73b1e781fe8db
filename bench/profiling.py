"""py-spy on the server during one workload: a speedscope profile and its hot spots.

``py-spy record --pid <server> --format speedscope --function --nonblocking`` samples every
thread of the server (idle samples dropped, so the profile is where its CPU goes) without
pausing it. The summary counts, per function (``--function``: by its first line), the samples
in which it is the innermost frame ("own", any code) and, for draftdl's own functions, those
in which it is on the stack at all ("total": it and everything it calls); then own time by
package and samples by thread. The profile itself opens in https://www.speedscope.app.
py-spy needs ptrace on the server, which root has.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import BenchError, Json, log_tail, stop_process

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 30.0
TOP = 10


def py_spy_path() -> str:
    """py-spy from the bench extra, next to this Python; else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return str(beside)
    found = shutil.which("py-spy")
    if found is None:
        raise BenchError("py-spy not found: pip install -e '.[bench]'")
    return found


@dataclass
class Profile:
    """Where one profile went and what it found."""

    workload: str
    speedscope: Path
    summary: Path
    rate: int
    seconds: float = 0.0
    samples: int = 0
    top_own: list[Json] = field(default_factory=list)
    top_total: list[Json] = field(default_factory=list)
    packages: list[Json] = field(default_factory=list)
    threads: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    run: Json | None = None  # the profiled run's own figures (not counted in the results)

    def as_json(self) -> Json:
        return {
            "workload": self.workload,
            "speedscope": str(self.speedscope),
            "summary": str(self.summary),
            "rate_hz": self.rate,
            "seconds": self.seconds,
            "samples": self.samples,
            "top_own": self.top_own,
            "top_total": self.top_total,
            "packages_own": self.packages,
            "threads": self.threads,
            "error": self.error,
            "run": self.run,
        }


@contextmanager
def py_spy(pid: int, profile: Profile) -> Iterator[None]:
    """Samples ``pid`` while the body runs; the file is written when py-spy gets SIGINT."""
    profile.speedscope.parent.mkdir(parents=True, exist_ok=True)
    log_path = profile.speedscope.with_suffix(".log")
    cmd = [
        py_spy_path(),
        "record",
        "--pid",
        str(pid),
        "--rate",
        str(profile.rate),
        "--format",
        "speedscope",
        "--output",
        str(profile.speedscope),
        "--function",
        "--nonblocking",
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Sampling process" not in log_tail(log_path):
            if proc.poll() is not None:
                raise BenchError(f"py-spy exited with {proc.returncode}: {log_tail(log_path, 5)}")
            if time.monotonic() > deadline:
                raise BenchError(f"py-spy did not start sampling in {START_TIMEOUT_S:g} s")
            time.sleep(0.02)
        t0 = time.perf_counter()
        yield
        profile.seconds = time.perf_counter() - t0
    finally:
        stop_process(proc, signal.SIGINT, STOP_TIMEOUT_S)
    if not profile.speedscope.is_file():
        raise BenchError(f"py-spy wrote no profile: {log_tail(log_path, 5)}")


def short_file(path: str) -> str:
    """A frame's file without the interpreter's or the venv's prefix."""
    for marker in ("site-packages/", "/src/", "/lib/python3."):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker == "/lib/python3." else tail
    return path


def package_of(path: str) -> str:
    """The distribution a frame belongs to: draftdl, a site package, or stdlib."""
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/src/draftdl/" in path:
        return "draftdl"
    if "/lib/python3." in path:
        rest = path.split("/lib/python3.", 1)[1].split("/", 1)
        mod = rest[1].split("/", 1)[0].removesuffix(".py") if len(rest) > 1 else "?"
        return f"stdlib {mod}"
    return path


def is_own_code(path: str) -> bool:
    """draftdl's code below its command line: the entry frames (click, uvicorn, asyncio's
    runner) are on every stack and would fill a top list by total time."""
    return "/draftdl/" in path and "/draftdl/cli/" not in path and "__main__" not in path


def summarize(profile: Profile) -> None:
    """Own and total samples per function from the speedscope file, into ``profile``."""
    data = json.loads(profile.speedscope.read_text())
    frames = data["shared"]["frames"]
    labels = [
        f"{f['name']} ({short_file(str(f.get('file', '?')))}:{f.get('line')})" for f in frames
    ]
    packages = [package_of(str(f.get("file", "?"))) for f in frames]
    own: Counter[int] = Counter()
    total: Counter[int] = Counter()
    pkg_own: Counter[str] = Counter()
    samples = 0
    for prof in data["profiles"]:
        stacks = prof.get("samples", [])
        profile.threads[str(prof.get("name"))] = len(stacks)
        for stack in stacks:
            if not stack:
                continue
            samples += 1
            leaf = stack[-1]  # speedscope stacks run from the root to the innermost frame
            own[leaf] += 1
            pkg_own[packages[leaf]] += 1
            for idx in set(stack):
                total[idx] += 1
    profile.samples = samples

    def row(idx: int) -> Json:
        return {
            "function": labels[idx],
            "own_samples": own[idx],
            "own_pct": 100 * own[idx] / samples if samples else 0.0,
            "total_samples": total[idx],
            "total_pct": 100 * total[idx] / samples if samples else 0.0,
        }

    profile.top_own = [row(i) for i, _ in own.most_common(TOP)]
    ours = [i for i, f in enumerate(frames) if is_own_code(str(f.get("file", "")))]
    profile.top_total = [row(i) for i in sorted(ours, key=lambda i: -total[i])[:TOP] if total[i]]
    profile.packages = [
        {"package": p, "own_samples": c, "own_pct": 100 * c / samples if samples else 0.0}
        for p, c in pkg_own.most_common(TOP)
    ]
    profile.summary.write_text(summary_text(profile))


def summary_text(profile: Profile) -> str:
    lines = [
        f"py-spy profile of the draftdl server during {profile.workload}: "
        f"{profile.samples} samples at {profile.rate} Hz over {profile.seconds:.1f} s "
        "(idle samples not counted)",
        f"speedscope file: {profile.speedscope}",
        "",
        f"top {TOP} functions by own time (innermost frame)",
    ]
    for n, r in enumerate(profile.top_own, 1):
        lines.append(
            f"{n:3d}. {r['own_pct']:5.1f}% own  {r['total_pct']:5.1f}% total  {r['function']}"
        )
    lines += ["", f"top {TOP} draftdl functions by total time (on the stack, with all they call)"]
    for n, r in enumerate(profile.top_total, 1):
        lines.append(
            f"{n:3d}. {r['total_pct']:5.1f}% total  {r['own_pct']:5.1f}% own  {r['function']}"
        )
    lines += ["", "own time by package"]
    for r in profile.packages:
        lines.append(f"     {r['own_pct']:5.1f}%  {r['package']}")
    lines += ["", "samples by thread"]
    for name, count in sorted(profile.threads.items(), key=lambda kv: -kv[1]):
        lines.append(f"     {count:6d}  {name}")
    return "\n".join(lines) + "\n"
