"""The draftdl CLI end to end: a real process talking to a real server."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fileserver import FileServer
from servers import LiveServer, free_port, job, live_server, load_example, make_settings


@pytest.fixture
async def server(data_dir: Path) -> AsyncIterator[LiveServer]:
    async with live_server(make_settings(data_dir)) as live:
        yield live


async def draftdl(*args: str, server: str, tty: bool = False) -> tuple[int, str]:
    """Runs the CLI; with ``tty`` its output goes to a pseudo-terminal, as in a shell."""
    env = {**os.environ, "DRAFTDL_SERVER": server, "COLUMNS": "120"}
    command = [sys.executable, "-m", "draftdl", *args]
    if not tty:
        proc = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode or 0, out.decode()
    leader, follower = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        *command, env={**env, "TERM": "xterm"}, stdout=follower, stderr=follower
    )
    os.close(follower)
    chunks: list[bytes] = []

    def read_all() -> None:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = asyncio.get_running_loop().run_in_executor(None, read_all)
    code = await asyncio.wait_for(proc.wait(), 60)
    await asyncio.wait_for(reader, 10)
    os.close(leader)
    return code, b"".join(chunks).decode(errors="replace")


def write_job(tmp_path: Path, body: dict[str, object]) -> str:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    return str(path)


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
    task_id = out.split()[1]
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
    task_id = out.split()[1]
    async with server.client() as http:
        assert (await http.get(f"/api/tasks/{task_id}")).json()["priority"] == 7
    code, out = await draftdl("list", "--status", "completed", server=server.base_url)
    assert code == 0 and task_id in out and "1 of 1 tasks" in out
    code, out = await draftdl("list", "--status", "failed", server=server.base_url)
    assert code == 0 and task_id not in out


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
