"""Database: every task transition and progress flush goes through here."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import timedelta

from sqlalchemy import (
    ColumnElement,
    SQLColumnExpression,
    case,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from draftdl.db.engine import make_engine, prepare_database
from draftdl.db.migrate import migrate
from draftdl.db.outbox import OutboxStore, insert_deliveries
from draftdl.db.tables import Base, FileRow, TaskRow
from draftdl.errors import TaskNotFound
from draftdl.model.delivery import Delivery
from draftdl.model.states import FINAL, FileStatus, TaskStatus
from draftdl.model.task import FileState, FileTotals, TaskState, utcnow


def _to_state(row: TaskRow, with_files: bool = True) -> TaskState:
    task = TaskState(
        id=row.id,
        seq=row.seq,
        status=TaskStatus(row.status),
        priority=row.priority,
        request_json=row.request_json,
        created_at=row.created_at,
        updated_at=row.updated_at,
        message=row.message,
        error_message=row.error_message,
        draft_path=row.draft_path,
        completed_at=row.completed_at,
        progress_percent=row.progress_percent,
        max_download_limit=row.max_download_limit,
        deadline_dropped=row.deadline_dropped,
        title=row.title,
        webhook=row.webhook,
        warnings=json.loads(row.warnings) if row.warnings else [],
    )
    if not with_files:
        return task
    task.files = [
        FileState(
            idx=f.idx,
            url=f.url,
            file_name=f.file_name,
            file_path=f.file_path,
            gid=f.gid,
            status=FileStatus(f.status),
            total_length=f.total_length,
            completed_length=f.completed_length,
            attempts=f.attempts,
            error_code=f.error_code,
            error_message=f.error_message,
            next_retry_at=f.next_retry_at,
            source_url=f.source_url,
        )
        for f in row.files
    ]
    return task


def _like_escaped(text: str) -> str:
    """``text`` matched literally by LIKE (with ``ESCAPE '\\'``): no wildcards of its own."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _task_values(task: TaskState) -> dict[str, object]:
    """The columns a transition (or a change by the user) may change."""
    return {
        "status": task.status.value,
        "priority": task.priority,
        "max_download_limit": task.max_download_limit,
        "deadline_dropped": task.deadline_dropped,
        "message": task.message,
        "error_message": task.error_message,
        "draft_path": task.draft_path,
        "progress_percent": task.progress_percent,
        "updated_at": task.updated_at,
        "completed_at": task.completed_at,
    }


def _file_values(f: FileState) -> dict[str, object]:
    return {
        "status": f.status.value,
        "total_length": f.total_length,
        "completed_length": f.completed_length,
        "attempts": f.attempts,
        "error_code": f.error_code,
        "error_message": f.error_message,
        "next_retry_at": f.next_retry_at,
        "url": f.url,
        "source_url": f.source_url,
        "gid": f.gid,
    }


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = make_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.outbox = OutboxStore(self.sessions)

    async def init(self) -> None:
        await prepare_database(self.url)
        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
            await conn.run_sync(migrate)  # what an older draftdl's database lacks

    async def close(self) -> None:
        await self.engine.dispose()

    async def next_seq(self) -> int:
        async with self.sessions() as s:
            value = await s.scalar(select(func.max(TaskRow.seq)))
        return int(value or 0) + 1

    async def save_task(self, task: TaskState, deliveries: Sequence[Delivery] = ()) -> None:
        """Stores a new task and its files in one transaction (files as one executemany),
        with the webhook deliveries of its first status."""
        async with self.sessions.begin() as s:
            await s.execute(
                insert(TaskRow).values(
                    id=task.id,
                    seq=task.seq,
                    request_json=task.request_json,
                    title=task.title or "",
                    webhook=task.webhook,
                    warnings=json.dumps(task.warnings, ensure_ascii=False)
                    if task.warnings
                    else None,
                    created_at=task.created_at,
                    **_task_values(task),
                )
            )
            if task.files:
                await s.execute(
                    insert(FileRow),
                    [
                        {
                            "task_id": task.id,
                            "idx": f.idx,
                            "file_name": f.file_name,
                            "file_path": f.file_path,
                            **_file_values(f),
                        }
                        for f in task.files
                    ],
                )
            await insert_deliveries(s, deliveries)

    async def save_transition(
        self, task: TaskState, *, with_files: bool = True, deliveries: Sequence[Delivery] = ()
    ) -> None:
        """Writes a task's status and results (and its files' progress) in one transaction,
        with the webhook deliveries the new status makes. Raises ``TaskNotFound`` when the
        task was deleted meanwhile."""
        async with self.sessions.begin() as s:
            done = await s.execute(
                update(TaskRow).where(TaskRow.id == task.id).values(**_task_values(task))
            )
            if getattr(done, "rowcount", 1) == 0:
                raise TaskNotFound(task.id)
            if with_files and task.files:
                await self._write_files(s, [task])
            await insert_deliveries(s, deliveries)

    async def save_progress(self, changed: Mapping[str, tuple[TaskState, set[int]]]) -> None:
        """One transaction for the live tasks' progress: each task row, and only the file
        rows that changed (a 10,000-file task with 5 active files writes 5)."""
        if not changed:
            return
        async with self.sessions.begin() as s:
            await s.execute(
                update(TaskRow),
                [
                    {"id": t.id, "progress_percent": t.progress_percent, "updated_at": t.updated_at}
                    for t, _ in changed.values()
                ],
            )
            params = [
                {"task_id": t.id, "idx": idx, **_file_values(t.files[idx])}
                for t, indexes in changed.values()
                for idx in sorted(indexes)
            ]
            if params:
                await s.execute(update(FileRow), params)

    @staticmethod
    async def _write_files(s: AsyncSession, tasks: list[TaskState]) -> None:
        params = [
            {"task_id": t.id, "idx": f.idx, **_file_values(f)} for t in tasks for f in t.files
        ]
        if params:
            await s.execute(update(FileRow), params)

    async def load_task(self, task_id: str) -> TaskState | None:
        async with self.sessions() as s:
            row = await s.scalar(
                select(TaskRow).where(TaskRow.id == task_id).options(selectinload(TaskRow.files))
            )
            return None if row is None else _to_state(row)

    async def list_tasks(
        self,
        status: TaskStatus | Collection[TaskStatus] | None,
        limit: int,
        offset: int,
        *,
        q: str | None = None,
    ) -> tuple[list[TaskState], int]:
        """Tasks newest first, in any of ``status`` (one, several, or None for all), whose
        title contains ``q`` (case-insensitive), and how many match over all pages."""
        statuses = [status] if isinstance(status, TaskStatus) else list(status or ())
        where = []
        if statuses:
            where.append(TaskRow.status.in_(sorted({st.value for st in statuses})))
        if q:
            pattern = f"%{_like_escaped(q.lower())}%"
            where.append(self._lower(TaskRow.title).like(pattern, escape="\\"))
        async with self.sessions() as s:
            query = select(TaskRow).where(*where)
            count = select(func.count()).select_from(TaskRow).where(*where)
            total = int(await s.scalar(count) or 0)
            rows = list(
                await s.scalars(query.order_by(TaskRow.seq.desc()).limit(limit).offset(offset))
            )
            # Sums in SQL: a listing never loads the (possibly thousands of) file rows.
            sums = await s.execute(
                select(
                    FileRow.task_id,
                    func.count(),
                    func.sum(case((FileRow.status == FileStatus.COMPLETE.value, 1), else_=0)),
                    func.sum(case((FileRow.status == FileStatus.ERROR.value, 1), else_=0)),
                    func.sum(case((FileRow.status == FileStatus.ACTIVE.value, 1), else_=0)),
                    func.sum(FileRow.total_length),
                    func.sum(FileRow.completed_length),
                )
                .where(FileRow.task_id.in_([r.id for r in rows]))
                .group_by(FileRow.task_id)
            )
            totals = {row[0]: FileTotals(*(int(v or 0) for v in row[1:])) for row in sums}
            out = []
            for row in rows:
                task = _to_state(row, with_files=False)
                task.totals = totals.get(row.id, FileTotals())
                out.append(task)
            return out, total

    def _lower(self, column: SQLColumnExpression[str]) -> ColumnElement[str]:
        """Lower case for the search; SQLite's own ``lower`` knows only ASCII."""
        if self.engine.dialect.name == "sqlite":
            return func.draftdl_lower(column)
        return func.lower(column)

    async def load_unfinished(self) -> list[TaskState]:
        async with self.sessions() as s:
            rows = await s.scalars(
                select(TaskRow)
                .where(TaskRow.status.not_in([st.value for st in FINAL]))
                .options(selectinload(TaskRow.files))
                .order_by(TaskRow.seq)
            )
            return [_to_state(r) for r in rows]

    async def delete_task(self, task_id: str) -> bool:
        """Removes a task and its file rows; False when there was none."""
        async with self.sessions.begin() as s:
            await s.execute(delete(FileRow).where(FileRow.task_id == task_id))
            result = await s.execute(delete(TaskRow).where(TaskRow.id == task_id))
            return bool(getattr(result, "rowcount", 0))

    async def unfinished_ids(self) -> set[str]:
        async with self.sessions() as s:
            rows = await s.scalars(
                select(TaskRow.id).where(TaskRow.status.not_in([st.value for st in FINAL]))
            )
            return set(rows)

    async def cleanup_old_tasks(self, days: int) -> list[str]:
        """Deletes finished tasks older than ``days``; returns their ids (for their files)."""
        cutoff = utcnow() - timedelta(days=days)
        async with self.sessions.begin() as s:
            ids = list(
                await s.scalars(
                    select(TaskRow.id).where(
                        TaskRow.status.in_([st.value for st in FINAL]),
                        TaskRow.updated_at < cutoff,
                    )
                )
            )
            if ids:
                await s.execute(delete(FileRow).where(FileRow.task_id.in_(ids)))
                await s.execute(delete(TaskRow).where(TaskRow.id.in_(ids)))
        return ids

    async def ping(self) -> None:
        """One round trip (``SELECT 1``): raises when the database does not answer."""
        async with self.engine.connect() as conn:
            await conn.execute(select(1))
