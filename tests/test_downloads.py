"""Downloading through the whole service: many files, shared URLs, failures, cancel, limits."""

from __future__ import annotations

import asyncio
from pathlib import Path

from draftdl.events.bus import ALL_TASKS, STATUS_CHANGED
from fileserver import FileServer, content_for
from servers import Service, job, make_settings, running_service


async def test_fifty_files_in_one_task(service: Service, fileserver: FileServer) -> None:
    urls = [fileserver.url(f"/size/{17 + i}K/f{i:02d}.bin") for i in range(50)]
    task_id = await service.submit(job(urls))
    task = await service.wait_final(task_id)
    assert task["status"] == "completed", task["error_message"]
    assert task["progress"]["completed_files"] == 50
    for i, f in enumerate(task["files"]):
        assert Path(f["file_path"]).read_bytes() == content_for(f"f{i:02d}.bin", (17 + i) * 1024)
    assert task["progress"]["downloaded_size"] == sum((17 + i) * 1024 for i in range(50))


async def test_duplicate_url_is_downloaded_once(service: Service, fileserver: FileServer) -> None:
    url = fileserver.url("/media/clip.mp4")
    body = job([url, url, fileserver.url("/size/10K/other.bin")])
    body["testData"] = {"items": [{"type": "clip", "data": {"path": url, "duration": 1}}]}
    task = await service.wait_final(await service.submit(body))
    assert task["status"] == "completed", task["error_message"]
    assert [f["file_name"] for f in task["files"]] == ["clip.mp4", "other.bin"]
    assert fileserver.requests_for("/media/clip.mp4") == 1


async def test_same_basename_from_two_urls(service: Service, fileserver: FileServer) -> None:
    a, b = fileserver.url("/size/10K/x.bin"), fileserver.url("/size/20K/x.bin?v=2")
    task = await service.wait_final(await service.submit(job([a, b])))
    assert task["status"] == "completed"
    paths = {f["url"]: Path(f["file_path"]) for f in task["files"]}
    assert paths[a].name == "x.bin" and paths[b].name == "x-1.bin"
    assert paths[a].stat().st_size == 10 * 1024 and paths[b].stat().st_size == 20 * 1024


async def test_404_fails_the_task_naming_url_and_status(
    service: Service, fileserver: FileServer
) -> None:
    bad = fileserver.url("/status/404/gone.mp4")
    good = fileserver.url("/size/10K/fine.bin")
    task = await service.wait_final(await service.submit(job([good, bad])))
    assert task["status"] == "failed"
    assert bad in task["error_message"] and "404" in task["error_message"]
    failed = [f for f in task["files"] if f["status"] == "error"]
    assert [f["url"] for f in failed] == [bad]
    assert task["progress"]["failed_files"] == 1


async def test_500_fails_after_retries(service: Service, fileserver: FileServer) -> None:
    bad = fileserver.url("/status/500/broken.mp4")
    task = await service.wait_final(await service.submit(job([bad])))
    assert task["status"] == "failed"
    assert bad in task["error_message"] and "500" in task["error_message"]
    assert fileserver.requests_for("/status/500/broken.mp4") >= 1


async def test_connection_refused_fails_with_reason(service: Service) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/clip.mp4"
    task = await service.wait_final(await service.submit(job([url])))
    assert task["status"] == "failed"
    assert url in task["error_message"]
    assert "network problem" in task["error_message"] or "refused" in task["error_message"]


async def test_cut_connection_is_resumed(service: Service, fileserver: FileServer) -> None:
    path = "/cut/2M/cut.bin?after=700000&times=2"
    task = await service.wait_final(await service.submit(job([fileserver.url(path)])))
    assert task["status"] == "completed", task["error_message"]
    data = Path(task["files"][0]["file_path"]).read_bytes()
    assert data == content_for("cut.bin", 2 * 1024 * 1024)
    assert fileserver.requests_for("/cut/2M/cut.bin") >= 3


async def test_unknown_size_completes(service: Service, fileserver: FileServer) -> None:
    task = await service.wait_final(
        await service.submit(job([fileserver.url("/noclen/300K/n.bin")]))
    )
    assert task["status"] == "completed", task["error_message"]
    assert task["progress"]["total_size"] == 300 * 1024


async def test_cancel_while_downloading(service: Service, fileserver: FileServer) -> None:
    urls = [fileserver.url(f"/slow/4M/s{i}.bin?rate=256K") for i in range(3)]
    task_id = await service.submit(job(urls))
    await service.wait_task(task_id, lambda t: t["progress"]["downloaded_size"] > 0)
    resp = await service.http.post(f"/api/tasks/{task_id}/cancel")
    assert resp.status_code == 200 and resp.json()["success"] is True
    task = await service.task(task_id)
    assert task["status"] == "cancelled"
    gids = {f["gid"] for f in task["files"]}
    held = await service.services.manager.client.get_batch_progress()
    assert gids.isdisjoint(held)
    again = await service.http.post(f"/api/tasks/{task_id}/cancel")
    assert again.status_code == 409
    assert "cancelled" in again.json()["detail"]


async def test_ten_tasks_never_more_than_three_downloading(
    data_dir: Path, fileserver: FileServer
) -> None:
    """A slot is held while downloading; a task building its draft has given it on."""
    async with running_service(make_settings(data_dir, max_active_tasks=3)) as svc:
        watcher = svc.services.queue.subscribe(ALL_TASKS)
        active: set[str] = set()
        most = 0
        ids = []
        for n in range(10):
            urls = [fileserver.url(f"/slow/96K/t{n}-{i}.bin?rate=512K") for i in range(2)]
            ids.append(await svc.submit(job(urls, priority=n % 3)))
        finished: set[str] = set()
        async with asyncio.timeout(60):
            while len(finished) < 10:
                event = await watcher.get()
                if event.name != STATUS_CHANGED:
                    continue
                status = event.data["status"]
                if status == "downloading":
                    active.add(event.task_id)
                else:
                    active.discard(event.task_id)
                if status in ("completed", "failed", "cancelled"):
                    finished.add(event.task_id)
                most = max(most, len(active))
                assert svc.services.queue.active_count() <= 3
        svc.services.queue.unsubscribe(watcher)
        assert most == 3
        for task_id in ids:
            assert (await svc.task(task_id))["status"] == "completed"


async def test_priority_then_arrival_order(data_dir: Path, fileserver: FileServer) -> None:
    async with running_service(make_settings(data_dir, max_active_tasks=1)) as svc:
        watcher = svc.services.queue.subscribe(ALL_TASKS)
        blocker = await svc.submit(job([fileserver.url("/slow/128K/b.bin?rate=256K")]))
        await svc.wait_task(blocker, lambda t: t["status"] == "downloading")
        low = await svc.submit(job([fileserver.url("/size/1K/l.bin")], priority=0))
        high = await svc.submit(job([fileserver.url("/size/1K/h.bin")], priority=5))
        low2 = await svc.submit(job([fileserver.url("/size/1K/l2.bin")], priority=0))
        started: list[str] = []
        async with asyncio.timeout(30):
            while len(started) < 4:
                event = await watcher.get()
                if event.name == STATUS_CHANGED and event.data["status"] == "downloading":
                    started.append(event.task_id)
        assert started == [blocker, high, low, low2]
        svc.services.queue.unsubscribe(watcher)


async def test_monitor_needs_one_round_trip_per_tick(
    service: Service, fileserver: FileServer
) -> None:
    ids = [
        await service.submit(
            job([fileserver.url(f"/slow/2M/r{t}-{i}.bin?rate=128K") for i in range(5)])
        )
        for t in range(4)
    ]
    for task_id in ids:
        await service.wait_task(task_id, lambda t: t["progress"]["downloaded_size"] > 0)
    monitor = service.services.queue.monitor
    client = service.services.manager.client
    ticks, requests = monitor.ticks, client.work_requests
    await service.wait_task(ids[0], lambda t: monitor.ticks >= ticks + 5)
    assert client.work_requests - requests == monitor.ticks - ticks
    for task_id in ids:
        await service.http.post(f"/api/tasks/{task_id}/cancel")
