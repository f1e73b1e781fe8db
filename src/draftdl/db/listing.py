"""The task listing's two queries (the page, and how many match over all pages).

Built once per shape (how many statuses, with or without a title search) with every value
bound, and kept: building the several-status query costs more than running it. A status is a
walk down ix_tasks_status_seq that stops after a page; several statuses merge one such walk
each, every one stopping after ``offset + limit`` rows (a single walk over all of them would
sort every row they match first). A listed row is for showing: the stored file totals, neither
the request nor the webhook.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Integer,
    Select,
    bindparam,
    func,
    select,
    union_all,
)

from draftdl.db.rows import LIST_COLUMNS, TASKS, task_state
from draftdl.model.task import TaskState


def list_tasks(
    conn: Connection, dialect: str, statuses: list[str], q: str | None, limit: int, offset: int
) -> tuple[list[TaskState], int]:
    """Newest first; ``q`` matched in the title in any case."""
    count, page = _queries(len(statuses), bool(q), dialect)
    values: dict[str, object] = {f"s{i}": value for i, value in enumerate(statuses)}
    if q:
        values["pattern"] = f"%{_like_escaped(q.lower())}%"
    total = int(conn.scalar(count, values) or 0)
    values.update(limit=limit, offset=offset, reach=offset + limit)
    return [task_state(r) for r in conn.execute(page, values)], total


@functools.cache
def _queries(statuses: int, search: bool, dialect: str) -> tuple[Select[Any], Select[Any]]:
    status: list[BindParameter[str]] = [bindparam(f"s{i}") for i in range(statuses)]
    where: list[ColumnElement[bool]] = []
    if search:
        # SQLite's own lower() knows only ASCII: draftdl_lower is Python's (db/engine.py).
        lower = func.draftdl_lower if dialect == "sqlite" else func.lower
        where.append(lower(TASKS.c.title).like(bindparam("pattern"), escape="\\"))
    count = select(func.count()).select_from(TASKS).where(*where)
    if status:
        count = count.where(TASKS.c.status.in_(status))
    newest = TASKS.c.seq.desc()
    if statuses <= 1:
        page = select(*LIST_COLUMNS).where(*where, *(TASKS.c.status == s for s in status))
        return count, page.order_by(newest).limit(_int("limit")).offset(_int("offset"))
    walks = [
        select(*LIST_COLUMNS)
        .where(TASKS.c.status == s, *where)
        .order_by(newest)
        .limit(_int("reach"))
        .subquery()
        for s in status
    ]
    merged = union_all(*(select(walk) for walk in walks)).subquery()
    page = select(merged).order_by(merged.c.seq.desc())
    return count, page.limit(_int("limit")).offset(_int("offset"))


def _int(name: str) -> BindParameter[int]:
    return bindparam(name, type_=Integer)


def _like_escaped(text: str) -> str:
    """``text`` matched literally by LIKE (with ``ESCAPE '\\'``): no wildcards of its own."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
