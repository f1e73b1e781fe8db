"""The draftdl CLI end to end: a real process talking to a real server; the progress display
in both modes (plain lines when stdout is not a terminal, rich bars on a pseudo-terminal)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from fileserver import FileServer
from servers import LiveServer, free_port, job, live_server, load_example, make_settings


@pytest.fixture
async def server(data_dir: Path) -> AsyncIterator[LiveServer]:
    async with live_server(make_settings(data_dir)) as live:
        yield live


class Cli:
    """A ``python -m draftdl`` process whose output (stdout and stderr together) is read as
    it comes; on a pseudo-terminal with ``tty``, as in a shell."""

    def __init__(self, proc: asyncio.subprocess.Process, fd: int) -> None:
        self.proc = proc
        self.fd = fd
        self.chunks: list[bytes] = []
        self.changed = asyncio.Event()
        loop = asyncio.get_running_loop()
        self.reader = loop.run_in_executor(None, self._read, loop)

    @classmethod
    async def start(
        cls, *args: str, server: str, tty: bool = False, cwd: Path | None = None
    ) -> Cli:
        env = {**os.environ, "DRAFTDL_SERVER": server, "COLUMNS": "120", "TERM": "xterm"}
        env.pop("DRAFTDL_API_TOKEN", None)
        leader, follower = pty.openpty() if tty else os.pipe()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "draftdl",
            *args,
            env=env,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=follower,
            stderr=follower,
        )
        os.close(follower)
        return cls(proc, leader)

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # a pty's leader reads EIO once the child is gone
                data = b""
            if data:
                self.chunks.append(data)
            loop.call_soon_threadsafe(self.changed.set)
            if not data:
                return

    @property
    def output(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")

    async def wait_for(self, found: Callable[[str], bool], timeout: float = 30.0) -> str:
        """Waits until ``found(output)``; fails if the process ends first."""
        async with asyncio.timeout(timeout):
            while not found(self.output):
                if self.reader.done():
                    raise AssertionError(f"the CLI ended first: {self.output}")
                self.changed.clear()
                await self.changed.wait()
        return self.output

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends

    async def finish(self, timeout: float = 60.0) -> tuple[int, str]:
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
            await asyncio.wait_for(self.reader, 10)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
            with contextlib.suppress(OSError):
                os.close(self.fd)
        return code, self.output


async def draftdl(
    *args: str, server: str, tty: bool = False, cwd: Path | None = None
) -> tuple[int, str]:
    """Runs the CLI to its end: (exit code, output)."""
    cli = await Cli.start(*args, server=server, tty=tty, cwd=cwd)
    return await cli.finish()


def write_job(tmp_path: Path, body: dict[str, Any], name: str = "job.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(body), encoding="utf-8")
    return str(path)


def task_id_of(out: str) -> str:
    match = re.search(r"^task (\S+) accepted", out, re.M)
    assert match, out
    return match.group(1)


async def wait_task(
    live: LiveServer, task_id: str, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Waits on the task's events (no polling) until ``predicate`` holds for its view."""
    queue = live.services.queue
    sub = queue.subscribe(task_id)
    try:
        async with asyncio.timeout(30):
            while True:
                view = (await queue.get_task(task_id)).view()
                if predicate(view):
                    return view
                await sub.get()
    finally:
        queue.unsubscribe(sub)


def downloading(view: dict[str, Any]) -> bool:
    """Bytes are moving and the server has measured their speed."""
    return bool(view["status"] == "downloading" and view["progress"]["download_speed"] > 0)


CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
REDRAW = re.compile(r"(?:\x1b\[2K\x1b\[1A)+\x1b\[2K")  # rich's live display going back up
# A size or speed as we print them: only binary units, one decimal.
AMOUNT = re.compile(r"\b\d+(?:\.\d)? ?(?:[kKMGT]i?B|B)\b")
BINARY = re.compile(r"^(?:\d+ B|\d+\.\d (?:KiB|MiB|GiB))$")


def frames(out: str) -> list[list[str]]:
    """What a terminal showed, frame by frame: rich redraws its bars in place."""
    return [
        [line.rstrip() for line in CSI.sub("", part).replace("\r", "").split("\n")]
        for part in REDRAW.split(out)
    ]


def amounts(text: str) -> list[str]:
    return [m.group(0) for m in AMOUNT.finditer(CSI.sub("", text))]


# -- plain lines ----------------------------------------------------------------------------


async def test_submit_and_watch_to_completion_plain(
    server: LiveServer, fileserver: FileServer, tmp_path: Path
) -> None:
    body = load_example("basic-draft.json", fileserver.base_url)
    code, out = await draftdl(
        "submit", write_job(tmp_path, body), "--watch", server=server.base_url
    )
    assert code == 0, out
    assert "accepted (3 files)" in out
    assert "\x1b" not in out  # no control codes when not on a terminal
    last = out.strip().splitlines()[-1]
    assert last.startswith("completed: draft at ") and "Basic montage_" in last


async def test_two_files_one_finishing_first_plain(
    server: LiveServer, fileserver: FileServer, tmp_path: Path
) -> None:
    """The small file ends while the throttled one goes on; each file's end is told once,
    the final figures last, without a speed or an ETA, in binary units only."""
    body = job(
        [fileserver.url("/size/1K/first.bin"), fileserver.url("/slow/1M/second.bin?rate=384K")]
    )
    code, out = await draftdl(
        "submit", write_job(tmp_path, body), "--watch", server=server.base_url
    )
    assert code == 0, out
    lines = out.strip().splitlines()
    assert lines[0].endswith("accepted (2 files)")
    assert len(lines) == len(set(lines)), out  # nothing printed twice
    first = lines.index("file first.bin: complete 100.0% 1.0 KiB/1.0 KiB")
    second = lines.index("file second.bin: complete 100.0% 1.0 MiB/1.0 MiB")
    assert first < second
    # While the second file went on, its progress was printed with the first one counted.
    assert any(
        re.fullmatch(r"downloading: [\d.]+% .*, files 1/2, [\d.]+ KiB/s, ETA \d+s", line)
        for line in lines[first:second]
    ), out
    assert lines[-2:] == [
        "completed: 100.0% 1.0 MiB/1.0 MiB, files 2/2",  # no stale speed, no ETA
        lines[-1],
    ]
    assert lines[-1].startswith("completed: draft at ")
    assert amounts(out) and all(BINARY.match(a) for a in amounts(out)), amounts(out)


async def test_one_file_is_one_file(
    server: LiveServer, fileserver: FileServer, tmp_path: Path
) -> None:
    body = job([fileserver.url("/size/1K/one.bin")])
    code, out = await draftdl("submit", write_job(tmp_path, body), server=server.base_url)
    assert code == 0, out
    assert out.strip().endswith("accepted (1 file)")


# -- bars on a terminal ---------------------------------------------------------------------


async def test_watch_on_a_terminal_draws_bars(
    server: LiveServer, fileserver: FileServer, tmp_path: Path
) -> None:
    body = job([fileserver.url(f"/slow/512K/bar{i}.bin?rate=512K") for i in range(2)])
    code, out = await draftdl(
        "submit", write_job(tmp_path, body), "--watch", server=server.base_url, tty=True
    )
    assert code == 0, out
    assert "\x1b[" in out and "━" in out  # rich's live bars
    assert "completed" in out


@pytest.mark.parametrize(
    ("first", "size", "total"),
    [
        ("/size/1K/first.bin", "1.0 KiB", "1.0 MiB"),  # done before the watch saw it start
        ("/slow/128K/first.bin?rate=128K", "128.0 KiB", "1.1 MiB"),  # seen active, then done
    ],
)
async def test_bars_when_one_file_finishes_before_the_other(
    server: LiveServer,
    fileserver: FileServer,
    tmp_path: Path,
    first: str,
    size: str,
    total: str,
) -> None:
    """Regression: a finished file's bar was removed from rich but kept by the watch, whose
    next update of it raised KeyError inside rich. Now it stays, at 100 %."""
    body = job([fileserver.url(first), fileserver.url("/slow/1M/second.bin?rate=384K")])
    code, out = await draftdl(
        "submit", write_job(tmp_path, body), "--watch", server=server.base_url, tty=True
    )
    assert code == 0, out
    assert "Traceback" not in out and "KeyError" not in out
    shown = frames(out)
    done = rf"\s+first\.bin\s.*100\.0%\s+{size}/{size}\s+done$"
    # A frame drawn while the second file was still on its way shows the first one done.
    assert any(
        any(re.match(done, line) for line in frame)
        and any(re.match(r"\s+second\.bin\s.*\d+\.\d%\s.*KiB/s", line) for line in frame)
        for frame in shown
    ), out
    last = [line for line in shown[-1] if line.strip()]
    assert re.match(rf"completed, files 2/2 .*100\.0% +{total}/{total}$", last[0]), last
    assert re.match(done, last[1]), last
    assert re.match(r"\s+second\.bin .*100\.0%\s+1\.0 MiB/1\.0 MiB\s+done$", last[2]), last
    assert last[3].startswith("completed: draft at "), last
    assert amounts(out) and all(BINARY.match(a) for a in amounts(out)), amounts(out)


# -- joining a running task, Ctrl-C --------------------------------------------------------


async def test_ctrl_c_leaves_the_task_running_plain(
    server: LiveServer, fileserver: FileServer, tmp_path: Path
) -> None:
    body = job([fileserver.url("/slow/8M/long.bin?rate=256K")])
    code, out = await draftdl("submit", write_job(tmp_path, body), server=server.base_url)
    assert code == 0, out
    task_id = task_id_of(out)
    await wait_task(server, task_id, downloading)
    watching = await Cli.start("watch", task_id, server=server.base_url)
    # Joining a running task: its first line has the speed the server measured.
    await watching.wait_for(lambda o: re.search(r"downloading: .* KiB/s, ETA \d+", o) is not None)
    watching.interrupt()
    code, out = await watching.finish()
    assert code == 130, out
    assert out.strip().splitlines()[-1] == (
        f"stopped watching: task {task_id} goes on in the server "
        f"(`draftdl cancel {task_id}` cancels it)"
    )
    assert "Traceback" not in out and "Aborted" not in out
    view = (await server.services.queue.get_task(task_id)).view()
    assert view["status"] == "downloading"


async def test_joining_on_a_terminal_shows_the_speed_at_once(
    server: LiveServer, fileserver: FileServer, tmp_path: Path
) -> None:
    body = job([fileserver.url("/slow/8M/long.bin?rate=256K")])
    code, out = await draftdl("submit", write_job(tmp_path, body), server=server.base_url)
    task_id = task_id_of(out)
    await wait_task(server, task_id, downloading)
    watching = await Cli.start("watch", task_id, server=server.base_url, tty=True)
    await watching.wait_for(lambda o: any("long.bin" in ln for f in frames(o) for ln in f))
    first = next(f for f in frames(watching.output) if any("long.bin" in ln for ln in f))
    # The very first frame: the speed is the snapshot's, not one worked out later here.
    assert re.search(r"downloading, files 0/1 .* \d+\.\d KiB/s ETA \d+", first[0]), first
    assert re.search(r"long\.bin .* \d+\.\d KiB/s ETA \d+", first[1]), first
    watching.interrupt()
    code, out = await watching.finish()
    assert code == 130, out
    assert f"goes on in the server (`draftdl cancel {task_id}` cancels it)" in out
    view = (await server.services.queue.get_task(task_id)).view()
    assert view["status"] == "downloading"


# -- the existing commands -----------------------------------------------------------------


async def test_failed_and_cancelled_tasks_exit_non_zero(
    server: LiveServer, fileserver: FileServer, tmp_path: Path
) -> None:
    bad = fileserver.url("/status/404/missing.mp4")
    code, out = await draftdl(
        "submit", write_job(tmp_path, job([bad])), "--watch", server=server.base_url
    )
    assert code == 1
    assert "failed:" in out and bad in out and "404" in out

    slow = job([fileserver.url("/slow/8M/c.bin?rate=256K")])
    code, out = await draftdl("submit", write_job(tmp_path, slow), server=server.base_url)
    assert code == 0
    task_id = task_id_of(out)
    watcher = asyncio.create_task(draftdl("watch", task_id, server=server.base_url))
    code, out = await draftdl("cancel", task_id, server=server.base_url)
    assert code == 0 and "cancelled" in out
    code, out = await watcher
    assert code == 2 and out.strip().endswith("cancelled")


async def test_list_and_priority(
    server: LiveServer, fileserver: FileServer, tmp_path: Path
) -> None:
    body = job([fileserver.url("/size/1K/l.bin")])
    code, out = await draftdl(
        "submit", write_job(tmp_path, body), "--priority", "7", "--watch", server=server.base_url
    )
    assert code == 0, out
    task_id = task_id_of(out)
    async with server.client() as http:
        assert (await http.get(f"/api/tasks/{task_id}")).json()["priority"] == 7
    code, out = await draftdl("list", "--status", "completed", server=server.base_url)
    assert code == 0 and task_id in out and out.strip().splitlines()[-1] == "1 of 1 task"
    code, out = await draftdl("list", "--status", "failed", server=server.base_url)
    assert code == 0 and task_id not in out and out.strip() == "0 of 0 tasks"


async def test_errors_are_one_line(server: LiveServer, tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    code, out = await draftdl("list", server=nobody)
    assert code == 3
    assert out.strip().count("\n") == 0 and "cannot reach draftdl" in out
    assert "Traceback" not in out
    bad = write_job(tmp_path, job(["ftp://h/x.mp4"]))
    code, out = await draftdl("submit", bad, server=server.base_url)
    assert code == 3 and "422" in out and "materials[0].path" in out
    code, out = await draftdl("watch", "nope", server=server.base_url)
    assert code == 3 and "404" in out
