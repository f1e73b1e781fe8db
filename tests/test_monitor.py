"""What one monitor tick costs aria2: results read once and dropped in bulk, speed caps sent
only where they change (counted by the RPC client, checked against aria2c's own state)."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path
from typing import Any

import pytest

from draftdl.aria2.process import Aria2Manager
from draftdl.aria2.rpc import (
    CHANGE_OPTION,
    PURGE_RESULTS,
    REMOVE_RESULT,
    TELL_STOPPED,
    Aria2Client,
)
from draftdl.db.repo import Database
from draftdl.units import speed_bytes
from fileserver import FileServer
from servers import Service, job, make_settings, running_service, until


def tally_stopped(client: Aria2Client, monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """How often each gid came back in a tellStopped answer (the real answers, looked at)."""
    seen = collections.Counter[str]()
    multicall = client.multicall

    async def looking(calls: Any) -> list[Any]:
        results = await multicall(calls)
        for (method, _), result in zip(calls, results, strict=True):
            if method == TELL_STOPPED and isinstance(result, list):
                seen.update(entry["gid"] for entry in result)
        return results

    monkeypatch.setattr(client, "multicall", looking)
    return seen


async def test_each_result_is_read_once_and_dropped_with_the_read(
    service: Service, fileserver: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = service.services.manager.client
    monitor = service.services.queue.monitor
    stopped = tally_stopped(client, monkeypatch)
    calls, ticks = client.calls.copy(), monitor.ticks
    urls = [fileserver.url(f"/size/{20 + i}K/once{i}.bin") for i in range(10)]
    task = await service.wait_final(await service.submit(job(urls)))
    assert task["status"] == "completed", task["error_message"]
    gids = {f["gid"] for f in task["files"]}
    assert stopped == dict.fromkeys(gids, 1)
    made = client.calls - calls
    assert made[REMOVE_RESULT] == 0
    assert made[PURGE_RESULTS] == monitor.ticks - ticks  # in the read, not a request of its own
    assert client.requests[PURGE_RESULTS] == 0
    stat = await client.call("aria2.getGlobalStat")
    assert stat["numStopped"] == "0"  # nothing left behind once the task is done


async def test_a_remote_aria2c_forgets_each_of_our_results_once(
    data_dir: Path, fileserver: FileServer, tmp_path: Path
) -> None:
    remote = Aria2Client()
    manager = Aria2Manager(make_settings(tmp_path / "remote-aria2"), remote)
    assert await manager.start()
    try:
        settings = make_settings(
            data_dir, aria2_rpc_url=manager.get_rpc_url(), aria2_rpc_secret=manager.get_rpc_secret()
        )
        async with running_service(settings) as svc:
            client = svc.services.manager.client
            urls = [fileserver.url(f"/size/{8 + i}K/r{i}.bin") for i in range(5)]
            task = await svc.wait_final(await svc.submit(job(urls)))
            assert task["status"] == "completed", task["error_message"]
            monitor = svc.services.queue.monitor
            await until(lambda: not monitor._looking, 10)  # saved, then forgotten
            assert client.calls[PURGE_RESULTS] == 0  # a shared aria2c keeps others' results
            assert client.calls[REMOVE_RESULT] == 5
        (left,) = await remote.multicall([(TELL_STOPPED, [0, 100, ["gid"]])])
        assert {f["gid"] for f in task["files"]}.isdisjoint(d["gid"] for d in left)
    finally:
        await manager.stop()
        await remote.aclose()


async def caps_in_aria2(service: Service, gids: list[str]) -> list[int]:
    client = service.services.manager.client
    options = await client.multicall([("aria2.getOption", [g]) for g in gids])
    return [speed_bytes(o["max-download-limit"]) for o in options]


async def test_a_task_cap_is_sent_only_to_downloads_whose_share_changes(
    service: Service, fileserver: FileServer
) -> None:
    client = service.services.manager.client
    monitor = service.services.queue.monitor

    async def ticks_pass(n: int) -> int:
        """Sent calls over ``n`` ticks (those a tick works out go with the next one)."""
        mark, before = monitor.ticks, client.calls[CHANGE_OPTION]
        await until(lambda: monitor.ticks >= mark + n, 10)
        return client.calls[CHANGE_OPTION] - before

    urls = [fileserver.url(f"/slow/4M/cap{i}.bin?rate=512K") for i in range(10)]
    body = job(urls, max_download_limit="1M")
    body["materials"][0]["download_options"] = {"max_download_limit": "64K"}  # its own cap
    task_id = await service.submit(body)
    view = await service.wait_task(
        task_id, lambda t: all(f["status"] == "active" for f in t["files"])
    )
    gids = [f["gid"] for f in view["files"]]
    try:
        await ticks_pass(2)  # the spread over the ten active downloads is sent
        assert await ticks_pass(5) == 0  # nothing changes: nothing is sent again
        assert await caps_in_aria2(service, gids) == [64 * 1024] + [1024 * 1024 // 10] * 9

        resp = await service.http.patch(f"/api/tasks/{task_id}", json={"max_download_limit": "2M"})
        assert resp.status_code == 200
        assert await ticks_pass(3) == 9  # the capped file's own 64K stays the lower
        assert await ticks_pass(5) == 0
        assert await caps_in_aria2(service, gids) == [64 * 1024] + [2 * 1024 * 1024 // 10] * 9

        resp = await service.http.patch(f"/api/tasks/{task_id}", json={"max_download_limit": None})
        assert resp.status_code == 200
        assert await ticks_pass(3) == 9
        assert await ticks_pass(5) == 0
        assert await caps_in_aria2(service, gids) == [64 * 1024] + [0] * 9  # its own cap holds
    finally:
        await service.http.post(f"/api/tasks/{task_id}/cancel")


async def test_health_counts_a_tick_as_one_request(
    service: Service, fileserver: FileServer
) -> None:
    """/api/health's figures: HTTP requests to aria2, a multicall of many calls counting one."""
    client = service.services.manager.client
    monitor = service.services.queue.monitor
    urls = [fileserver.url(f"/slow/1M/one{i}.bin?rate=128K") for i in range(3)]
    task_id = await service.submit(job(urls))
    await service.wait_task(task_id, lambda t: t["progress"]["downloaded_size"] > 0)
    try:
        ticks, requests, calls = monitor.ticks, client.work_requests, client.calls.copy()
        await until(lambda: monitor.ticks >= ticks + 5, 10)
        read = monitor.ticks - ticks
        assert client.work_requests - requests == read
        made = client.calls - calls
        assert made[TELL_STOPPED] == made[PURGE_RESULTS] == read
        ticks, requests = monitor.ticks, client.work_requests
        health = (await service.http.get("/api/health")).json()["monitor"]
        assert health["rpc_requests"] - requests == health["ticks"] - ticks
    finally:
        await service.http.post(f"/api/tasks/{task_id}/cancel")


async def test_a_remote_aria2c_keeps_a_tasks_downloads_over_a_restart_and_a_new_cap_reaches_them(
    tmp_path: Path, fileserver: FileServer
) -> None:
    """Downloads this process never added (they stayed in a shared aria2c while the server
    restarted) have a cap it does not know: a change of the task's cap is sent to them."""
    remote = Aria2Client()
    manager = Aria2Manager(make_settings(tmp_path / "remote-aria2"), remote)
    assert await manager.start()
    try:
        settings = make_settings(
            tmp_path / "data",
            aria2_rpc_url=manager.get_rpc_url(),
            aria2_rpc_secret=manager.get_rpc_secret(),
        )
        urls = [fileserver.url(f"/slow/8M/k{i}.bin?rate=256K") for i in range(2)]
        async with running_service(settings) as svc:
            task_id = await svc.submit(job(urls, max_download_limit="100K"))
            view = await svc.wait_task(
                task_id, lambda t: all(f["status"] == "active" for f in t["files"])
            )
            gids = [f["gid"] for f in view["files"]]
        async with running_service(settings) as svc:
            await svc.wait_task(task_id, lambda t: t["status"] == "downloading")
            answer = await svc.http.patch(
                f"/api/tasks/{task_id}", json={"max_download_limit": "1M"}
            )
            assert answer.status_code == 200
            caps: list[Any] = []

            async def read_caps() -> list[Any]:
                options = await remote.multicall([("aria2.getOption", [g]) for g in gids])
                return [speed_bytes(o["max-download-limit"]) for o in options]

            for _ in range(100):  # ~10 s: the next ticks send it
                caps = await read_caps()
                if caps == [512 * 1024, 512 * 1024]:
                    break
                await asyncio.sleep(0.1)
            assert caps == [512 * 1024, 512 * 1024]
            await svc.http.post(f"/api/tasks/{task_id}/cancel")
    finally:
        await manager.stop()
        await remote.aclose()


async def test_tasks_that_start_together_go_to_aria2_in_one_add(
    data_dir: Path, fileserver: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three tasks waiting for a slot when the server stops all start at the next start:
    their status changes share one transaction and their six files one addUri multicall."""
    async with running_service(make_settings(data_dir, max_active_tasks=1)) as first:
        slow = await first.submit(job([fileserver.url("/slow/4M/hold.bin?rate=64K")]))
        await first.wait_task(slow, lambda t: t["status"] == "downloading")
        waiting = [
            await first.submit(
                job([fileserver.url(f"/size/{9 + i}K/r{n}-{i}.bin") for i in (0, 1)])
            )
            for n in range(3)
        ]
        views = [await first.task(t) for t in waiting]
        assert [v["status"] for v in views] == ["pending"] * 3
        gids = {f["gid"] for v in views for f in v["files"]}
    adds: list[set[str]] = []
    add = Aria2Client.add_batch_downloads

    async def recording(self: Aria2Client, requests: Any) -> Any:
        adds.append({r.gid for r in requests})
        return await add(self, requests)

    monkeypatch.setattr(Aria2Client, "add_batch_downloads", recording)
    async with running_service(make_settings(data_dir, max_active_tasks=10)) as second:
        for task_id in waiting:
            done = await second.wait_final(task_id)
            assert done["status"] == "completed", done["error_message"]
        await second.http.post(f"/api/tasks/{slow}/cancel")
    assert len(gids) == 6
    assert [a for a in adds if a & gids] == [gids]


async def test_a_start_that_fails_in_a_round_is_retried_and_a_failed_add_is_made_again(
    data_dir: Path, fileserver: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One task's start fails once and the round's add fails once (neither is aria2 being
    away): that task keeps its place and starts on the retry, the others' files are handed
    over again by the monitor; all three complete."""
    async with running_service(make_settings(data_dir, max_active_tasks=1)) as first:
        slow = await first.submit(job([fileserver.url("/slow/4M/hold2.bin?rate=64K")]))
        await first.wait_task(slow, lambda t: t["status"] == "downloading")
        waiting = [
            await first.submit(job([fileserver.url(f"/size/{5 + n}K/f{n}.bin")])) for n in range(3)
        ]
        gids = {(await first.task(t))["files"][0]["gid"] for t in waiting}
    save, add = Database.save_transition, Aria2Client.add_batch_downloads
    broken = {"start": waiting[1], "add": 1}

    async def failing_save(self: Database, task: Any, **kwargs: Any) -> None:
        if task.id == broken["start"] and task.status.value == "downloading":
            broken["start"] = ""
            raise RuntimeError("injected: the start's write")
        await save(self, task, **kwargs)

    async def failing_add(self: Aria2Client, requests: Any) -> Any:
        if broken["add"] and {r.gid for r in requests} & gids:  # the round's add
            broken["add"] = 0
            raise RuntimeError("injected: the add")
        return await add(self, requests)

    monkeypatch.setattr(Database, "save_transition", failing_save)
    monkeypatch.setattr(Aria2Client, "add_batch_downloads", failing_add)
    async with running_service(make_settings(data_dir, max_active_tasks=10)) as second:
        for task_id in waiting:
            done = await second.wait_final(task_id, timeout=15)
            assert done["status"] == "completed", done["error_message"]
        await second.http.post(f"/api/tasks/{slow}/cancel")
    assert broken == {"start": "", "add": 0}
