"""More than one node on one PostgreSQL (issue 14): api nodes store and enqueue, workers
(each with its own aria2c) claim tasks while they have free slots, keep them under a lease,
and a worker that dies or is stopped past its lease loses its tasks to another.

Every node is a real ``draftdl serve --role ...`` process; PostgreSQL is a throwaway cluster
on a loopback port (tests/postgres.py) with a database of its own per test; the file server
throttles bodies so a task is caught half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import time
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from fileserver import FileServer
from postgres import postgres_server
from redis_server import RedisServer
from servers import FINAL, ServerProcess, job

pytestmark = pytest.mark.slow

LEASE = 3.0


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with postgres_server(tmp_path_factory.mktemp("postgres")) as url:
        yield url


@pytest.fixture
async def database(postgres: str, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    name = "c_" + request.node.name.replace("[", "_").replace("]", "").lower()[:50]
    admin = create_async_engine(postgres, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            await conn.exec_driver_sql(f"CREATE DATABASE {name}")
    finally:
        await admin.dispose()
    yield postgres.rsplit("/", 1)[0] + f"/{name}"


class Cluster:
    """Nodes sharing a database, a downloads folder and a drafts folder; each has its own
    data folder (and a worker its own aria2c)."""

    def __init__(self, root: Path, database_url: str) -> None:
        self.root = root
        self.shared = {
            "DRAFTDL_DATABASE_URL": database_url,
            "DRAFTDL_DOWNLOADS_PATH": str(root / "downloads"),
            "DRAFTDL_DRAFTS_ROOT": str(root / "drafts"),
            "DRAFTDL_LEASE_SECONDS": str(LEASE),
            "DRAFTDL_CLEANUP_DAYS": "0",
        }
        self.nodes: dict[str, ServerProcess] = {}
        self.engine: AsyncEngine = create_async_engine(database_url)

    async def start(self, name: str, role: str, **env: str) -> ServerProcess:
        node = ServerProcess(
            self.root / name,
            "--role",
            role,
            "--node-name",
            name,
            **{**self.shared, **env},
        )
        self.nodes[name] = node
        await node.start(timeout=30)
        return node

    async def stop(self) -> None:
        for node in self.nodes.values():
            if node.proc is not None and node.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    node.proc.send_signal(signal.SIGCONT)
            await asyncio.to_thread(node.stop)
        await self.engine.dispose()

    async def rows(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            found = await conn.execute(
                text(
                    "SELECT id, status, owner, attempt, downloaded_size, total_size"
                    " FROM tasks ORDER BY seq"
                )
            )
            return [dict(r._mapping) for r in found]

    async def row(self, task_id: str) -> dict[str, Any]:
        return next(r for r in await self.rows() if r["id"] == task_id)


@pytest.fixture
async def cluster(tmp_path: Path, database: str) -> AsyncIterator[Cluster]:
    nodes = Cluster(tmp_path, database)
    try:
        yield nodes
    finally:
        await nodes.stop()


async def aria2_call(node: ServerProcess, method: str, *params: Any) -> Any:
    """A call to the node's own aria2c (its RPC address from health, its secret from the
    node's data folder)."""
    async with node.client() as http:
        rpc_url = (await http.get("/api/health")).json()["aria2"]["rpc_url"]
    token = "token:" + (node.data_dir / "aria2" / "rpc-secret").read_text().strip()
    body = {"jsonrpc": "2.0", "id": "t", "method": method, "params": [token, *params]}
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as http:
        answer = (await http.post(rpc_url, json=body)).json()
    assert "error" not in answer, answer
    return answer["result"]


async def submit(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    resp = await http.post("/api/tasks/submit", json=body)
    assert resp.status_code == 200, resp.text
    task_id: str = resp.json()["task_id"]
    return task_id


async def wait_for(condition: Any, timeout: float, step: float = 0.1) -> float:
    """Seconds until the async ``condition()`` is true (fails after ``timeout``)."""
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < timeout, "timed out"
        await asyncio.sleep(step)
    return time.monotonic() - started


def draft_folders(root: Path) -> list[Path]:
    return [p for p in (root / "drafts").iterdir() if (p / "draft_content.json").is_file()]


async def test_twenty_tasks_over_two_workers_each_claimed_once_within_caps(
    cluster: Cluster, fileserver: FileServer
) -> None:
    api = await cluster.start("api1", "api")
    await cluster.start("w1", "worker", DRAFTDL_MAX_ACTIVE_TASKS="3")
    await cluster.start("w2", "worker", DRAFTDL_MAX_ACTIVE_TASKS="3")
    paths = [[f"/slow/128K/t{i}-{k}.bin?rate=256K" for k in range(2)] for i in range(20)]
    async with api.client() as http:
        ids = [
            await submit(http, job([fileserver.url(p) for p in task_paths], title=f"t{i}"))
            for i, task_paths in enumerate(paths)
        ]
        most: dict[str, int] = {"w1": 0, "w2": 0}

        async def all_final() -> bool:
            rows = await cluster.rows()
            for owner in most:  # held and not building: waiting for a slot or downloading
                held = [r for r in rows if r["owner"] == owner]
                running = sum(1 for r in held if r["status"] in ("pending", "downloading"))
                most[owner] = max(most[owner], running)
            return all(r["status"] in FINAL for r in rows)

        await wait_for(all_final, 90)
        tasks = [(await http.get(f"/api/tasks/{i}")).json() for i in ids]
    assert [t["status"] for t in tasks] == ["completed"] * 20, [t["error_message"] for t in tasks]
    rows = await cluster.rows()
    assert [r["attempt"] for r in rows] == [1] * 20  # each claimed exactly once
    assert all(r["owner"] is None for r in rows)  # claims let go when the tasks ended
    assert 1 <= most["w1"] <= 3 and 1 <= most["w2"] <= 3, most  # both worked, within caps
    # Each URL was fetched once, by one aria2c.
    assert [fileserver.requests_for(p.split("?")[0]) for ps in paths for p in ps] == [1] * 40
    assert len(draft_folders(cluster.root)) == 20


async def owned_at(cluster: Cluster, task_id: str, fraction: float) -> dict[str, Any]:
    """The task's row once its owner has downloaded ``fraction`` of its bytes."""
    found: dict[str, Any] = {}

    async def far_enough() -> bool:
        row = await cluster.row(task_id)
        found.update(row)
        return bool(row["owner"]) and row["downloaded_size"] >= fraction * 4 * 1024 * 1024

    await wait_for(far_enough, 20, step=0.05)
    return found


async def test_a_worker_killed_mid_task_loses_it_to_the_other_within_the_lease(
    cluster: Cluster, fileserver: FileServer
) -> None:
    api = await cluster.start("api1", "api")
    workers = {
        name: await cluster.start(name, "worker", DRAFTDL_MAX_ACTIVE_TASKS="2")
        for name in ("w1", "w2")
    }
    path = "/slow/4M/big.bin"
    async with api.client() as http:
        task_id = await submit(http, job([fileserver.url(f"{path}?rate=1M")]))
        row = await owned_at(cluster, task_id, 0.3)
        first = workers[row["owner"]]
        async with first.client() as w:
            aria2_pid = (await w.get("/api/health")).json()["aria2"]["pid"]
        first.kill()
        os.kill(aria2_pid, signal.SIGKILL)
        killed = time.monotonic()
        other = "w2" if row["owner"] == "w1" else "w1"

        async def taken() -> bool:  # (a claim is let go when the task ends)
            now = await cluster.row(task_id)
            return now["attempt"] == 2 and now["owner"] in (other, None)

        await wait_for(taken, LEASE + 5)
        assert time.monotonic() - killed <= LEASE + 5
        final: dict[str, Any] = {}

        async def done() -> bool:
            final.update((await http.get(f"/api/tasks/{task_id}")).json())
            return final["status"] in FINAL

        await wait_for(done, 30)
        zipped = await http.get(f"/api/tasks/{task_id}/draft.zip")  # from the api node
    assert final["status"] == "completed", final["error_message"]
    drafts = draft_folders(cluster.root)
    assert [str(d) for d in drafts] == [final["draft_path"]]
    json.loads((drafts[0] / "draft_content.json").read_text(encoding="utf-8"))
    assert zipped.status_code == 200, zipped.text
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        names = archive.namelist()
        folder = Path(final["draft_path"]).name
        assert f"{folder}/draft_content.json" in names, names  # the shared drafts folder's
    # The second worker went on from the partial file: less than twice the bytes were sent.
    assert 4 * 1024 * 1024 <= fileserver.bytes_served(path) < 2 * 4 * 1024 * 1024


async def test_a_worker_stopped_past_its_lease_is_fenced_and_lets_go(
    cluster: Cluster, fileserver: FileServer
) -> None:
    api = await cluster.start("api1", "api")
    workers = {
        name: await cluster.start(name, "worker", DRAFTDL_MAX_ACTIVE_TASKS="2")
        for name in ("w1", "w2")
    }
    path = "/slow/4M/stopped.bin"
    async with api.client() as http:
        task_id = await submit(http, job([fileserver.url(f"{path}?rate=512K")]))
        row = await owned_at(cluster, task_id, 0.2)
        first = workers[row["owner"]]
        assert first.proc is not None
        first.proc.send_signal(signal.SIGSTOP)
        other = "w2" if row["owner"] == "w1" else "w1"

        async def taken() -> bool:  # (a claim is let go when the task ends)
            now = await cluster.row(task_id)
            return now["attempt"] == 2 and now["owner"] in (other, None)

        await wait_for(taken, LEASE + 5)
        assert (await cluster.row(task_id))["status"] == "downloading"  # still going
        first.proc.send_signal(signal.SIGCONT)
        async with first.client() as w:

            async def let_go() -> bool:
                body = (await w.get("/api/health")).json()
                return bool(body["tasks"]["live"] == 0 and body["monitor"]["tracked_files"] == 0)

            await wait_for(let_go, LEASE + 2)
        # Its aria2c (which went on downloading while the worker was stopped) holds nothing.
        assert await aria2_call(first, "aria2.tellActive", ["gid"]) == []
        assert await aria2_call(first, "aria2.tellWaiting", 0, 100, ["gid"]) == []
        final: dict[str, Any] = {}

        async def done() -> bool:
            final.update((await http.get(f"/api/tasks/{task_id}")).json())
            return final["status"] in FINAL

        await wait_for(done, 30)
    assert final["status"] == "completed", final["error_message"]
    row = await cluster.row(task_id)
    assert (row["attempt"], row["status"]) == (2, "completed")  # the stopped one wrote nothing
    assert "another node has claimed it" in first.log.read_text()
    assert len(draft_folders(cluster.root)) == 1


# -- fencing, in one process: two holders of one task on the real database -------------------


async def test_a_stale_claim_writes_nothing_and_the_new_one_writes(database: str) -> None:
    """Worker A claims, B claims after A's lease ran out: A's status change fails as if the
    task were gone, A's progress flush changes no row (task or file), B's writes land, and
    A's renewal no longer returns the task."""
    from datetime import timedelta

    from draftdl.cluster import claims, jobs
    from draftdl.db.repo import Database
    from draftdl.errors import TaskNotFound
    from draftdl.model.states import FileStatus, TaskStatus
    from draftdl.model.task import FileState, TaskState, utcnow

    db = Database(database, jobs=True)
    await db.init()
    await db.runner.write(jobs.prepare)  # (as a cluster node does at start)
    try:
        now = utcnow()
        task = TaskState(
            id="t-fenced",
            seq=1,
            status=TaskStatus.PENDING,
            priority=0,
            request_json="{}",
            created_at=now,
            updated_at=now,
            files=[FileState(0, "http://h/a", "a.bin", "/d/a.bin", "0" * 16)],
        )
        await db.save_task(task)
        short, lease = timedelta(milliseconds=200), timedelta(seconds=30)
        assert await db.runner.write(claims.claim, task.id, "a", short) == 1
        assert await db.runner.write(claims.claim, task.id, "b", lease) is None  # A holds it
        await asyncio.sleep(0.3)
        assert await db.runner.write(claims.claim, task.id, "b", lease) == 2
        a, b = await db.load_task(task.id), await db.load_task(task.id)
        assert a is not None and b is not None
        a.attempt = 1
        a.status, a.message = TaskStatus.DOWNLOADING, "a thinks it runs"
        with pytest.raises(TaskNotFound):
            await db.save_transition(a)
        a.files[0].completed_length, a.files[0].status = 999, FileStatus.ACTIVE
        a.progress_percent = 50.0
        await db.save_progress({a.id: (a, {0})})
        stored = await db.load_task(task.id)
        assert stored is not None
        assert (stored.status, stored.message, stored.progress_percent) == (
            TaskStatus.PENDING,
            None,
            0.0,
        )
        assert (stored.files[0].completed_length, stored.files[0].status) == (
            0,
            FileStatus.WAITING,
        )
        assert await db.runner.write(claims.renew, "a", {task.id: 1}, lease) == set()
        b.status, b.message = TaskStatus.DOWNLOADING, "b runs it"
        b.files[0].completed_length = 10
        await db.save_transition(b)
        assert await db.runner.write(claims.renew, "b", {task.id: 2}, lease) == {task.id}
        stored = await db.load_task(task.id)
        assert stored is not None
        assert (stored.status, stored.message, stored.files[0].completed_length) == (
            TaskStatus.DOWNLOADING,
            "b runs it",
            10,
        )
    finally:
        await db.close()


# -- controls across nodes ------------------------------------------------------------------


async def worker_health(node: ServerProcess) -> dict[str, Any]:
    async with node.client() as http:
        body: dict[str, Any] = (await http.get("/api/health")).json()
        return body


async def test_a_cancel_on_an_api_node_stops_the_worker_s_downloads_within_2_s(
    cluster: Cluster, fileserver: FileServer
) -> None:
    api = await cluster.start("api1", "api")
    workers = {name: await cluster.start(name, "worker") for name in ("w1", "w2")}
    async with api.client() as http:
        task_id = await submit(http, job([fileserver.url("/slow/4M/cancel.bin?rate=256K")]))
        row = await owned_at(cluster, task_id, 0.05)
        holder = workers[row["owner"]]
        assert (await worker_health(holder))["monitor"]["tracked_files"] == 1
        asked = time.monotonic()
        resp = await http.post(f"/api/tasks/{task_id}/cancel")
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "cancelled"

        async def gone() -> bool:
            health = await worker_health(holder)
            partial = cluster.root / "downloads" / task_id
            left = [p for p in partial.rglob("*") if p.is_file()] if partial.exists() else []
            return bool(health["monitor"]["tracked_files"] == 0 and not left)

        await wait_for(gone, 2.0, step=0.05)
        assert time.monotonic() - asked <= 2.0
        assert (await http.get(f"/api/tasks/{task_id}")).json()["status"] == "cancelled"
    row = await cluster.row(task_id)
    assert (row["status"], row["owner"], row["attempt"]) == ("cancelled", None, 1)
    assert "control cancel of task" in holder.log.read_text()


async def test_pause_resume_and_priority_on_an_api_node_for_running_and_waiting_tasks(
    cluster: Cluster, fileserver: FileServer
) -> None:
    """One worker with one slot: A runs, B, D and C wait in the queue (held by nobody). B
    is paused and C raised on the api node (on the database); A is paused there too (by its
    worker); C then runs before D; A and B resumed finish; A goes on from its bytes."""
    api = await cluster.start("api1", "api")
    worker = await cluster.start("w1", "worker", DRAFTDL_MAX_ACTIVE_TASKS="1")
    a_path = "/slow/4M/a.bin"
    async with api.client() as http:
        a = await submit(http, job([fileserver.url(f"{a_path}?rate=1M")], title="a"))
        await owned_at(cluster, a, 0.1)
        b = await submit(http, job([fileserver.url("/slow/64K/b.bin?rate=256K")], title="b"))
        d = await submit(http, job([fileserver.url("/slow/64K/d.bin?rate=256K")], title="d"))
        c = await submit(http, job([fileserver.url("/slow/64K/c.bin?rate=256K")], title="c"))
        resp = await http.post(f"/api/tasks/{b}/pause")
        assert resp.status_code == 200 and resp.json()["status"] == "paused", resp.text
        resp = await http.patch(f"/api/tasks/{c}", json={"priority": 5})
        assert resp.status_code == 200, resp.text
        assert (await cluster.row(b))["status"] == "paused"
        resp = await http.post(f"/api/tasks/{a}/pause")  # held by w1: run there
        assert resp.status_code == 200 and resp.json()["status"] == "paused", resp.text
        assert (await cluster.row(a))["owner"] is None

        async def c_done() -> bool:
            return bool((await cluster.row(c))["status"] == "completed")

        await wait_for(c_done, 20)
        assert (await cluster.row(d))["status"] in ("pending", "downloading")  # C went first
        assert (await cluster.row(b))["status"] == "paused"  # not taken while paused
        resp = await http.post(f"/api/tasks/{b}/resume")
        assert resp.status_code == 200 and resp.json()["status"] == "pending", resp.text
        resp = await http.post(f"/api/tasks/{a}/resume")
        assert resp.status_code == 200, resp.text
        resp = await http.post(f"/api/tasks/{c}/pause")  # finished: the holder's 409
        assert resp.status_code == 409, resp.text

        async def all_done() -> bool:
            rows = await cluster.rows()
            return all(r["status"] == "completed" for r in rows)

        await wait_for(all_done, 30)
    # Claim numbers: a claim adds one, and so does a change made on the database by a node
    # that holds no claim (the api node's pause, resume and priority change).
    attempts = {r["id"]: r["attempt"] for r in await cluster.rows()}
    assert attempts == {
        a: 3,  # claimed, paused by its worker, resumed on the api node, claimed again
        b: 3,  # paused and resumed on the api node, claimed
        c: 2,  # raised on the api node, claimed
        d: 1,  # claimed
    }
    assert fileserver.bytes_served(a_path) < 2 * 4 * 1024 * 1024  # it went on from its bytes
    assert worker.proc is not None and worker.proc.poll() is None


# -- events between nodes (Redis) -----------------------------------------------------------


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Watcher:
    """A Socket.IO client and an SSE reader of one task on one node, recording what arrives
    and when."""

    def __init__(self, node: ServerProcess, task_id: str) -> None:
        self.node, self.task_id = node, task_id
        self.sio_events: list[tuple[float, str, dict[str, Any]]] = []
        self.sse_events: list[tuple[float, str, dict[str, Any]]] = []
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("*", self._on_sio)
        self._sse: asyncio.Task[None] | None = None

    async def _on_sio(self, name: str, data: Any = None) -> None:
        self.sio_events.append((time.time(), name, data or {}))

    async def start(self) -> None:
        await self.sio.connect(
            self.node.base_url, socketio_path="/socket.io", transports=["websocket"]
        )
        await self.sio.emit("subscribe_task", {"task_id": self.task_id})
        self._sse = asyncio.create_task(self._read_sse())

    async def _read_sse(self) -> None:
        url = f"{self.node.base_url}/api/tasks/{self.task_id}/progress/stream"
        timeout = httpx.Timeout(60, connect=5)
        async with httpx.AsyncClient(timeout=timeout) as http, http.stream("GET", url) as resp:
            name = ""
            async for line in resp.aiter_lines():
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and name:
                    self.sse_events.append((time.time(), name, json.loads(line[5:])))

    async def stop(self) -> None:
        await self.sio.disconnect()
        if self._sse is not None:
            self._sse.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await self._sse

    @staticmethod
    def percents(events: list[tuple[float, str, dict[str, Any]]]) -> list[float]:
        return [
            float(d["progress"]["progress_percent"])
            for _, name, d in events
            if name == "task_progress" and "progress" in d
        ]

    @staticmethod
    def arrived(events: list[tuple[float, str, dict[str, Any]]], name: str) -> float | None:
        return next((at for at, n, _ in events if n == name), None)


async def completed_at(cluster: Cluster, task_id: str) -> float:
    """The moment the task's completion was stored (the worker's clock: this machine's)."""
    async with cluster.engine.connect() as conn:
        found = await conn.execute(
            text("SELECT completed_at FROM tasks WHERE id = :id"), {"id": task_id}
        )
        stamp = found.scalar_one()
    return float(stamp.replace(tzinfo=UTC).timestamp())


async def test_a_task_submitted_on_one_api_node_is_watched_live_on_the_other(
    cluster: Cluster, fileserver: FileServer, redis: RedisServer
) -> None:
    env = {"DRAFTDL_REDIS_URL": redis.url}
    node_a = await cluster.start("api-a", "api", **env)
    node_b = await cluster.start("api-b", "api", **env)
    await cluster.start("w1", "worker", **env)
    await cluster.start("w2", "worker", **env)
    async with node_b.client() as http:
        task_id = await submit(http, job([fileserver.url("/slow/2M/live.bin?rate=1M")]))
    watcher = Watcher(node_a, task_id)
    await watcher.start()
    try:

        async def both_final() -> bool:
            return all(
                Watcher.arrived(events, "task_completed") is not None
                for events in (watcher.sio_events, watcher.sse_events)
            )

        await wait_for(both_final, 30)
    finally:
        await watcher.stop()
    stored = await completed_at(cluster, task_id)
    for events in (watcher.sio_events, watcher.sse_events):
        percents = Watcher.percents(events)
        assert len(percents) >= 3, events  # progress came from the worker, live
        assert percents == sorted(percents)  # monotone
        arrived = Watcher.arrived(events, "task_completed")
        assert arrived is not None and arrived - stored <= 1.0, (arrived, stored)


async def test_redis_away_for_5_s_events_come_back_and_no_final_event_is_lost(
    cluster: Cluster, fileserver: FileServer, redis: RedisServer
) -> None:
    env = {"DRAFTDL_REDIS_URL": redis.url}
    node_a = await cluster.start("api-a", "api", **env)
    await cluster.start("w1", "worker", **env)
    async with node_a.client() as http:
        short = await submit(http, job([fileserver.url("/slow/1M/short.bin?rate=512K")]))
        long = await submit(http, job([fileserver.url("/slow/6M/long.bin?rate=512K")]))
    early, late = Watcher(node_a, short), Watcher(node_a, long)
    await early.start()
    await late.start()
    try:
        await owned_at(cluster, short, 0.0)
        await asyncio.to_thread(redis.stop)  # while both download: short ends while it is away
        stopped = time.time()
        await asyncio.sleep(5)
        await asyncio.to_thread(redis.start)
        restarted = time.time()

        async def progress_again() -> bool:
            return any(
                at > restarted and name == "task_progress" for at, name, _ in late.sse_events
            )

        await wait_for(progress_again, 10)

        async def finals() -> bool:
            return all(
                Watcher.arrived(w.sse_events, "task_completed") is not None
                and Watcher.arrived(w.sio_events, "task_completed") is not None
                for w in (early, late)
            )

        await wait_for(finals, 40)
    finally:
        await early.stop()
        await late.stop()
    assert (await cluster.row(short))["status"] == (await cluster.row(long))["status"]
    assert (await cluster.row(long))["status"] == "completed"
    assert stopped < restarted
    assert "events: a gap in the relay" in node_a.log.read_text()


async def test_an_api_node_killed_its_clients_go_to_the_other_and_tasks_go_on(
    cluster: Cluster, fileserver: FileServer, redis: RedisServer
) -> None:
    env = {"DRAFTDL_REDIS_URL": redis.url}
    node_a = await cluster.start("api-a", "api", **env)
    node_b = await cluster.start("api-b", "api", **env)
    await cluster.start("w1", "worker", **env)
    async with node_a.client() as http:
        task_id = await submit(http, job([fileserver.url("/slow/3M/on.bin?rate=1M")]))
    await owned_at(cluster, task_id, 0.1)
    node_a.kill()
    async with node_b.client() as http:
        snapshot = (await http.get(f"/api/tasks/{task_id}")).json()
        assert snapshot["status"] == "downloading"
        assert 0 < snapshot["progress"]["downloaded_size"] < 3 * 1024 * 1024
    watcher = Watcher(node_b, task_id)
    await watcher.start()
    try:

        async def final() -> bool:
            return Watcher.arrived(watcher.sse_events, "task_completed") is not None

        await wait_for(final, 30)
    finally:
        await watcher.stop()
    row = await cluster.row(task_id)
    assert (row["status"], row["attempt"]) == ("completed", 1)  # its worker went on


async def test_the_global_speed_cap_set_on_an_api_node_reaches_every_worker(
    cluster: Cluster,
) -> None:
    api = await cluster.start("api1", "api")
    w1 = await cluster.start("w1", "worker")
    w2 = await cluster.start("w2", "worker")
    async with api.client() as http:
        resp = await http.put("/api/settings/limits", json={"max_overall_download_limit": "2M"})
        assert resp.status_code == 200, resp.text
        for worker in (w1, w2):
            options = await aria2_call(worker, "aria2.getGlobalOption")
            assert options["max-overall-download-limit"] == str(2 * 1024 * 1024)
        w3 = await cluster.start("w3", "worker")  # started later: it reads the stored one
        options = await aria2_call(w3, "aria2.getGlobalOption")
        assert options["max-overall-download-limit"] == str(2 * 1024 * 1024)
        async with w1.client() as other:
            resp = await other.put("/api/settings/limits", json={"max_overall_download_limit": "0"})
            assert resp.status_code == 200, resp.text
        assert (await http.get("/api/settings/limits")).json() == {
            "max_overall_download_limit": "0"
        }
        for worker in (w1, w2, w3):
            options = await aria2_call(worker, "aria2.getGlobalOption")
            assert options["max-overall-download-limit"] == "0"


async def test_a_clean_stop_hands_tasks_over_at_once_and_a_restart_takes_its_own_back(
    cluster: Cluster, fileserver: FileServer
) -> None:
    """With a 30 s lease: a worker stopped cleanly lets go of its task, which the other
    takes within seconds; a worker killed and started again (same name) claims its own task
    again at start, without waiting for the lease."""
    long = {"DRAFTDL_LEASE_SECONDS": "30"}
    api = await cluster.start("api1", "api", **long)
    workers = {name: await cluster.start(name, "worker", **long) for name in ("w1", "w2")}
    async with api.client() as http:
        task_id = await submit(http, job([fileserver.url("/slow/4M/handover.bin?rate=512K")]))
        row = await owned_at(cluster, task_id, 0.1)
        first, other = row["owner"], "w2" if row["owner"] == "w1" else "w1"
        await asyncio.to_thread(workers[first].stop)
        stopped = time.monotonic()

        async def handed_over() -> bool:
            now = await cluster.row(task_id)
            return now["attempt"] == 2 and now["owner"] in (other, None)

        await wait_for(handed_over, 5)
        assert time.monotonic() - stopped < 5  # not the 30 s lease
        workers[other].kill()  # killed: its claim stays, naming it
        restarted = await cluster.start(other, "worker", **long)
        assert restarted.port != workers[other].port

        async def taken_back() -> bool:
            now = await cluster.row(task_id)
            return now["attempt"] == 3 and now["owner"] in (other, None)

        await wait_for(taken_back, 5)
        final: dict[str, Any] = {}

        async def done() -> bool:
            final.update((await http.get(f"/api/tasks/{task_id}")).json())
            return final["status"] in FINAL

        await wait_for(done, 30)
    assert final["status"] == "completed", final["error_message"]
    assert len(draft_folders(cluster.root)) == 1


async def test_a_second_live_worker_with_the_same_name_is_refused(cluster: Cluster) -> None:
    await cluster.start("w1", "worker")
    twin = ServerProcess(
        cluster.root / "twin", "--role", "worker", "--node-name", "w1", **cluster.shared
    )
    cluster.nodes["twin"] = twin
    with pytest.raises(AssertionError, match="node_name 'w1' belongs to a node seen"):
        await twin.start(timeout=30)


def new_task(task_id: str, priority: int = 0, seq: int = 1) -> Any:
    from draftdl.model.states import TaskStatus
    from draftdl.model.task import FileState, TaskState, utcnow

    now = utcnow()
    return TaskState(
        id=task_id,
        seq=seq,
        status=TaskStatus.PENDING,
        priority=priority,
        request_json="{}",
        created_at=now,
        updated_at=now,
        files=[FileState(0, f"http://h/{task_id}", "a.bin", f"/d/{task_id}/a.bin", "0" * 16)],
    )


@contextlib.asynccontextmanager
async def cluster_database(url: str) -> AsyncIterator[Any]:
    from draftdl.cluster import jobs
    from draftdl.db.repo import Database

    db = Database(url, jobs=True)
    await db.init()
    await db.runner.write(jobs.prepare)  # (as a cluster node does at start)
    try:
        yield db
    finally:
        await db.close()


async def test_a_change_made_on_the_database_fences_out_a_holder_that_was_away(
    database: str,
) -> None:
    """W1's claim ran out and nobody claimed the task; an api node cancels it on the
    database: W1, back, with its old claim number, writes neither status nor progress."""
    from draftdl.cluster import claims
    from draftdl.errors import TaskNotFound
    from draftdl.model.states import FileStatus, TaskStatus

    async with cluster_database(database) as db:
        await db.save_task(new_task("t-away"))
        assert await db.runner.write(claims.claim, "t-away", "w1", timedelta(0)) == 1
        w1 = await db.load_task("t-away")
        api = await db.load_task("t-away")
        assert w1 is not None and api is not None
        api.status, api.attempt = TaskStatus.CANCELLED, 2  # what TaskQueue._move does
        await db.save_transition(api, release=True, fence=1)
        w1.status = TaskStatus.PROCESSING
        with pytest.raises(TaskNotFound):
            await db.save_transition(w1)
        w1.files[0].status, w1.files[0].completed_length = FileStatus.COMPLETE, 5
        await db.save_progress({w1.id: (w1, {0})})
        stored = await db.load_task("t-away")
        assert stored is not None
        assert (stored.status, stored.attempt, stored.files[0].status) == (
            TaskStatus.CANCELLED,
            2,
            FileStatus.WAITING,
        )
        assert await db.runner.write(claims.renew, "w1", {"t-away": 1}, timedelta(30)) == set()


async def test_tasks_stored_by_two_nodes_get_distinct_numbers_and_jobs_follow_priorities(
    database: str,
) -> None:
    from draftdl.cluster import jobs

    async with cluster_database(database) as a, cluster_database(database) as b:
        await a.save_task(new_task("t-a1", priority=5, seq=1))
        await b.save_task(new_task("t-b1", priority=3, seq=1))  # b counted from 1 too
        await a.save_task(new_task("t-a2", priority=0, seq=2))
        async with a.runner.engine.connect() as conn:
            seqs = dict((await conn.execute(text("SELECT id, seq FROM tasks"))).all())
        assert sorted(seqs.values()) == [1, 2, 3]  # from the cluster's sequence
        await a.runner.write(jobs.enqueue, [("t-a1", 1), ("t-a2", 7)])  # lowered, raised

        async def priorities() -> dict[str, int]:
            async with a.runner.engine.connect() as conn:
                found = await conn.execute(text("SELECT dedupe_key, priority FROM pgqueuer"))
                return dict(found.all())

        assert await priorities() == {"t-a1": 1, "t-b1": 3, "t-a2": 7}  # one job each


async def test_a_control_request_is_taken_up_once_and_not_after_its_asker_gave_up(
    database: str,
) -> None:
    from draftdl.cluster import control

    async with cluster_database(database) as db:

        def ask(conn: Any, request_id: str, age: float) -> None:
            control._ask(
                conn,
                {"id": request_id, "task_id": "t", "node": "w1", "action": "pause", "args": "{}"},
            )
            conn.execute(
                text(
                    "UPDATE control_requests SET created_at = now() - CAST(:age AS interval)"
                    " WHERE id = :id"
                ),
                {"id": request_id, "age": timedelta(seconds=age)},
            )

        await db.runner.write(ask, "old", control.ANSWER_TIMEOUT + 5)
        await db.runner.write(ask, "new", 0)
        taken = await db.runner.write(control._take_mine, "w1")
        assert [r["id"] for r in taken] == ["new"]  # not the one its asker gave up on
        assert await db.runner.write(control._take_mine, "w1") == []  # once
        assert await db.runner.write(control._abandon, "new") is None  # the asker gives up
        await db.runner.write(control._answered, "new", '{"ok": true}')  # too late
        assert await db.runner.read(control._answer_of, "new") == control.ABANDONED
