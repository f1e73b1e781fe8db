"""The queue on PostgreSQL that hands tasks to workers: pgqueuer.

A job only says "task X wants a worker". It is enqueued in the transaction that stores (or
requeues) the task, with the task's id as its dedupe key (one waiting job per task) and its
priority; a worker takes one only while it has a free slot, and its handler claims the task
(claims.py), which is what ownership is: the job ends as soon as the claim is made. A worker
that dies holds no job, only a claim that runs out; the sweeper (worker.py) enqueues its tasks
again.

pgqueuer is made for this (asyncpg, ``FOR UPDATE SKIP LOCKED``, a NOTIFY on every enqueue);
its schema is created by the first cluster node that starts (``ensure_schema``: a single
process on PostgreSQL needs neither the tables nor the package). Its dequeue takes every
entrypoint that
``entrypoints_below_capacity_limits`` returns, asked before every batch: the one hook through
which a per-worker cap that follows the free slots (and changes) can gate it; pgqueuer's own
``max_concurrent_tasks`` is fixed for a run and at least 2. pgqueuer is pinned to 1.6.* for that
hook, and tests/test_cluster.py covers it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.util import await_only

ENTRYPOINT = "draftdl_task"


# pg_advisory_xact_lock's key while the schema is made: b"drftpgq" as a 64-bit integer.
SCHEMA_LOCK = int.from_bytes(b"drftpgq", "big", signed=True)
REPRIORITISE = text(
    """
    UPDATE pgqueuer AS q SET priority = v.priority
      FROM (SELECT unnest(CAST(:ids AS text[])) AS id, unnest(CAST(:priorities AS int[]))
                   AS priority) AS v
     WHERE q.dedupe_key = v.id AND q.status = 'queued' AND q.priority <> v.priority
    """
)


def install_sql() -> str:
    """pgqueuer's tables, trigger and function, as one script."""
    from pgqueuer.adapters.persistence.schema_ddl import render_install
    from pgqueuer.domain.settings import DBSettings

    return render_install(DBSettings(), create_schema=False)


def ensure_schema(conn: Connection) -> bool:
    """pgqueuer's schema, made unless it exists (nodes starting together take turns); True
    when it was made. asyncpg takes a multi-statement script only through the driver
    connection's own ``execute``, not as a prepared statement."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
    if conn.execute(text("SELECT to_regclass('pgqueuer')")).scalar() is not None:
        return False
    driver = conn.connection.driver_connection
    if driver is None:
        raise RuntimeError("no driver connection to make pgqueuer's schema on")
    await_only(driver.execute(install_sql()))
    return True


def prepare(conn: Connection) -> bool:
    """What a cluster node needs of the database besides the migrations: pgqueuer's schema,
    and the task numbers' sequence above every stored number (a single process may have
    numbered tasks on its own since). True when the schema was made."""
    made = ensure_schema(conn)
    conn.execute(
        text(
            """
            SELECT setval('tasks_seq', top) FROM (SELECT max(seq) AS top FROM tasks) AS t
             WHERE top >= (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
                             FROM tasks_seq)
            """
        )
    )
    return made


def next_seqs(conn: Connection, count: int) -> list[int]:
    """``count`` task numbers from the cluster's sequence (migration 0003)."""
    found = conn.execute(
        text("SELECT nextval('tasks_seq') FROM generate_series(1, :n)"), {"n": count}
    )
    return [int(value) for value in found.scalars()]


def enqueue(conn: Connection, tasks: Sequence[tuple[str, int]]) -> None:
    """Jobs for ``(task id, priority)`` in ``conn``'s transaction (an asyncpg connection in
    ``run_sync``): they exist, and workers are woken, only when it commits. A task that has a
    waiting job already keeps it, with the new priority."""
    if not tasks:
        return
    from pgqueuer.queries import Queries

    driver = conn.connection.driver_connection
    queries = Queries.from_asyncpg_connection(driver)
    ids = [task_id for task_id, _ in tasks]
    priorities = [priority for _, priority in tasks]
    await_only(
        queries.enqueue(
            [ENTRYPOINT] * len(tasks),
            [task_id.encode() for task_id in ids],
            priorities,
            dedupe_key=list[str | None](ids),
            on_conflict="skip",
        )
    )
    # A waiting job takes the task's priority, lower too (pgqueuer's "update_priority" only
    # ever raises it).
    conn.execute(REPRIORITISE, {"ids": ids, "priorities": priorities})


def slot_gated_manager(driver: Any, free_slots: Callable[[], int]) -> Any:
    """A pgqueuer QueueManager that dequeues only while ``free_slots()`` exceeds the jobs it
    is handling (each becomes a claim within milliseconds)."""
    from pgqueuer.qm import QueueManager
    from pgqueuer.queries import Queries

    class SlotGatedManager(QueueManager):
        def _full(self) -> bool:
            return free_slots() - len(self.job_context) <= 0

        def entrypoints_below_capacity_limits(self) -> set[Any]:
            return set() if self._full() else set(self.entrypoint_registry)

        async def _effective_dequeue_timeout(self, dequeue_timeout: timedelta) -> timedelta:
            # Full, it waits for a wake-up (a slot freed, a NOTIFY) rather than looking
            # again every 0.1 s because tasks are waiting.
            if self._full():
                return dequeue_timeout
            return await super()._effective_dequeue_timeout(dequeue_timeout)

    return SlotGatedManager(Queries(driver))
