"""Nothing stranded, nothing untracked, nothing outstays its time: the queue's trust fixes.

Database failures are injected at the repository's methods (a failed write is what a full or
locked database gives, but not on cue); everything else is real: aria2c, the file server,
the disk, the draft builder.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from draftdl.aria2.models import AddRequest
from draftdl.drafts.builder import JianYingDraftBuilder
from draftdl.drafts.library_errors import explain
from draftdl.model.states import TaskStatus
from draftdl.model.task import TaskState
from fileserver import FileServer
from servers import Service, job, make_settings, running_service, until
from test_races import held_by_aria2


def failing(times: int, when: Any, original: Any) -> Any:
    """``original`` that raises OperationalError the first ``times`` calls ``when`` holds."""
    calls = {"failed": 0}

    async def write(task: TaskState, **kw: Any) -> None:
        if when(task) and calls["failed"] < times:
            calls["failed"] += 1
            raise OperationalError("UPDATE tasks", {}, Exception("database is locked"))
        await original(task, **kw)

    write.calls = calls  # type: ignore[attr-defined]
    return write


async def until_gone(svc: Service, gid: str, timeout: float = 10.0) -> None:
    """Until aria2 no longer runs ``gid`` (it may keep its stopped result a little longer)."""
    async with asyncio.timeout(timeout):
        while gid in await held_by_aria2(svc):  # noqa: ASYNC110 (aria2 announces no removal)
            await asyncio.sleep(0.05)


# -- stranded tasks ---------------------------------------------------------------------------


async def test_a_start_whose_write_fails_is_put_back_and_runs(
    service: Service, fileserver: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = service.services.db
    # Five failures: more than the write's own four attempts, so the start itself fails.
    write = failing(5, lambda t: t.status is TaskStatus.DOWNLOADING, db.save_transition)
    monkeypatch.setattr(db, "save_transition", write)
    task_id = await service.submit(job([fileserver.url("/size/20K/a.bin")]))
    task = await service.wait_final(task_id, timeout=30)
    assert task["status"] == "completed"
    assert write.calls["failed"] == 5
    assert fileserver.requests_for("/size/20K/a.bin") == 1


async def test_a_lost_completion_is_saved_by_reconcile_without_a_second_build(
    data_dir: Path, fileserver: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(data_dir)
    async with running_service(settings) as svc:
        db, queue = svc.services.db, svc.services.queue
        builds: list[str] = []
        real = queue.builder.build

        async def counted(task: TaskState) -> str | None:
            builds.append(task.id)
            return await real(task)

        monkeypatch.setattr(queue.builder, "build", counted)
        write = failing(4, lambda t: t.status is TaskStatus.COMPLETED, db.save_transition)
        monkeypatch.setattr(db, "save_transition", write)
        task_id = await svc.submit(job([fileserver.url("/size/3K/b.bin")]))
        await until(lambda: write.calls["failed"] == 4 and task_id not in queue.working, 20)
        assert queue.live[task_id].status is TaskStatus.PROCESSING
        assert await queue.upkeep.reconcile() == [task_id]
        task = await svc.wait_final(task_id)
        assert task["status"] == "completed"
        assert builds == [task_id]
        drafts = [p for p in Path(svc.services.drafts.path).iterdir() if p.is_dir()]
        assert drafts == [Path(task["draft_path"])]


async def test_a_failure_whose_write_fails_is_failed_by_reconcile(
    service: Service, fileserver: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, queue = service.services.db, service.services.queue
    write = failing(4, lambda t: t.status is TaskStatus.FAILED, db.save_transition)
    monkeypatch.setattr(db, "save_transition", write)
    task_id = await service.submit(job([fileserver.url("/status/404/gone.mp4")]))
    await until(lambda: write.calls["failed"] == 4 and task_id not in queue.working, 20)
    assert queue.live[task_id].status is TaskStatus.DOWNLOADING
    assert task_id not in queue.monitor.tasks  # nothing works on it
    assert await queue.upkeep.reconcile() == [task_id]
    task = await service.wait_final(task_id)
    assert task["status"] == "failed" and "HTTP 404" in task["error_message"]


async def test_a_stored_task_that_is_not_held_is_taken_up(
    service: Service, fileserver: FileServer
) -> None:
    """A submit whose commit landed but whose answer was an error (the client retries)."""
    queue = service.services.queue
    task_id = await service.submit(job([fileserver.url("/size/2K/c.bin")]))
    await service.wait_final(task_id)
    stored = await service.services.db.load_task(task_id)
    assert stored is not None
    stored.id, stored.status, stored.completed_at = "stranded-task", TaskStatus.PENDING, None
    stored.seq += 1
    for f in stored.files:
        f.gid = "0123456789abcdef"
    await service.services.db.save_task(stored)
    assert await queue.upkeep.reconcile() == ["stranded-task"]
    assert (await service.wait_final("stranded-task"))["status"] == "completed"
    assert await queue.upkeep.reconcile() == []


# -- downloads nobody tracks ---------------------------------------------------------------


async def test_a_download_no_task_owns_is_removed(
    service: Service, fileserver: FileServer, tmp_path: Path
) -> None:
    client = service.services.manager.client
    stray = AddRequest(
        gid="00000000deadbeef", url=fileserver.url("/slow/4M/stray.bin?rate=64K"),
        dir=str(tmp_path), out="stray.bin",
    )  # fmt: skip
    await client.add_batch_downloads([stray])
    assert stray.gid in await held_by_aria2(service)
    await service.services.queue.upkeep.reconcile()  # also asks the monitor to look
    await until_gone(service, stray.gid)
    assert service.services.queue.monitor.orphans_removed == 1


async def test_cancel_whose_removal_fails_still_stops_the_download(
    service: Service, fileserver: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from draftdl.errors import Aria2Unavailable

    url = fileserver.url("/slow/8M/held.bin?rate=256K")
    task_id = await service.submit(job([url]))
    await service.wait_task(task_id, lambda t: t["progress"]["downloaded_size"] > 0)
    client = service.services.manager.client
    gid = service.services.queue.live[task_id].files[0].gid
    original = client.force_remove

    async def refuse(gids: Any) -> None:
        monkeypatch.setattr(client, "force_remove", original)
        raise Aria2Unavailable("aria2 RPC timed out")

    monkeypatch.setattr(client, "force_remove", refuse)
    await service.services.queue.cancel_task(task_id)
    await until_gone(service, gid)
    assert service.services.queue.monitor.orphans_removed == 1
    served = fileserver.bytes_served("/slow/8M/held.bin")
    await asyncio.sleep(1.0)
    assert fileserver.bytes_served("/slow/8M/held.bin") == served  # no byte after the removal
    task = await service.task(task_id)
    assert task["status"] == "cancelled"
    assert [f["status"] for f in task["files"]] == ["removed"]


# -- slow, stalled and late ------------------------------------------------------------------


async def test_a_stalled_and_a_trickling_transfer_fail_as_transient(
    data_dir: Path, fileserver: FileServer
) -> None:
    settings = make_settings(data_dir, lowest_speed="1K", stall_timeout=1.5, max_retries=0)
    async with running_service(settings) as svc:
        stalled = await svc.submit(job([fileserver.url("/stall/1M/s.bin?after=64K")]))
        trickle = await svc.submit(job([fileserver.url("/slow/1M/t.bin?rate=200")]))
        fine = await svc.submit(job([fileserver.url("/slow/12K/f.bin?rate=4096")]))
        started = time.monotonic()
        for task_id in (stalled, trickle):
            task = await svc.wait_final(task_id, timeout=40)
            assert task["status"] == "failed"
            assert task["files"][0]["error_message"].startswith(
                "stalled: slower than 1.0 KiB/s for 1.5 s"
            )
            assert "transient" in task["files"][0]["error_message"]
        # aria2 averages its speed over about 10 s: a stall shows only once that decays.
        assert time.monotonic() - started < 30
        assert (await svc.wait_final(fine))["status"] == "completed"


async def test_a_deadline_fails_the_task_and_removes_its_partial_files(
    service: Service, fileserver: FileServer
) -> None:
    done_url = fileserver.url("/size/4K/done.bin")
    slow_url = fileserver.url("/slow/4M/late.bin?rate=64K")
    task_id = await service.submit(job([done_url, slow_url], deadline=1.5))
    task = await service.wait_final(task_id, timeout=15)
    assert task["status"] == "failed" and task["message"] == "deadline passed"
    assert task["error_message"].startswith("the task's deadline of 1.5 s after submission")
    assert "(1 of 2 files downloaded)" in task["error_message"]
    by_url = {f["url"]: f for f in task["files"]}
    assert by_url[done_url]["status"] == "complete" and by_url[slow_url]["status"] == "removed"
    assert Path(by_url[done_url]["file_path"]).is_file()
    folder = Path(by_url[slow_url]["file_path"]).parent
    # The clean-up follows the announcement: aria2 lets go of the file first.
    await until(lambda: sorted(p.name for p in folder.iterdir()) == ["done.bin"], 10)


@pytest.mark.parametrize("bad", [0, -1, "soon", True, 10**9])
async def test_a_bad_deadline_is_a_422(service: Service, bad: Any) -> None:
    resp = await service.http.post("/api/tasks/submit", json=job([], deadline=bad))
    assert resp.status_code == 422
    assert [p["path"] for p in resp.json()["detail"]] == ["deadline"]


async def test_a_task_waits_for_disk_space(service: Service, fileserver: FileServer) -> None:
    settings = service.services.settings
    settings.min_free_space = "1000000G"
    task_id = await service.submit(job([fileserver.url("/size/4K/d.bin")]))
    task = await service.wait_task(task_id, lambda t: "disk space" in (t["message"] or ""))
    assert task["status"] == "pending"
    assert "min_free_space is 1000000.0 GiB" in task["message"]
    assert fileserver.requests_for("/size/4K/d.bin") == 0
    settings.min_free_space = "1M"
    assert (await service.wait_final(task_id, timeout=20))["status"] == "completed"


# -- ends: messages, files, folders ---------------------------------------------------------


async def test_failed_tasks_say_so_and_name_the_reason_in_english(
    data_dir: Path, tmp_path: Path
) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    settings = make_settings(data_dir, local_media_roots=[tmp_path])
    async with running_service(settings) as svc:
        body = job([str(text)])
        body["testData"] = {"items": [{"type": "clip", "data": {"start": 0, "duration": 1}}]}
        task = await svc.wait_final(await svc.submit(body))
    assert task["status"] == "failed"
    assert task["message"] == "draft build failed"
    assert task["error_message"].startswith(
        f"material 'm0' ({text}): cannot read it as video: the file has no video or picture "
        "track (library: "
    )


def test_library_errors_keep_their_text_after_an_english_reason() -> None:
    assert explain(ValueError("给定的素材文件 x.mp3 没有音频轨道")) == (
        "the file has no audio track (library: 给定的素材文件 x.mp3 没有音频轨道)"
    )
    assert (
        explain(ValueError("某个新的错误"))
        == "the drafting library refused it (library: 某个新的错误)"
    )
    assert explain(KeyError("x")) == "'x'"


async def test_cancelled_files_show_removed_also_after_a_restart(
    data_dir: Path, fileserver: FileServer
) -> None:
    async with running_service(make_settings(data_dir)) as svc:
        quick = fileserver.url("/size/2K/q.bin")
        slow = fileserver.url("/slow/4M/s.bin?rate=128K")
        task_id = await svc.submit(job([quick, slow]))
        await svc.wait_task(task_id, lambda t: t["progress"]["completed_files"] == 1)
        await svc.services.queue.cancel_task(task_id)
        live = {f["url"]: f["status"] for f in (await svc.task(task_id))["files"]}
    async with running_service(make_settings(data_dir)) as svc:
        stored = {f["url"]: f["status"] for f in (await svc.task(task_id))["files"]}
    assert live == stored == {quick: "complete", slow: "removed"}


async def test_a_build_cut_off_by_shutdown_is_adopted_not_duplicated(
    data_dir: Path, fileserver: FileServer
) -> None:
    """The build's thread outlives ``shutdown_grace`` and puts its folder in place after the
    database closed (as after a kill -9 mid-build): the next start adopts that folder."""

    class LateBuilder(JianYingDraftBuilder):
        async def build(self, task: TaskState) -> str | None:
            key = task.id.replace("-", "")[:8]

            def slow() -> Path:
                time.sleep(1.0)
                return self._build(task.request_json, task.file_map(), key)

            return str(await asyncio.to_thread(slow))

    settings = make_settings(data_dir, shutdown_grace=0.1)
    root = data_dir / "drafts"
    async with running_service(settings, LateBuilder(root)) as svc:
        task_id = await svc.submit(job([fileserver.url("/size/3K/late.bin")], title="late"))
        await svc.wait_task(task_id, lambda t: t["status"] == "processing")
    await until(
        lambda: root.is_dir() and any(p.name.startswith("late_") for p in root.iterdir()), 30
    )
    async with running_service(make_settings(data_dir)) as svc:
        task = await svc.wait_final(task_id)
    assert task["status"] == "completed"
    folders = sorted(p.name for p in root.iterdir())
    assert folders == [Path(task["draft_path"]).name]
    meta = json.loads((root / folders[0] / "draft_meta_info.json").read_text(encoding="utf-8"))
    assert meta["draft_name"] == folders[0]


async def test_a_download_we_throttle_ourselves_is_not_a_stall(
    data_dir: Path, fileserver: FileServer
) -> None:
    """An 8 KiB/s cap over 4 files is 2 KiB/s each: under the 4 KiB/s floor, on purpose."""
    settings = make_settings(data_dir, lowest_speed="4K", stall_timeout=1.0)
    async with running_service(settings) as svc:
        urls = [fileserver.url(f"/size/24K/capped{i}.bin") for i in range(4)]
        task = await svc.wait_final(await svc.submit(job(urls, max_download_limit="8K")), 40)
    assert task["status"] == "completed", task["error_message"]


async def test_cancel_while_an_add_is_on_the_wire_leaves_the_files_removed(
    service: Service, fileserver: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = service.services.manager.client
    original = client.add_batch_downloads
    adding = asyncio.Event()

    async def slow_add(requests: Any) -> Any:
        adding.set()
        await asyncio.sleep(0.3)
        return await original(requests)

    monkeypatch.setattr(client, "add_batch_downloads", slow_add)
    task_id = await service.submit(job([fileserver.url("/slow/4M/w.bin?rate=128K")]))
    await adding.wait()
    await service.services.queue.cancel_task(task_id)
    await until(lambda: task_id not in service.services.queue.working, 10)
    await service.services.queue.monitor.flush()
    assert [f["status"] for f in (await service.task(task_id))["files"]] == ["removed"]
    stored = await service.services.db.load_task(task_id)
    assert stored is not None and [f.status.value for f in stored.files] == ["removed"]
    gid = stored.files[0].gid
    await until_gone(service, gid)
