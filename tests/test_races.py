"""Interleavings and faults found in review, forced at real await points.

The delays and failures are injected (a slow database write, a slow aria2 add, a refused
file operation): faults that cannot be caused on demand any other way.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from draftdl.aria2.rpc import TELL_ACTIVE, TELL_WAITING
from draftdl.model.states import TaskStatus
from draftdl.model.task import TaskState
from fileserver import FileServer
from servers import Service, job, make_settings, running_service, until


async def held_by_aria2(svc: Service) -> set[str]:
    client = svc.services.manager.client
    res = await client.multicall([(TELL_ACTIVE, [["gid"]]), (TELL_WAITING, [0, 100, ["gid"]])])
    return {d["gid"] for chunk in res for d in chunk}


async def test_cancel_while_the_start_is_being_saved(
    service: Service, fileserver: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = service.services.db
    original = db.save_transition
    saving = asyncio.Event()

    async def slow(task: TaskState, **kw: Any) -> None:
        if task.status is TaskStatus.DOWNLOADING:
            saving.set()
            await asyncio.sleep(0.3)
        await original(task, **kw)

    monkeypatch.setattr(db, "save_transition", slow)
    task_id = await service.submit(job([fileserver.url("/slow/8M/c.bin?rate=1M")]))
    await saving.wait()
    task = await service.services.queue.cancel_task(task_id)
    assert task.status is TaskStatus.CANCELLED
    await service.wait_task(task_id, lambda t: t["status"] == "cancelled")
    await until(lambda: not service.services.queue._background, 5)
    assert task_id not in service.services.queue.monitor.tasks
    assert task.files[0].gid not in await held_by_aria2(service)


async def test_cancel_while_the_add_is_on_the_wire(
    service: Service, fileserver: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = service.services.manager.client
    original = client.add_batch_downloads
    sent = asyncio.Event()

    async def slow_add(requests: Any) -> Any:
        sent.set()
        await asyncio.sleep(0.3)
        return await original(requests)

    monkeypatch.setattr(client, "add_batch_downloads", slow_add)
    task_id = await service.submit(job([fileserver.url("/slow/8M/d.bin?rate=1M")]))
    await sent.wait()
    task = await service.services.queue.cancel_task(task_id)
    assert task.status is TaskStatus.CANCELLED
    assert task.files[0].gid not in await held_by_aria2(service)


class CountingBuilder:
    def __init__(self) -> None:
        self.running = self.peak = 0

    async def build(self, task: TaskState) -> str | None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(0.1)
        self.running -= 1
        return None


@pytest.mark.parametrize("workers", [1, 2])
async def test_draft_builds_respect_build_workers(
    data_dir: Path, tmp_path: Path, workers: int
) -> None:
    local = tmp_path / "clip.mp4"
    local.write_bytes(b"x")
    builder = CountingBuilder()
    settings = make_settings(
        data_dir, max_active_tasks=1, build_workers=workers, local_media_roots=[tmp_path]
    )
    async with running_service(settings, builder) as svc:
        body = job([str(local)])
        ids = [await svc.submit(body) for _ in range(5)]
        for task_id in ids:
            assert (await svc.wait_final(task_id))["status"] == "completed"
    assert builder.peak == workers


class GatedBuilder:
    """Holds every build until ``release`` is set."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release = asyncio.Event()

    async def build(self, task: TaskState) -> str | None:
        self.started.append(task.id)
        await self.release.wait()
        return None


async def test_a_draft_being_built_gives_its_download_slot_to_the_next_task(
    data_dir: Path, fileserver: FileServer
) -> None:
    builder = GatedBuilder()
    settings = make_settings(data_dir, max_active_tasks=1, build_workers=1)
    async with running_service(settings, builder) as svc:
        first = await svc.submit(job([fileserver.url("/size/64K/first.bin")]))
        await until(lambda: builder.started == [first], 10)
        second = await svc.submit(job([fileserver.url("/size/64K/second.bin")]))
        # The first task's draft is still being built, yet the second one downloads.
        view = await svc.wait_task(
            second, lambda t: t["message"] == "waiting for a free draft builder"
        )
        assert view["status"] == "processing"
        assert view["progress"]["completed_files"] == 1
        assert (await svc.task(first))["status"] == "processing"
        assert builder.started == [first]  # one builder: the second waits for it
        builder.release.set()
        assert (await svc.wait_final(first))["status"] == "completed"
        assert (await svc.wait_final(second))["status"] == "completed"
    assert builder.started == [first, second]


async def test_aria2_supervision_survives_a_failing_restart(
    service: Service, fileserver: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = service.services.manager
    failures = 2

    def refuse() -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(manager, "_kill_orphan", refuse)
    task_id = await service.submit(job([fileserver.url("/slow/2M/s.bin?rate=1M")]))
    await service.wait_task(task_id, lambda t: t["status"] == "downloading")
    assert manager.pid is not None
    os.kill(manager.pid, signal.SIGKILL)
    await until(lambda: failures == 0, 10)
    await until(lambda: manager.running, 10)
    assert (await service.wait_final(task_id))["status"] == "completed"


async def test_odd_bodies_get_422_not_500(service: Service) -> None:
    def body(materials: list[dict[str, Any]]) -> dict[str, Any]:
        return {"ruleGroup": {"id": "g", "rules": []}, "materials": materials}

    cases = {
        "ipv6": json.dumps(body([{"id": "m1", "path": "http://[::1/x.mp4"}])).encode(),
        "port": json.dumps(body([{"id": "m1", "path": "http://127.0.0.1:99999/x"}])).encode(),
        "int type": json.dumps(body([{"id": "m1", "type": 5, "path": "http://h/x"}])).encode(),
        "deep": b'{"ruleGroup":{},"x":' + b"[" * 100000 + b"]" * 100000 + b"}",
        "surrogate": b'{"ruleGroup":{"rules":[]},"materials":[{"id":"m","path":"http://h/a\\ud800"}]}',
        "huge time": json.dumps(
            {
                "ruleGroup": {"rules": [{"type": "c", "material_ids": ["m"]}]},
                "materials": [{"id": "m", "type": "text"}],
                "testData": {"items": [{"type": "c", "data": {"start": 1e308}}]},
            }
        ).encode(),
        "speed": json.dumps({**body([]), "max_download_limit": "1.5M"}).encode(),
    }
    for name, raw in cases.items():
        resp = await service.http.post(
            "/api/tasks/submit", content=raw, headers={"Content-Type": "application/json"}
        )
        assert resp.status_code == 422, (name, resp.text)
    assert (await service.http.get("/api/tasks")).json()["total"] == 0


async def test_speed_cap_is_shared_by_the_task_files(
    service: Service, fileserver: FileServer
) -> None:
    urls = [fileserver.url(f"/size/256K/cap{i}.bin") for i in range(4)]
    task_id = await service.submit(job(urls, max_download_limit="256K"))
    task = await service.wait_final(task_id)
    assert task["status"] == "completed", task["error_message"]
    elapsed = _seconds(task["completed_at"]) - _seconds(
        task["created_at"]
    )  # 1 MiB at 256 KiB/s in all: not much under 4 s
    assert elapsed > 2.5


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()
