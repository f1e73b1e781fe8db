"""Draft builds in worker processes (drafts/pool.py): fresh workers with the libraries
loaded, errors that cross the process boundary as they were, a killed worker that fails only
its build and is replaced, no process left after a stop or after the server dies, and the
service's build, failure, kill and cancel paths with a real worker.

A worker is held where a test wants it with FIFOs: ``pool_jobs.hold`` blocks on one, and a
task's downloaded SRT file swapped for one stops its build half-way, in the library's read.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pool_jobs
from draftcheck import check_draft
from draftdl.drafts import pool as pool_module
from draftdl.drafts.builder import WORKER_LOST, JianYingDraftBuilder
from draftdl.drafts.location import staging_dirs
from draftdl.drafts.pool import BUILD_NICENESS, BuildPool, RemoteError, WorkerLost
from draftdl.errors import DraftBuildError
from fileserver import FileServer
from servers import Service, load_example, make_settings, running_service, until

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")

CAPTIONS = Path(__file__).parent / "data" / "media" / "captions.srt"


@pytest.fixture
def no_children() -> Iterator[None]:
    """Every worker a test started has ended (and was reaped) when it is over."""
    assert multiprocessing.active_children() == []
    yield
    assert multiprocessing.active_children() == []


def gate(folder: Path, name: str = "gate") -> Path:
    path = folder / name
    os.mkfifo(path)
    return path


async def holder(path: Path) -> int:
    """The id of the worker that ``pool_jobs.hold`` runs in, once it runs."""
    pid_file = Path(f"{path}.pid")
    await until(pid_file.exists, 30)
    return int(pid_file.read_text())


async def reader_waits(path: Path) -> int:
    """Waits until a process holds the FIFO open for reading; returns an open writing end,
    which the caller closes when the reader may go on (it reads up to EOF)."""
    async with asyncio.timeout(30):
        while True:
            try:
                return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: nobody reads it yet
                    raise
            await asyncio.sleep(0.02)


async def release(path: Path, data: bytes = b"") -> None:
    """Lets the FIFO's reader go on: writes ``data`` and closes (it reads up to EOF)."""
    fd = await reader_waits(path)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# -- the pool alone ---------------------------------------------------------------------


async def test_workers_start_fresh_with_the_libraries_loaded_once(no_children: None) -> None:
    """Not a fork of this process (spawned, or forked from the clean fork server)."""
    pool = BuildPool(1, ("pool_jobs",))
    pool.start()
    try:
        first = await pool.run(pool_jobs.facts)
        second = await pool.run(pool_jobs.facts)
    finally:
        await pool.close()
    pid, forked, loaded, niceness = first
    assert pid != os.getpid()
    assert not forked
    assert niceness == min(19, os.nice(0) + BUILD_NICENESS)  # builds yield the cores
    assert set(pool_jobs.LIBRARIES[:3]) <= set(loaded)  # before the first job asked for them
    assert second == first  # the same process, nothing imported again


async def test_errors_cross_as_they_were_and_an_unpicklable_one_by_its_repr(
    no_children: None,
) -> None:
    pool = BuildPool(1, ("pool_jobs",))
    pool.start()
    try:
        pid = (await pool.run(pool_jobs.facts))[0]
        with pytest.raises(DraftBuildError) as built:
            await pool.run(pool_jobs.fail, "material 'm0': cannot read it as video")
        with pytest.raises(RemoteError) as odd:
            await pool.run(pool_jobs.fail_oddly, 1, 2)
        after = (await pool.run(pool_jobs.facts))[0]
    finally:
        await pool.close()
    assert type(built.value) is DraftBuildError
    assert str(built.value) == "material 'm0': cannot read it as video"
    assert (repr(odd.value), str(odd.value)) == ("Unpicklable('1 and 2')", "1 and 2")
    assert after == pid  # the worker survived both


async def test_a_killed_worker_fails_only_its_run_and_another_takes_its_place(
    tmp_path: Path, no_children: None
) -> None:
    pool = BuildPool(2, ("pool_jobs",))
    pool.start()
    a, b = gate(tmp_path, "a"), gate(tmp_path, "b")
    try:
        run_a = asyncio.create_task(pool.run(pool_jobs.hold, str(a)))
        run_b = asyncio.create_task(pool.run(pool_jobs.hold, str(b)))
        pid_a, pid_b = await holder(a), await holder(b)
        os.kill(pid_a, signal.SIGKILL)
        with pytest.raises(WorkerLost):
            await run_a
        await release(b)
        assert await run_b == pid_b
        pids = {(await pool.run(pool_jobs.facts))[0] for _ in range(2)}
    finally:
        await pool.close()
    assert pid_b in pids and pid_a not in pids and len(pids) == 2


@pytest.mark.parametrize("refusals", [1, 2])
async def test_a_worker_whose_start_failed_is_replaced_and_later_builds_run(
    no_children: None, monkeypatch: pytest.MonkeyPatch, refusals: int
) -> None:
    """The system refusing a fork for a moment (EAGAIN): the next worker is tried once, so
    one refusal costs no build and two fail only the build that met them."""
    real = pool_module._Worker.submit
    left = {"refusals": refusals}

    def refuse_first(self: Any, fn: Any, args: Any) -> Any:
        if left["refusals"]:
            left["refusals"] -= 1
            raise BlockingIOError(11, "Resource temporarily unavailable")
        return real(self, fn, args)

    monkeypatch.setattr(pool_module._Worker, "submit", refuse_first)
    pool = BuildPool(1, ("pool_jobs",))
    pool.start()
    try:
        if refusals == 2:
            with pytest.raises(WorkerLost, match="could not be started"):
                await pool.run(pool_jobs.facts)
        results = [await pool.run(pool_jobs.facts) for _ in range(3)]
    finally:
        await pool.close()
    assert len({pid for pid, *_ in results}) == 1  # one healthy worker serves them all
    assert left["refusals"] == 0


async def test_ctrl_c_and_sigterm_for_the_process_group_leave_a_build_running(
    tmp_path: Path, no_children: None
) -> None:
    """The server decides when its workers end (after shutdown_grace), not the signal."""
    pool = BuildPool(1, ("pool_jobs",))
    pool.start()
    held = asyncio.create_task(pool.run(pool_jobs.hold, str(gate(tmp_path))))
    try:
        pid = await holder(tmp_path / "gate")
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGINT)
        await release(tmp_path / "gate")
        assert await held == pid
    finally:
        await pool.close()


async def test_close_ends_busy_idle_and_starting_workers(tmp_path: Path, no_children: None) -> None:
    pool = BuildPool(2, ("pool_jobs",))
    pool.start()
    held = asyncio.create_task(pool.run(pool_jobs.hold, str(gate(tmp_path))))
    idle = (await pool.run(pool_jobs.facts))[0]
    busy = await holder(tmp_path / "gate")
    await pool.close()
    assert not alive(idle) and not alive(busy)
    with pytest.raises(WorkerLost):
        await held
    starting = BuildPool(2)
    starting.start()  # and stopped while its workers still import the libraries
    await starting.close()


def test_a_busy_worker_ends_when_its_server_is_killed(tmp_path: Path) -> None:
    """kill -9 of the server: a worker halfway through a build does not finish it."""
    path = gate(tmp_path)
    script = (
        "import asyncio, pool_jobs\n"
        "from draftdl.drafts.pool import BuildPool\n"
        "async def main():\n"
        "    pool = BuildPool(1)\n"
        "    pool.start()\n"
        f"    await pool.run(pool_jobs.hold, {str(path)!r})\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with open(tmp_path / "server.log", "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-c", script], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    worker = None
    try:
        asyncio.run(until(Path(f"{path}.pid").exists, 30))
        worker = int(Path(f"{path}.pid").read_text())
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        asyncio.run(until(lambda: not alive(worker), 30))
    finally:
        server.kill()
        server.wait(10)
        if worker is not None and alive(worker):  # the test failed: leave no orphan
            os.kill(worker, signal.SIGKILL)


# -- through the service ------------------------------------------------------------------


def srt_job(url: str, title: str) -> dict[str, Any]:
    """Subtitles from a downloaded SRT: the build reads the file in the library's import_srt."""
    return {
        "ruleGroup": {"id": "g", "title": title, "rules": []},
        "materials": [],
        "testData": {
            "tracks": [{"id": "subs", "type": "text", "title": "Subtitles"}],
            "items": [{"type": "subtitle", "data": {"srt": url, "track": "subs"}}],
        },
        "draft_config": {},
    }


def leftovers(svc: Service) -> list[str]:
    """Every staging folder and every draft under the drafts root."""
    root = svc.services.drafts.path
    staging = svc.services.settings.data_dir.resolve() / "staging"
    found = [p.name for d in staging_dirs(root, staging) if d.is_dir() for p in d.iterdir()]
    return sorted(found)


@contextlib.asynccontextmanager
async def build_stopped_halfway(svc: Service, fileserver: FileServer, tmp_path: Path) -> Any:
    """A task whose build is under way in the only worker, blocked reading its SRT file (a
    FIFO now); yields (task id, SRT path, the worker's pid, an open writing end)."""
    builder = svc.services.queue.builder
    assert isinstance(builder, JianYingDraftBuilder) and builder.pool is not None
    hold = gate(tmp_path)
    held = asyncio.create_task(builder.pool.run(pool_jobs.hold, str(hold)))
    pid = await holder(hold)
    task_id = await svc.submit(srt_job(fileserver.url("/media/captions.srt"), "halfway"))
    task = await svc.wait_task(task_id, lambda t: t["status"] == "processing")
    srt = Path(task["files"][0]["file_path"])  # downloaded; the build waits for the worker
    srt.unlink()
    os.mkfifo(srt)
    await release(hold)
    assert await held == pid
    writer = await reader_waits(srt)
    try:
        yield task_id, srt, pid, writer
    finally:
        with contextlib.suppress(OSError):
            os.close(writer)


async def test_a_build_failing_in_a_worker_fails_the_task_as_one_in_this_process(
    no_children: None, service: Service, fileserver: FileServer, tmp_path: Path
) -> None:
    body = load_example("basic-draft.json", fileserver.base_url)
    body["materials"][0]["path"] = fileserver.url("/size/20K/clip.mp4")  # random bytes
    task = await service.wait_final(await service.submit(body))
    stored = await service.services.db.load_task(task["task_id"])
    assert stored is not None
    here = JianYingDraftBuilder(tmp_path / "drafts", staging=tmp_path / "staging")
    with pytest.raises(DraftBuildError) as expected:
        here._build(stored.request_json, stored.file_map(), "k")
    assert (task["status"], task["message"]) == ("failed", "draft build failed")
    assert task["error_message"] == str(expected.value)
    assert leftovers(service) == []


async def test_a_worker_killed_mid_build_fails_that_task_and_the_next_build_has_a_worker(
    no_children: None, data_dir: Path, fileserver: FileServer, tmp_path: Path
) -> None:
    async with running_service(make_settings(data_dir, build_workers=1)) as svc:
        async with build_stopped_halfway(svc, fileserver, tmp_path) as (task_id, srt, pid, _):
            (staged,) = leftovers(svc)  # the staging folder of the build under way
            assert staged.startswith(".building-")
            os.kill(pid, signal.SIGKILL)
            task = await svc.wait_final(task_id)
        assert (task["status"], task["message"]) == ("failed", "draft build failed")
        assert task["error_message"] == WORKER_LOST
        assert leftovers(svc) == []
        srt.unlink()
        srt.write_bytes(CAPTIONS.read_bytes())
        resp = await svc.http.post(f"/api/tasks/{task_id}/regenerate")
        assert resp.status_code == 200, resp.text
        task = await svc.wait_final(task_id)
        assert task["status"] == "completed", task
        draft = check_draft(task["draft_path"], svc.services.drafts.path)
        assert len(draft.track("Subtitles")["segments"]) == 2


async def test_a_task_cancelled_mid_build_stays_cancelled_and_its_draft_is_removed(
    no_children: None,
    data_dir: Path,
    fileserver: FileServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As with builds in a thread: the build is not stopped, it completes, and the folder
    it put in place is removed when the task's completion is refused."""
    caplog.set_level(logging.INFO, logger="draftdl.tasks.queue")
    async with running_service(make_settings(data_dir, build_workers=1)) as svc:
        async with build_stopped_halfway(svc, fileserver, tmp_path) as (task_id, _, _, writer):
            resp = await svc.http.post(f"/api/tasks/{task_id}/cancel")
            assert resp.status_code == 200, resp.text
            step = svc.services.queue.working[task_id]
            os.write(writer, CAPTIONS.read_bytes())
            os.close(writer)
            await asyncio.wait_for(step, 30)
        task = await svc.task(task_id)
        assert (task["status"], task["draft_path"]) == ("cancelled", None)
        assert leftovers(svc) == []
    assert f"task {task_id}: draft step took" in caplog.text  # built, then thrown away
