"""Schema migration: the columns added to ``tables.py`` since a database was created.

``create_all`` makes missing tables but never changes an existing one, so a database made by an
older draftdl lacks the columns (and their indexes) added since. At start, right after it, each
column the metadata has and its table lacks is added (``ALTER TABLE ... ADD COLUMN`` with its
default) and each missing index created (``ix_tasks_status_seq`` for the status filter); then
the backfill registered for a new column fills the old rows in one pass (``tasks.title`` from
the stored request, the file totals from the file rows). All of it commits together, so a start
cut off half-way leaves the old schema and the next start does it again. Columns are only ever
added, never changed or dropped: this is all a migration has to do, on SQLite and PostgreSQL
alike.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    ScalarSelect,
    Table,
    bindparam,
    func,
    inspect,
    literal,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.schema import ColumnDefault, DefaultClause

from draftdl.db.tables import Base, FileRow, TaskRow
from draftdl.model.states import FileStatus
from draftdl.model.task import task_title

log = logging.getLogger(__name__)

BATCH = 500  # rows read (and updated) at a time by a backfill


def migrate(conn: Connection) -> list[str]:
    """Adds what the tables lack; returns the columns added as ``table.column``. For
    ``run_sync`` inside the transaction that ran ``create_all``."""
    found = inspect(conn)
    present = set(found.get_table_names())
    added: list[str] = []
    for table in Base.metadata.sorted_tables:
        if table.name not in present:
            continue  # create_all just made it whole
        have = {c["name"] for c in found.get_columns(table.name)}
        missing = [c for c in table.columns if c.name not in have]
        indexes = {i["name"] for i in found.get_indexes(table.name)}
        new_indexes = [i for i in table.indexes if i.name not in indexes]
        if (missing or new_indexes) and not added:
            _begin(conn)
        for column in missing:
            conn.exec_driver_sql(add_column_sql(conn.dialect, table, column))
            added.append(f"{table.name}.{column.name}")
        for index in new_indexes:
            index.create(conn)
    for name in added:
        filled = BACKFILLS[name](conn) if name in BACKFILLS else 0
        log.info(
            "database: added column %s (the database was made by an older draftdl)%s",
            name,
            f"; filled it for {filled} rows" if filled else "",
        )
    return added


def _begin(conn: Connection) -> None:
    """pysqlite runs DDL outside any transaction unless one is open: open one, so the new
    columns and their backfill commit (or vanish) together."""
    if conn.dialect.name == "sqlite" and not getattr(
        conn.connection.driver_connection, "in_transaction", True
    ):
        conn.exec_driver_sql("BEGIN")


def add_column_sql(dialect: Dialect, table: Table, column: Column[object]) -> str:
    quote = dialect.identifier_preparer
    sql = (
        f"ALTER TABLE {quote.format_table(table)} ADD COLUMN {quote.format_column(column)} "
        f"{column.type.compile(dialect=dialect)}"
    )
    default = _default_sql(dialect, column)
    if default is not None:
        sql += f" DEFAULT {default}"
        if not column.nullable:
            sql += " NOT NULL"
    elif not column.nullable:
        # Old rows need a value: without a default the column can only come in nullable.
        log.warning("database: %s.%s has no default; added as nullable", table.name, column.name)
    return sql


def _default_sql(dialect: Dialect, column: Column[object]) -> str | None:
    """The column's default as SQL: its server default, else a scalar Python default."""
    server = column.server_default
    if isinstance(server, DefaultClause):
        if isinstance(server.arg, TextClause):
            return server.arg.text
        if isinstance(server.arg, str):
            return _literal(dialect, column, server.arg)
    default = column.default
    if isinstance(default, ColumnDefault) and default.is_scalar and default.arg is not None:
        return _literal(dialect, column, default.arg)
    return None


def _literal(dialect: Dialect, column: Column[object], value: object) -> str:
    compiled = literal(value, type_=column.type).compile(
        dialect=dialect, compile_kwargs={"literal_binds": True}
    )
    return str(compiled)


def _backfill_titles(conn: Connection) -> int:
    """Each old task's title from its stored request: one walk through the table by id."""
    tasks = Base.metadata.tables[TaskRow.__tablename__]
    write = update(tasks).where(tasks.c.id == bindparam("row_id")).values(title=bindparam("value"))
    filled, last = 0, ""
    while True:
        rows = conn.execute(
            select(tasks.c.id, tasks.c.request_json)
            .where(tasks.c.id > last)
            .order_by(tasks.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return filled
        last = rows[-1][0]
        params = [
            {"row_id": row_id, "value": title}
            for row_id, text in rows
            if (title := _title_of(text))
        ]
        if params:
            conn.execute(write, params)
            filled += len(params)


def _backfill_totals(conn: Connection) -> int:
    """Every old task's file counts and sizes (all six columns came together), from its file
    rows: one statement, a correlated count or sum per column."""
    tasks = Base.metadata.tables[TaskRow.__tablename__]
    files = Base.metadata.tables[FileRow.__tablename__]

    def count(*where: ColumnElement[bool]) -> ScalarSelect[int]:
        return select(func.count()).where(files.c.task_id == tasks.c.id, *where).scalar_subquery()

    def total(column: str) -> ScalarSelect[int]:
        return (
            select(func.coalesce(func.sum(files.c[column]), 0))
            .where(files.c.task_id == tasks.c.id)
            .scalar_subquery()
        )

    done = conn.execute(
        update(tasks).values(
            files_total=count(),
            files_completed=count(files.c.status == FileStatus.COMPLETE.value),
            files_failed=count(files.c.status == FileStatus.ERROR.value),
            files_active=count(files.c.status == FileStatus.ACTIVE.value),
            total_size=total("total_length"),
            downloaded_size=total("completed_length"),
        )
    )
    return int(done.rowcount or 0)


def _title_of(text: str) -> str:
    try:
        return task_title(json.loads(text))
    except ValueError:
        return ""


BACKFILLS: dict[str, Callable[[Connection], int]] = {
    "tasks.title": _backfill_titles,
    "tasks.files_total": _backfill_totals,
}
