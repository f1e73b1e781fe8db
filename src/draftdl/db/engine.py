"""Where the database work runs: SQLite in WAL mode by default, any SQLAlchemy URL otherwise.

Every operation is a plain function of a Core ``Connection`` (db/repo.py, db/outbox.py) that a
``Runner`` runs off the event loop in one go. SQLite runs it on the standard ``sqlite3`` driver
in a worker thread: one thread hop per transaction, where aiosqlite makes one per driver call
(cursor, execute, close, commit: five for a one-statement write, about ten times the cost of
the statement). Writes share one thread, so they never wait on each other's locks; reads have
threads of their own (WAL: they never block a write). Other databases (PostgreSQL with
asyncpg) keep their async driver and run the same function through ``run_sync``.
"""

from __future__ import annotations

import asyncio
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, StaticPool, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from draftdl.datadir import make_private_file, narrow

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
READ_THREADS = 2

P = ParamSpec("P")
T = TypeVar("T")
Work = Callable[Concatenate[Connection, P], T]


class Runner(ABC):
    """Runs ``fn(conn, ...)``: ``write`` in a transaction that commits when it returns (and
    rolls back when it raises), ``read`` on a connection of its own."""

    sync_engine: Engine  # for event listeners (the tests count statements)

    @property
    def dialect(self) -> Dialect:
        return self.sync_engine.dialect

    @abstractmethod
    async def write(self, fn: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T: ...

    @abstractmethod
    async def read(self, fn: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T: ...

    @abstractmethod
    async def dispose(self) -> None: ...


class SQLiteRunner(Runner):
    def __init__(self, url: str) -> None:
        sync_url = make_url(url).set(drivername="sqlite")
        memory = sqlite_file(url) is None
        self.sync_engine = create_engine(
            sync_url,
            connect_args={"timeout": 30, "check_same_thread": False},
            # One connection for an in-memory database (each connection would be another).
            **({"poolclass": StaticPool} if memory else {}),
        )
        event.listen(self.sync_engine, "connect", _sqlite_pragmas)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="db-write")
        # An in-memory database has one connection: everything goes through the writer.
        self._reader = self._writer if memory else ThreadPoolExecutor(READ_THREADS, "db-read")

    async def write(self, fn: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        job = functools.partial(self._in_transaction, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._writer, job)

    async def read(self, fn: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        job = functools.partial(self._on_connection, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._reader, job)

    def _in_transaction(self, fn: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        with self.sync_engine.begin() as conn:
            return fn(conn, *args, **kwargs)

    def _on_connection(self, fn: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        with self.sync_engine.connect() as conn:
            return fn(conn, *args, **kwargs)

    async def dispose(self) -> None:
        """Lets the work under way finish (a write handed over is a write made)."""
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)
        self.sync_engine.dispose()


# A transaction of ours runs in one go; one left idle is a node stopped (SIGSTOP, a frozen VM)
# in the middle, and its row locks would hold up the node that takes its tasks over.
IDLE_IN_TRANSACTION_MS = 5000


class AsyncRunner(Runner):
    def __init__(self, url: str) -> None:
        connect_args: dict[str, Any] = {}
        if make_url(url).drivername == "postgresql+asyncpg":
            timeout = str(IDLE_IN_TRANSACTION_MS)
            connect_args["server_settings"] = {"idle_in_transaction_session_timeout": timeout}
        self.engine: AsyncEngine = create_async_engine(
            url, pool_pre_ping=True, connect_args=connect_args
        )
        self.sync_engine = self.engine.sync_engine

    async def write(self, fn: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        async with self.engine.begin() as conn:
            return await conn.run_sync(fn, *args, **kwargs)

    async def read(self, fn: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        async with self.engine.connect() as conn:
            return await conn.run_sync(fn, *args, **kwargs)

    async def dispose(self) -> None:
        await self.engine.dispose()


def make_runner(url: str) -> Runner:
    if make_url(url).get_backend_name() == "sqlite":
        return SQLiteRunner(url)
    return AsyncRunner(url)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL with synchronous=NORMAL: a commit survives the process being killed (kill -9);
    # only a power cut may lose the last ones. (FULL would fsync every transition.)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
    # The title search folds case with Python's rules (SQLite's lower is ASCII only).
    dbapi_conn.create_function("draftdl_lower", 1, _lower, deterministic=True)


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
