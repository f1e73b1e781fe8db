"""The hand-written migrator, frozen at Alembic's baseline (revision 0001): it brings a
database an older draftdl made (tables, no ``alembic_version``) up to exactly the frozen
baseline tables (db/migrations/baseline.py), and db/schema.py then stamps it 0001 and lets
Alembic take it on from there. It never follows later changes of ``db/tables.py``: those
are revisions.

Missing tables are created whole; each column a baseline table has and the database's lacks
is added (``ALTER TABLE ... ADD COLUMN`` with its default) and each missing index created
(``ix_tasks_status_seq`` for the status filter); then the backfill registered for a new
column fills the old rows in one pass (``tasks.title`` from the stored request, the file
totals from the file rows). It runs inside the caller's transaction (db/schema.py opens
one, on SQLite too), so a start cut off half-way leaves the old schema and the next start
does it again. Columns are only ever added, never changed or dropped.
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

from draftdl.db.migrations.baseline import BASELINE, FILES, TASKS
from draftdl.model.task import task_title

log = logging.getLogger(__name__)

BATCH = 500  # rows read (and updated) at a time by a backfill


def to_baseline(conn: Connection) -> list[str]:
    """Adds what the database lacks of the baseline; returns the columns added as
    ``table.column``."""
    found = inspect(conn)
    present = set(found.get_table_names())
    for table in BASELINE.sorted_tables:
        if table.name not in present:
            table.create(conn)
            log.info(
                "database: added table %s (the database was made by an older draftdl)", table.name
            )
    added: list[str] = []
    for table in BASELINE.sorted_tables:
        if table.name not in present:
            continue  # just made whole
        have = {c["name"] for c in found.get_columns(table.name)}
        indexes = {i["name"] for i in found.get_indexes(table.name)}
        for column in table.columns:
            if column.name not in have:
                conn.exec_driver_sql(add_column_sql(conn.dialect, table, column))
                added.append(f"{table.name}.{column.name}")
        for index in table.indexes:
            if index.name not in indexes:
                index.create(conn)
    for name in added:
        filled = BACKFILLS[name](conn) if name in BACKFILLS else 0
        log.info(
            "database: added column %s (the database was made by an older draftdl)%s",
            name,
            f"; filled it for {filled} rows" if filled else "",
        )
    return added


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
    tasks = TASKS
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
    tasks, files = TASKS, FILES

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
            # The file statuses as stored (model/states.py FileStatus), frozen with the rest.
            files_completed=count(files.c.status == "complete"),
            files_failed=count(files.c.status == "error"),
            files_active=count(files.c.status == "active"),
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
