"""The async engine: SQLite in WAL mode by default, any SQLAlchemy async URL otherwise."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from draftdl.datadir import make_private_file, narrow

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
            # The title search folds case with Python's rules (SQLite's lower is ASCII only).
            dbapi_conn.create_function("draftdl_lower", 1, _lower, deterministic=True)

        return engine
    return create_async_engine(url, pool_pre_ping=True)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for an in-memory database or another server."""
    parsed = make_url(url)
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return None
    if name.startswith("file:") or parsed.query.get("mode") == "memory":
        return None
    return Path(name)


def _prepare_sqlite_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    make_private_file(path)
    for suffix in SQLITE_SIDE_FILES:
        narrow(path.with_name(path.name + suffix))


async def prepare_database(url: str) -> None:
    """Creates a SQLite file with mode 0600 before SQLite opens it (SQLite gives the -wal and
    -shm it creates the database file's mode) and narrows files an older run left readable."""
    path = sqlite_file(url)
    if path is not None:
        await asyncio.to_thread(_prepare_sqlite_file, path)
