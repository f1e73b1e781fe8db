"""Faults caused for real: aria2c killed, the server killed, aria2c missing, its port taken."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from draftdl.errors import DraftBuildError
from draftdl.model.task import TaskState
from fileserver import FileServer, content_for
from servers import ServerProcess, aria2_pid_alive, job, make_settings, running_service, until

SIZE = 8 * 1024 * 1024


async def test_aria2c_killed_mid_download_is_restarted_and_resumes(
    data_dir: Path, fileserver: FileServer
) -> None:
    path = "/slow/8M/big.bin"
    async with running_service(make_settings(data_dir)) as svc:
        manager = svc.services.manager
        task_id = await svc.submit(job([fileserver.url(f"{path}?rate=4M")]))
        await svc.wait_task(task_id, lambda t: t["progress"]["downloaded_size"] > SIZE // 3)
        old_pid = manager.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        took = await until(
            lambda: manager.running and manager.pid not in (None, old_pid), timeout=5.0
        )
        assert took < 5.0
        assert not aria2_pid_alive(old_pid)
        task = await svc.wait_final(task_id, timeout=30)
        assert task["status"] == "completed", task["error_message"]
        assert Path(task["files"][0]["file_path"]).read_bytes() == content_for("big.bin", SIZE)
        assert task["files"][0]["attempts"] == 1  # aria2c dying is no new try of the file
        health = (await svc.http.get("/api/health")).json()
        assert health["aria2"]["running"] is True and health["aria2"]["restarts"] >= 1
    # Resumed, not started again: far fewer bytes fetched again than the file holds.
    assert fileserver.bytes_served(path) < 1.5 * SIZE


async def test_server_killed_mid_download_carries_on_after_restart(
    data_dir: Path, fileserver: FileServer
) -> None:
    path = "/slow/8M/resume.bin"
    server = ServerProcess(data_dir)
    try:
        await server.start()
        async with server.client() as http:
            resp = await http.post(
                "/api/tasks/submit", json=job([fileserver.url(f"{path}?rate=4M")])
            )
            task_id = resp.json()["task_id"]
            deadline = time.monotonic() + 20
            while True:  # the child's progress is only visible over HTTP
                task = (await http.get(f"/api/tasks/{task_id}")).json()
                if task["progress"]["downloaded_size"] > SIZE // 3:
                    break
                assert time.monotonic() < deadline, task
                await asyncio.sleep(0.05)
        server.kill()
        await server.start()
        async with server.client() as http:
            deadline = time.monotonic() + 30
            while True:
                task = (await http.get(f"/api/tasks/{task_id}")).json()
                if task["status"] in ("completed", "failed", "cancelled"):
                    break
                assert time.monotonic() < deadline, task
                await asyncio.sleep(0.05)
        assert task["status"] == "completed", task["error_message"]
        assert Path(task["files"][0]["file_path"]).read_bytes() == content_for("resume.bin", SIZE)
    finally:
        server.stop()
    assert fileserver.bytes_served(path) < 1.5 * SIZE
    pidfile = data_dir / "aria2" / "aria2c.pid"
    assert not pidfile.exists()


async def test_missing_aria2c_is_reported_and_tasks_wait(
    data_dir: Path, fileserver: FileServer
) -> None:
    settings = make_settings(data_dir, aria2c_path=str(data_dir / "no" / "aria2c"))
    async with running_service(settings) as svc:
        health = (await svc.http.get("/api/health")).json()
        assert health["status"] == "degraded"
        assert health["aria2"]["running"] is False
        assert "is not an executable file" in health["aria2"]["reason"]
        task_id = await svc.submit(job([fileserver.url("/size/1K/a.bin")]))
        task = await svc.wait_task(task_id, lambda t: "aria2c" in (t["message"] or ""))
        assert task["status"] == "pending"
        assert "not an executable file" in task["message"]
        listing = await svc.http.get("/api/tasks")
        assert listing.status_code == 200 and listing.json()["total"] == 1
    # Nothing accepted is lost: with aria2c back, the same task completes.
    async with running_service(make_settings(data_dir)) as svc:
        task = await svc.wait_final(task_id)
        assert task["status"] == "completed"


async def test_busy_rpc_port_moves_aria2_elsewhere(
    data_dir: Path, fileserver: FileServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="draftdl.aria2.process")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        async with running_service(make_settings(data_dir, aria2_rpc_port=busy)) as svc:
            manager = svc.services.manager
            assert manager.running and manager.port not in (None, busy)
            moved = [r.getMessage() for r in caplog.records if "RPC port" in r.getMessage()]
            assert moved == [
                f"aria2 RPC port: asked {busy}, took {manager.port}: "
                f"port {busy} is in use by another program"
            ]
            task = await svc.wait_final(await svc.submit(job([fileserver.url("/size/5K/p.bin")])))
            assert task["status"] == "completed"


class BlockingBuilder:
    """Holds the task in processing until the service stops under it."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()

    async def build(self, task: TaskState) -> str | None:
        self.entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class FailingBuilder:
    async def build(self, task: TaskState) -> str | None:
        raise DraftBuildError(f"cannot build a draft from {task.files[0].file_name}")


async def test_restart_with_a_task_in_processing(data_dir: Path, fileserver: FileServer) -> None:
    builder = BlockingBuilder()
    async with running_service(make_settings(data_dir), builder) as svc:
        task_id = await svc.submit(job([fileserver.url("/size/3K/q.bin")]))
        await asyncio.wait_for(builder.entered.wait(), 20)
        assert (await svc.task(task_id))["status"] == "processing"
    async with running_service(make_settings(data_dir)) as svc:
        task = await svc.wait_final(task_id)
        assert task["status"] == "completed"
        assert fileserver.requests_for("/size/3K/q.bin") == 1


async def test_build_failure_fails_the_task_with_its_message(
    data_dir: Path, fileserver: FileServer
) -> None:
    async with running_service(make_settings(data_dir), FailingBuilder()) as svc:
        task_id = await svc.submit(job([fileserver.url("/size/3K/bad.bin")]))
        task = await svc.wait_final(task_id)
        assert task["status"] == "failed"
        assert task["error_message"] == "cannot build a draft from bad.bin"


async def test_restart_with_pending_and_downloading_tasks(
    data_dir: Path, fileserver: FileServer
) -> None:
    settings = make_settings(data_dir, max_active_tasks=1)
    async with running_service(settings) as svc:
        first = await svc.submit(
            job([fileserver.url("/slow/2M/one.bin?rate=512K")], max_download_limit="4M")
        )
        second = await svc.submit(job([fileserver.url("/size/10K/two.bin")]))
        await svc.wait_task(first, lambda t: t["progress"]["downloaded_size"] > 0)
        assert (await svc.task(second))["status"] == "pending"
    async with running_service(make_settings(data_dir)) as svc:
        assert svc.services.queue.live[first].max_download_limit == "4M"
        for task_id in (first, second):
            assert (await svc.wait_final(task_id))["status"] == "completed"


class SlowBuilder:
    def __init__(self) -> None:
        self.entered = asyncio.Event()

    async def build(self, task: TaskState) -> str | None:
        self.entered.set()
        await asyncio.sleep(0.3)
        return "/drafts/finished-during-shutdown"


async def test_a_build_running_at_shutdown_is_finished_and_recorded(
    data_dir: Path, fileserver: FileServer
) -> None:
    builder = SlowBuilder()
    async with running_service(make_settings(data_dir), builder) as svc:
        task_id = await svc.submit(job([fileserver.url("/size/2K/s.bin")]))
        await asyncio.wait_for(builder.entered.wait(), 20)
    async with running_service(make_settings(data_dir), SlowBuilder()) as svc:
        stored = await svc.services.db.load_task(task_id)
        assert stored is not None and stored.status.value == "completed"
        assert stored.draft_path == "/drafts/finished-during-shutdown"
