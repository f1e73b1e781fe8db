"""A worker node's part of a cluster: it takes tasks from the queue while it has free slots,
keeps its claims alive, and enqueues again the tasks whose holder went away.

Three loops, owned here and stopped by ``stop``:
- pgqueuer's QueueManager on a connection of its own (its LISTEN and dequeue), gated by the
  queue's free slots (jobs.py); a job's handler claims its task and hands it to the queue;
- the renewal, every lease/3: one statement renews every claim this node holds and returns
  those it still holds; the others were claimed by another node (this one was stopped or cut
  off past its lease) and are let go. Cut off from the database for a whole lease, a worker
  stops its downloads by its own clock: the database may have given them to another;
- the sweeper, every lease/2: an unfinished task that nobody holds and that has no waiting
  job (its worker died; a job was lost) gets a job again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from draftdl.cluster import claims, jobs
from draftdl.datadir import write_private
from draftdl.db.repo import Database
from draftdl.settings import Settings
from draftdl.tasks.queue import TaskQueue

log = logging.getLogger(__name__)

DEQUEUE_TIMEOUT = timedelta(seconds=5)  # a look at the queue when no NOTIFY came
WAKE_EVERY = 0.05  # at most one wake-up NOTIFY per this many seconds
STOP_GRACE = 5.0  # seconds for a claim being made when the worker stops
SELF_FENCE = 0.8  # of a lease without a renewal: this node lets its claims go
TOKEN_FILE = "node-token"


class NodeNameTaken(RuntimeError):
    pass


class Worker:
    def __init__(self, settings: Settings, db: Database, queue: TaskQueue) -> None:
        self.settings = settings
        self.db = db
        self.queue = queue
        self.node = settings.node
        self.lease = timedelta(seconds=settings.lease_seconds)
        self._manager: Any = None
        self._loops: list[asyncio.Task[None]] = []
        self._last_renewed = time.monotonic()
        self._wake_pending = False
        self._wakes: set[asyncio.Future[None]] = set()
        self._stopping = False
        self._renewing: asyncio.Task[None] | None = None
        self.registered = False
        self.claimed = 0  # for health and tests
        self.lost = 0

    async def register(self) -> None:
        """Takes the node's name (before anything of this node may act on its claims):
        ``NodeNameTaken`` when another live process has it."""
        token = await asyncio.to_thread(node_token, self.settings.data_dir)
        if not await self.db.runner.write(claims.take_name, self.node, "worker", token, self.lease):
            raise NodeNameTaken(
                f"node_name {self.node!r} belongs to a node seen within the last "
                f"{self.settings.lease_seconds:g} s: give each node its own name"
            )
        self.registered = True

    async def start(self) -> None:
        """Takes back this node's own claims, then takes tasks from the queue."""
        assert self.registered, "register() first"
        self._manager = await self._new_manager()
        self.queue.on_slot_freed = self.wake
        self._renewing = self._every(self.settings.lease_seconds / 3, self.renew, "renew")
        await self._take_back()
        self._loops = [
            asyncio.create_task(self._run_manager(), name="claims"),
            self._every(self.settings.lease_seconds / 2, self.sweep, "sweep", at_once=True),
        ]
        log.info("worker %s: taking tasks (lease %.0f s)", self.node, self.lease.total_seconds())

    async def _take_back(self) -> None:
        """Claims that name this node, left by its previous run (killed, or cut off): taken
        up at once rather than after their lease."""
        for task_id in await self.db.runner.read(claims.held_by, self.node):
            await self._claim(task_id)

    async def release(self) -> None:
        """After a clean stop (the queue stopped, its aria2c too): the renewals end, every
        claim of this node is let go and its tasks enqueued, so other workers go on with
        them now. Nothing when the node never had its name."""
        if self._renewing is not None:
            self._renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewing
            self._renewing = None
        if not self.registered:
            return
        try:
            released = await self.db.runner.write(_release, self.node)
        except Exception:
            log.exception("worker %s: could not let go of its tasks (their leases run out)",
                          self.node)  # fmt: skip
            return
        if released:
            log.info("worker %s: %d tasks left to the other workers", self.node, len(released))

    async def stop(self) -> None:
        """Stops taking tasks; the claims held are still renewed until ``release`` (builds
        may take a while to finish). A claim being made is let finish."""
        self.queue.on_slot_freed = None
        self._stopping = True
        if self._manager is not None:
            self._manager.shutdown.set()
        if self._loops:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._loops[0]), STOP_GRACE)
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        self._loops.clear()
        await asyncio.gather(*self._wakes, return_exceptions=True)

    async def _new_manager(self) -> Any:
        try:
            import asyncpg  # type: ignore[import-untyped]
            from pgqueuer.db import AsyncpgDriver
        except ImportError as exc:
            raise RuntimeError(
                f"role worker needs the cluster extra: pip install 'draftdl[cluster]' ({exc})"
            ) from exc

        connection = await asyncpg.connect(asyncpg_dsn(self.settings.db_url))
        manager = jobs.slot_gated_manager(AsyncpgDriver(connection), self.queue.free_slots)
        manager.entrypoint(jobs.ENTRYPOINT)(self._handle)
        manager.resources["connection"] = connection
        return manager

    async def _run_manager(self) -> None:
        """pgqueuer's loop, started again (on a new connection) if it ends by itself."""
        while True:
            try:
                await self._manager.run(
                    dequeue_timeout=DEQUEUE_TIMEOUT,
                    batch_size=1,
                    heartbeat_timeout=self.lease,
                    shutdown_on_listener_failure=True,
                    log_aggregation_interval=timedelta(0),
                )
            except Exception:
                log.exception("the task queue's listener failed; starting it again")
            finally:
                with contextlib.suppress(Exception):
                    await self._manager.resources["connection"].close()
            while not self._stopping:
                await asyncio.sleep(1.0)
                try:
                    manager = await self._new_manager()
                except Exception as exc:
                    log.warning("the task queue's listener: %r; again in 1 s", exc)
                    continue
                if self._stopping:  # stopped meanwhile: this one must not run
                    await manager.resources["connection"].close()
                    return
                self._manager = manager
                break
            if self._stopping:
                return

    async def _handle(self, job: Any) -> None:
        """A job: claim its task, and run it here."""
        await self._claim(bytes(job.payload or b"").decode())

    async def _claim(self, task_id: str) -> None:
        if task_id in self.queue.live:
            return  # held here already (its job came from a sweep of a late renewal)
        attempt = await self.db.runner.write(claims.claim, task_id, self.node, self.lease)
        if attempt is None:
            return  # finished, paused, or another node's
        task = await self.db.load_task(task_id)
        if task is None or task.status.final or task.attempt != attempt:
            return  # deleted, or changed hands, since the claim
        self.claimed += 1
        self.queue.take(task)

    async def renew(self) -> None:
        """One statement for every claim held; those it does not return are let go. Not
        renewed for most of a lease (the database unreachable, or slow to answer), the
        claims are let go by this node's own clock: the database may give them to another
        node soon (its clock counts from the last renewal it saw, which is no earlier
        than when this one was sent)."""
        mine = {t.id: t.attempt for t in self.queue.live.values()}
        sent = time.monotonic()
        try:
            kept = await asyncio.wait_for(
                self.db.runner.write(claims.renew, self.node, mine, self.lease),
                self.lease.total_seconds() / 3,
            )
        except Exception:
            if time.monotonic() - self._last_renewed > SELF_FENCE * self.lease.total_seconds():
                log.error("worker %s: claims not renewed for a lease; stopping them", self.node)
                await self._let_go(mine)
            raise
        self._last_renewed = sent
        await self._let_go({i: a for i, a in mine.items() if i not in kept})

    async def _let_go(self, lost: dict[str, int]) -> None:
        for task_id, attempt in lost.items():
            held = self.queue.live.get(task_id)
            if held is not None and held.attempt == attempt:
                self.lost += 1
                await self.queue.lose(task_id)

    async def sweep(self) -> None:
        """Enqueues unheld unfinished tasks (in one transaction with the look)."""
        found = await self.db.runner.write(_enqueue_orphans)
        if found:
            log.warning("sweep: %d unheld tasks enqueued again: %s", len(found), ", ".join(found))

    def wake(self) -> None:
        """A slot is free: pgqueuer's loop (on every worker) looks at the queue now rather
        than at its next timeout. A NOTIFY on its channel, sent at most every WAKE_EVERY."""
        if self._wake_pending:
            return
        self._wake_pending = True

        async def send() -> None:
            await asyncio.sleep(WAKE_EVERY)
            self._wake_pending = False
            try:
                await self.db.runner.write(_notify_queue)
            except Exception as exc:
                log.info("could not wake the task queue: %r", exc)

        task = asyncio.ensure_future(send())
        self._wakes.add(task)
        task.add_done_callback(self._wakes.discard)

    def _every(
        self, seconds: float, job: Callable[[], Awaitable[None]], name: str, at_once: bool = False
    ) -> asyncio.Task[None]:
        async def loop() -> None:
            if not at_once:
                await asyncio.sleep(seconds)
            while True:
                try:
                    await job()
                except Exception:
                    log.exception("%s failed; again in %.1f s", name, seconds)
                await asyncio.sleep(seconds)

        return asyncio.create_task(loop(), name=name)


def _release(conn: Connection, node: str) -> list[tuple[str, int]]:
    released = claims.release_all(conn, node)
    jobs.enqueue(conn, released)
    return released


def _enqueue_orphans(conn: Connection) -> list[str]:
    found = claims.orphans(conn)
    jobs.enqueue(conn, found)
    return [task_id for task_id, _ in found]


def _notify_queue(conn: Connection) -> None:
    event = {
        "channel": "ch_pgqueuer",
        "sent_at": datetime.now(UTC).isoformat(),
        "type": "table_changed_event",
        "operation": "update",
        "table": "pgqueuer",
    }
    conn.execute(text("SELECT pg_notify('ch_pgqueuer', :event)"), {"event": json.dumps(event)})


def node_token(data_dir: Path) -> str:
    """This node's token, made once and kept in its data folder (blocking: a thread)."""
    path = data_dir / TOKEN_FILE
    with contextlib.suppress(FileNotFoundError):
        if token := path.read_text(encoding="ascii").strip():
            return token
    token = secrets.token_hex(16)
    write_private(path, token + "\n")
    return token


def asyncpg_dsn(url: str) -> str:
    """asyncpg's own form of a SQLAlchemy URL (no ``+asyncpg``)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)
