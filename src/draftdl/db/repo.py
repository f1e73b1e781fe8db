"""Database: every task transition and progress flush goes through here.

Core statements, not the ORM's unit of work. A write is one transaction with one statement per
table (an executemany for many rows) and includes only the file rows that changed
(db/rows.py); its rows are made on the event loop from the live states, then handed to the
runner (db/engine.py) as plain values. A read is one or two plain SELECTs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from draftdl.db import listing
from draftdl.db.batch import GroupWriter
from draftdl.db.engine import make_runner, prepare_database
from draftdl.db.outbox import OutboxStore, delivery_rows, insert_deliveries
from draftdl.db.rows import (
    FENCE,
    FILE_COLUMNS,
    FILES,
    TASKS,
    FileWrites,
    file_state,
    new_task_values,
    task_state,
    task_values,
    totals_values,
)
from draftdl.db.schema import upgrade_database
from draftdl.errors import TaskNotFound
from draftdl.model.delivery import Delivery
from draftdl.model.states import FINAL, TaskStatus
from draftdl.model.task import FileState, TaskState, utcnow

FINAL_VALUES = sorted(st.value for st in FINAL)
# Unfinished as a list of statuses (not NOT IN the final ones): the status index serves it.
UNFINISHED_VALUES = sorted(st.value for st in TaskStatus if st not in FINAL)

INSERT_TASK = insert(TASKS)
INSERT_FILE = insert(FILES)
# The SET clause comes from the parameters' other keys: one statement, any number of rows.
# Only the claim the row names may write it (always 0 in one process: nobody claims).
UPDATE_TASK = update(TASKS).where(
    TASKS.c.id == bindparam("b_id"), TASKS.c.attempt == bindparam(FENCE)
)
UPDATE_FILE = update(FILES).where(
    FILES.c.task_id == bindparam("b_task"),
    FILES.c.idx == bindparam("b_idx"),
    select(TASKS.c.id)
    .where(TASKS.c.id == bindparam("b_task"), TASKS.c.attempt == bindparam(FENCE))
    .exists(),
)
# A finished task's GET (built once: building a statement costs more than running it).
LOAD_TASK = select(TASKS).where(TASKS.c.id == bindparam("task_id"))
LOAD_FILES = (
    select(*FILE_COLUMNS).where(FILES.c.task_id == bindparam("task_id")).order_by(FILES.c.idx)
)

Rows = list[dict[str, object]]


@dataclass(frozen=True)
class _Update:
    """One task's status change, waiting to be written with others (``save_transition``)."""

    task_id: str
    row: dict[str, object]
    files: FileWrites
    deliveries: Rows
    job: tuple[str, int] | None = None  # enqueued for the workers with it (cluster/jobs.py)


@dataclass(frozen=True)
class _Progress:
    """A progress flush of the live tasks (``save_progress``), in the same queue as the
    status changes: a flush never overtakes a change that was waiting before it (and then
    gets overwritten by the older values the change carries)."""

    rows: Rows
    files: FileWrites


class Database:
    """``jobs``: new tasks are also enqueued for workers (cluster/jobs.py), in the
    transaction that stores them."""

    def __init__(self, url: str, *, jobs: bool = False) -> None:
        self.url = url
        self.jobs = jobs
        self.runner = make_runner(url)
        self.outbox = OutboxStore(self.runner)
        self._inserts = GroupWriter(self._insert_tasks)
        self._updates: GroupWriter[_Update | _Progress] = GroupWriter(self._write_changes)

    async def init(self) -> None:
        await prepare_database(self.url)
        await upgrade_database(self.url, self.runner)

    async def close(self) -> None:
        await self._inserts.aclose()
        await self._updates.aclose()
        await self.runner.dispose()

    async def next_seq(self) -> int:
        value = await self.runner.read(_scalar, select(func.max(TASKS.c.seq)))
        return int(value or 0) + 1

    # -- writes ---------------------------------------------------------------------------

    async def save_task(self, task: TaskState, deliveries: Sequence[Delivery] = ()) -> None:
        """Stores a new task and its files, with the webhook deliveries of its first status;
        submits that arrive meanwhile share the transaction (db/batch.py)."""
        await self._inserts.submit((task, deliveries))

    async def _insert_tasks(self, batch: list[tuple[TaskState, Sequence[Delivery]]]) -> None:
        """New tasks in one transaction: one executemany per table."""
        files = FileWrites()
        tasks: Rows = []
        deliveries: Rows = []
        for task, made in batch:
            files.add(task.id, task.files, new=True)
            tasks.append(new_task_values(task))
            deliveries.extend(delivery_rows(made))
        jobs = [(task.id, task.priority) for task, _ in batch] if self.jobs else []
        seqs = await self.runner.write(_insert_tasks, tasks, files.rows, deliveries, jobs)
        files.committed()
        for (task, _), seq in zip(batch, seqs, strict=False):
            task.seq = seq  # (numbered by the cluster's sequence)

    async def save_transition(
        self,
        task: TaskState,
        *,
        with_files: bool = True,
        deliveries: Sequence[Delivery] = (),
        release: bool = False,
        enqueue: bool = False,
        fence: int | None = None,
    ) -> None:
        """Writes a task's status and results in one transaction, with (``with_files``) its
        files' rows that changed and their totals, and the webhook deliveries the new status
        makes. Raises ``TaskNotFound`` when the task was deleted meanwhile. Changes of other
        tasks that arrive meanwhile share the transaction (db/batch.py). Only the claim
        ``task.attempt`` writes (else ``TaskNotFound``); ``release`` lets the claim go;
        ``enqueue`` puts the task in the workers' queue (or gives its job the new priority).
        ``fence``: the claim the row must carry when it is not ``task.attempt``, which is
        then written (a node that holds no claim writes a new number, so that a claim's
        holder that was away writes nothing after it)."""
        row: dict[str, object] = {"b_id": task.id, **task_values(task)}
        row[FENCE] = task.attempt if fence is None else fence
        if fence is not None:
            row["attempt"] = task.attempt
        if release:
            row.update(owner=None, lease_until=None)
        files = FileWrites()
        if with_files:
            row.update(totals_values(task))
            files.add(task.id, task.files, attempt=task.attempt)
        job = (task.id, task.priority) if enqueue else None
        await self._updates.submit(_Update(task.id, row, files, delivery_rows(deliveries), job))

    async def _write_changes(self, batch: list[_Update | _Progress]) -> list[BaseException | None]:
        """Status changes and progress flushes in one transaction, in the order they came; a
        task whose row is gone gets ``TaskNotFound`` and nothing of it is written."""
        found = await self.runner.write(_write_changes, batch)
        outcome: list[BaseException | None] = []
        for step, ok in zip(batch, found, strict=True):
            if ok:
                step.files.committed()
            if isinstance(step, _Update) and not ok:
                outcome.append(TaskNotFound(step.task_id))
            else:
                outcome.append(None)
        return outcome

    async def save_progress(self, changed: Mapping[str, tuple[TaskState, set[int]]]) -> None:
        """The live tasks' progress: the task rows in one executemany, and only the file rows
        that changed (a 10,000-file task with 5 active files writes 5); in the queue of status
        changes, so it may share their transaction."""
        if not changed:
            return
        rows: Rows = []
        files = FileWrites()
        # By task id, as a batch of changes locks its rows: two writers never wait on each
        # other's rows in opposite orders (PostgreSQL would abort one as a deadlock).
        for task, indexes in sorted(changed.values(), key=lambda entry: entry[0].id):
            rows.append(
                {
                    "b_id": task.id,
                    FENCE: task.attempt,
                    "progress_percent": task.progress_percent,
                    "updated_at": task.updated_at,
                    **totals_values(task),
                }
            )
            files.add(task.id, (task.files[i] for i in sorted(indexes)), attempt=task.attempt)
        await self._updates.submit(_Progress(rows, files))

    async def delete_task(self, task_id: str) -> bool:
        """Removes a task and its file rows; False when there was none."""
        return await self.runner.write(_delete_task, task_id)

    async def cleanup_old_tasks(self, days: int) -> list[str]:
        """Deletes finished tasks older than ``days``; returns their ids (for their files)."""
        return await self.runner.write(_cleanup, utcnow() - timedelta(days=days))

    # -- reads ----------------------------------------------------------------------------

    async def load_task(self, task_id: str) -> TaskState | None:
        """A task with its files: two plain SELECTs on one connection."""
        return await self.runner.read(_load_task, task_id)

    async def load_unfinished(self) -> list[TaskState]:
        return await self.runner.read(_load_unfinished)

    async def unfinished_ids(self) -> set[str]:
        found = select(TASKS.c.id).where(TASKS.c.status.in_(UNFINISHED_VALUES))
        return set(await self.runner.read(_scalars, found))

    async def list_tasks(
        self,
        status: TaskStatus | Collection[TaskStatus] | None,
        limit: int,
        offset: int,
        *,
        q: str | None = None,
    ) -> tuple[list[TaskState], int]:
        """Tasks newest first, in any of ``status`` (one, several, or None for all), whose
        title contains ``q`` (case-insensitive), and how many match over all pages. Each is
        for showing: its ``totals`` (stored with the file rows) instead of files, and no
        request."""
        statuses = [status] if isinstance(status, TaskStatus) else list(status or ())
        values = sorted({st.value for st in statuses})
        dialect = self.runner.dialect.name
        return await self.runner.read(listing.list_tasks, dialect, values, q, limit, offset)

    async def ping(self) -> None:
        """One round trip (``SELECT 1``): raises when the database does not answer."""
        await self.runner.read(_scalar, select(1))


# -- the work, on a connection (in the runner's thread, or through run_sync) ----------------


def _scalar(conn: Connection, query: Select[Any]) -> Any:
    return conn.scalar(query)


def _scalars(conn: Connection, query: Select[Any]) -> list[Any]:
    return list(conn.scalars(query))


def _insert_tasks(
    conn: Connection, tasks: Rows, files: Rows, deliveries: Rows, jobs: list[tuple[str, int]]
) -> list[int]:
    """The tasks' numbers when the cluster's sequence gave them (with ``jobs``), else []."""
    seqs: list[int] = []
    if jobs:
        from draftdl.cluster.jobs import next_seqs  # PostgreSQL only

        seqs = next_seqs(conn, len(tasks))
        for row, seq in zip(tasks, seqs, strict=True):
            row["seq"] = seq
    conn.execute(INSERT_TASK, tasks)
    if files:
        conn.execute(INSERT_FILE, files)
    insert_deliveries(conn, deliveries)
    if jobs:
        from draftdl.cluster.jobs import enqueue  # PostgreSQL only: pgqueuer

        enqueue(conn, jobs)
    return seqs


def _write_changes(conn: Connection, steps: Sequence[_Update | _Progress]) -> list[bool]:
    """Per step, whether it was written (False: its task's row is gone, nothing of it
    written). Steps run in their order; a run of status changes (of different tasks: a task
    waits for its own) goes by task id, its file rows and deliveries one statement each."""
    found = [True] * len(steps)
    start = 0
    while start < len(steps):
        step = steps[start]
        if isinstance(step, _Progress):
            conn.execute(UPDATE_TASK, step.rows)
            if step.files.rows:
                conn.execute(UPDATE_FILE, step.files.rows)
            start += 1
            continue
        run: list[tuple[int, _Update]] = []
        while start < len(steps) and isinstance(change := steps[start], _Update):
            run.append((start, change))
            start += 1
        files: Rows = []
        deliveries: Rows = []
        jobs: list[tuple[str, int]] = []
        for k, change in sorted(run, key=lambda item: item[1].task_id):
            found[k] = conn.execute(UPDATE_TASK, change.row).rowcount != 0
            if found[k]:
                files.extend(change.files.rows)
                deliveries.extend(change.deliveries)
                if change.job is not None:
                    jobs.append(change.job)
        if files:
            conn.execute(UPDATE_FILE, files)
        insert_deliveries(conn, deliveries)
        if jobs:
            from draftdl.cluster.jobs import enqueue  # PostgreSQL only: pgqueuer

            enqueue(conn, jobs)
    return found


def _delete_task(conn: Connection, task_id: str) -> bool:
    conn.execute(delete(FILES).where(FILES.c.task_id == task_id))
    return bool(conn.execute(delete(TASKS).where(TASKS.c.id == task_id)).rowcount)


def _cleanup(conn: Connection, cutoff: datetime) -> list[str]:
    old = (TASKS.c.status.in_(FINAL_VALUES), TASKS.c.updated_at < cutoff)
    ids = list(conn.scalars(select(TASKS.c.id).where(*old)))
    if ids:
        conn.execute(delete(FILES).where(FILES.c.task_id.in_(ids)))
        conn.execute(delete(TASKS).where(TASKS.c.id.in_(ids)))
    return ids


def _load_task(conn: Connection, task_id: str) -> TaskState | None:
    row = conn.execute(LOAD_TASK, {"task_id": task_id}).first()
    if row is None:
        return None
    files = conn.execute(LOAD_FILES, {"task_id": task_id})
    return task_state(row, [file_state(f) for f in files])


def _load_unfinished(conn: Connection) -> list[TaskState]:
    unfinished = TASKS.c.status.in_(UNFINISHED_VALUES)
    rows = conn.execute(select(TASKS).where(unfinished).order_by(TASKS.c.seq)).all()
    files: dict[str, list[FileState]] = {r.id: [] for r in rows}
    found = conn.execute(
        select(FILES.c.task_id, *FILE_COLUMNS)
        .where(FILES.c.task_id.in_(select(TASKS.c.id).where(unfinished)))
        .order_by(FILES.c.task_id, FILES.c.idx)
    )
    for f in found:
        if f.task_id in files:  # (not a task that became unfinished between the two reads)
            files[f.task_id].append(file_state(f))
    return [task_state(r, files[r.id]) for r in rows]
