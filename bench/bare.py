"""Bare aria2c, the floor: one process with every file of a workload in its input list."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from bench.common import ARIA2C, BenchError, log_tail, stop_process, wait4_timeout
from bench.verify import verify_dir


def bare_command(input_list: Path, out: Path, extra: list[str]) -> list[str]:
    return [
        ARIA2C,
        "--no-conf=true",
        "-i",
        str(input_list),
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


def run_bare_aria2c(
    tasks: list[list[str]],
    file_size: int,
    base_url: str,
    tmp: Path,
    tag: str,
    extra: list[str],
    timeout: float,
) -> tuple[float, float]:
    """Downloads ``tasks`` (per task, its files' URL paths) into one folder per task, like
    the service; returns (wall seconds, aria2c CPU seconds from its rusage)."""
    out = tmp / f"bare-out-{tag}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    lst = tmp / f"bare-{tag}.txt"
    lines: list[str] = []
    for t, paths in enumerate(tasks):
        for rel in paths:
            lines += [f"{base_url}/{rel}", f"  out={Path(rel).name}", f"  dir={out / f't{t:03d}'}"]
    lst.write_text("\n".join(lines) + "\n")
    log_path = tmp / f"bare-{tag}.log"
    try:
        with log_path.open("wb") as log:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                bare_command(lst, out, extra),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
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
        for t, paths in enumerate(tasks):
            verify_dir(out / f"t{t:03d}", [file_size] * len(paths))
        return wall, usage.ru_utime + usage.ru_stime
    finally:
        shutil.rmtree(out, ignore_errors=True)
