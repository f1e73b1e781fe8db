"""Brings the database to the newest schema at start, with Alembic (db/migrations/).

Three cases, told apart by ``alembic_version``: a fresh database is upgraded to head; one an
older draftdl made (tables but no ``alembic_version``) is first brought to the baseline by the
hand-written migrator (db/migrate.py), stamped 0001, then upgraded; one at head is left as
it is. Everything happens in one transaction, so a start cut off half-way leaves the schema
as it was and the next start does it all again.

SQLite migrates on a short-lived engine of its own, for two reasons. pysqlite commits DDL
statement by statement unless a transaction is open, so the engine opens one itself
(``BEGIN IMMEDIATE``, which also takes the write lock at once). And foreign keys are off: a
revision that rebuilds ``tasks`` (batch mode: copy, drop, rename) would otherwise empty
``task_files`` through ``ON DELETE CASCADE`` when it drops the old table; the pragma cannot
change inside a transaction, hence the separate engine. PostgreSQL migrates on the service's
async engine through ``run_sync``, under a transaction-scoped advisory lock so that nodes
starting together on one database take turns. (A revision with a multi-statement SQL script
cannot send it through asyncpg's prepared statements: it has to use the driver connection's
``execute``.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, NullPool, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

from draftdl.db.engine import AsyncRunner, Runner, sqlite_file
from draftdl.db.migrate import to_baseline

log = logging.getLogger(__name__)

SCRIPT_LOCATION = "draftdl.db:migrations"
BASELINE_REVISION = "0001"
# pg_advisory_xact_lock's key: b"drftschm" as a signed 64-bit integer.
LOCK_KEY = int.from_bytes(b"drftschm", "big", signed=True)


def alembic_config(conn: Connection | None = None) -> Config:
    """Alembic's configuration without an ini file; ``conn`` is what env.py runs on."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if conn is not None:
        config.attributes["connection"] = conn
    return config


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(conn: Connection) -> tuple[str | None, str | None]:
    """Brings the database to head inside the caller's transaction; returns the revisions
    before and after (``None`` before: fresh; ``"older draftdl"``: made before Alembic)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    config = alembic_config(conn)
    before = current = MigrationContext.configure(conn).get_current_revision()
    if current is None and inspect(conn).has_table("tasks"):
        to_baseline(conn)
        command.stamp(config, BASELINE_REVISION)
        before = "older draftdl"
    command.upgrade(config, "head")
    return before, MigrationContext.configure(conn).get_current_revision()


async def upgrade_database(url: str, runner: Runner) -> None:
    """Brings the database at ``url`` (which ``runner`` serves) to head, off the event loop."""
    started = time.perf_counter()
    if isinstance(runner, AsyncRunner):
        async with runner.engine.begin() as conn:
            before, after = await conn.run_sync(upgrade)
    elif sqlite_file(url) is not None:
        before, after = await asyncio.to_thread(_upgrade_sqlite_file, url)
    else:  # in memory: only the runner's one connection sees it, and it starts empty
        before, after = await runner.write(upgrade)
    if before != after:
        log.info(
            "database: schema %s → %s (%.2fs)",
            before or "empty",
            after,
            time.perf_counter() - started,
        )


def _upgrade_sqlite_file(url: str) -> tuple[str | None, str | None]:
    engine = create_engine(
        make_url(url).set(drivername="sqlite"),
        poolclass=NullPool,
        connect_args={"timeout": 30},
    )
    event.listen(engine, "connect", _connect_for_migration)
    event.listen(engine, "begin", _begin_immediate)
    try:
        with engine.begin() as conn:
            return upgrade(conn)
    finally:
        engine.dispose()


def _connect_for_migration(dbapi_conn: Any, _record: Any) -> None:
    # No implicit transactions from pysqlite: the "begin" listener opens the only one.
    dbapi_conn.isolation_level = None
    dbapi_conn.execute("PRAGMA foreign_keys=OFF")


def _begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")
