"""The queue on PostgreSQL that hands tasks to workers: pgqueuer.

A job only says "task X wants a worker". It is enqueued in the transaction that stores (or
requeues) the task, with the task's id as its dedupe key (one waiting job per task) and its
priority; a worker takes one only while it has a free slot, and its handler claims the task
(claims.py), which is what ownership is: the job ends as soon as the claim is made. A worker
that dies holds no job, only a claim that runs out; the sweeper (worker.py) enqueues its tasks
again.

pgqueuer is made for this (asyncpg, ``FOR UPDATE SKIP LOCKED``, a NOTIFY on every enqueue);
its schema is created by migration 0003. Its dequeue takes every entrypoint that
``entrypoints_below_capacity_limits`` returns, asked before every batch: the one hook through
which a per-worker cap that follows the free slots (and changes) can gate it; pgqueuer's own
``max_concurrent_tasks`` is fixed for a run and at least 2. pgqueuer is pinned to 1.6.* for that
hook, and tests/test_cluster.py covers it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.util import await_only

ENTRYPOINT = "draftdl_task"


def install_sql() -> str:
    """pgqueuer's tables, trigger and function, as one script (migration 0003)."""
    from pgqueuer.adapters.persistence.schema_ddl import render_install
    from pgqueuer.domain.settings import DBSettings

    return render_install(DBSettings(), create_schema=False)


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
    await_only(
        queries.enqueue(
            [ENTRYPOINT] * len(tasks),
            [task_id.encode() for task_id in ids],
            [priority for _, priority in tasks],
            dedupe_key=list[str | None](ids),
            on_conflict="update_priority",
        )
    )


def slot_gated_manager(driver: Any, free_slots: Callable[[], int]) -> Any:
    """A pgqueuer QueueManager that dequeues only while ``free_slots()`` exceeds the jobs it
    is handling (each becomes a claim within milliseconds)."""
    from pgqueuer.qm import QueueManager
    from pgqueuer.queries import Queries

    class SlotGatedManager(QueueManager):
        def entrypoints_below_capacity_limits(self) -> set[Any]:
            if free_slots() - len(self.job_context) <= 0:
                return set()
            return set(self.entrypoint_registry)

    return SlotGatedManager(Queries(driver))
