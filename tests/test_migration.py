"""Schema migrations at start (db/schema.py). A database made by an older draftdl: the service
starts on it, adds the columns it lacks (with their defaults and indexes, the status filter's
among them), fills the old tasks' titles and file totals, and new tasks work. Alembic: a fresh
database ends at head, a second start changes nothing, an old database ends with the same
schema as a fresh one and keeps its rows, a revision that fails leaves the database as it was,
and two starts at once on one fresh database both succeed. SQLite always; PostgreSQL when its
server and asyncpg are on the machine."""

from __future__ import annotations

import asyncio
import shutil
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, MetaData, event, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from draftdl.db import migrations, schema
from draftdl.db.engine import sqlite_file
from draftdl.db.repo import Database
from draftdl.db.tables import Base
from fileserver import FileServer
from old_schema import OLD, insert_task
from postgres import postgres_server
from servers import job, make_settings, running_service


async def make_old_database(url: str, downloads: Path, fileserver: FileServer) -> None:
    """Three tasks of 0.1.0: a completed one with a title, one without, one still pending."""
    downloads.mkdir(parents=True, exist_ok=True)

    def old_file(url: str, complete: bool = False) -> dict[str, Any]:
        name = url.rsplit("/", 1)[1]
        size = 2048 if complete else 0
        return {
            "url": url,
            "file_name": name,
            "file_path": str(downloads / name.removesuffix(".bin") / name),
            "status": "complete" if complete else "waiting",
            "total_length": size,
            "completed_length": size,
        }

    url_done = fileserver.url("/size/2K/old-done.bin")
    url_pending = fileserver.url("/size/3K/old-pending.bin")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(OLD.create_all)

            def fill(sync: Any) -> None:
                done = job([url_done], title="Old Ünïcode")
                insert_task(sync, "old-done", 1, "completed", done, [old_file(url_done, True)])
                untitled = job([])
                del untitled["ruleGroup"]["title"]
                insert_task(sync, "old-untitled", 2, "failed", untitled)
                later = job([url_pending], title="Later")
                insert_task(sync, "old-pending", 3, "pending", later, [old_file(url_pending)])

            await conn.run_sync(fill)
    finally:
        await engine.dispose()


async def columns_of(url: str) -> dict[str, set[str]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:

            def read(sync: Any) -> dict[str, set[str]]:
                found = inspect(sync)
                return {
                    t: {c["name"] for c in found.get_columns(t)}
                    | {f"index:{i['name']}" for i in found.get_indexes(t)}
                    for t in found.get_table_names()
                }

            return await conn.run_sync(read)
    finally:
        await engine.dispose()


async def index_columns(url: str, table: str) -> dict[str, list[str | None]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:

            def read(sync: Any) -> dict[str, list[str | None]]:
                return {i["name"]: i["column_names"] for i in inspect(sync).get_indexes(table)}

            return await conn.run_sync(read)
    finally:
        await engine.dispose()


async def check_the_service_on_an_old_database(
    data_dir: Path, fileserver: FileServer, database_url: str | None = None
) -> None:
    settings = make_settings(data_dir, database_url=database_url)
    url = settings.db_url
    await make_old_database(url, settings.downloads_dir.resolve(), fileserver)
    old = await columns_of(url)
    assert "title" not in old["tasks"] and "source_url" not in old["task_files"]

    async with running_service(settings) as svc:
        listing = (await svc.http.get("/api/tasks")).json()
        assert [(t["task_id"], t["title"]) for t in listing["tasks"]] == [
            ("old-pending", "Later"),
            ("old-untitled", ""),
            ("old-done", "Old Ünïcode"),
        ]
        # The file totals a listing shows were filled in from the old file rows.
        progress = {t["task_id"]: t["progress"] for t in listing["tasks"]}
        assert {k: progress["old-done"][k] for k in ("total_files", "completed_files")} == {
            "total_files": 1,
            "completed_files": 1,
        }
        assert (progress["old-done"]["total_size"], progress["old-done"]["downloaded_size"]) == (
            2048,
            2048,
        )
        assert progress["old-untitled"]["total_files"] == 0
        done_only = (await svc.http.get("/api/tasks", params={"status": "completed"})).json()
        assert [t["task_id"] for t in done_only["tasks"]] == ["old-done"]
        found = (await svc.http.get("/api/tasks", params={"q": "ünï"})).json()
        assert [t["task_id"] for t in found["tasks"]] == ["old-done"]
        done = await svc.task("old-done")
        assert done["status"] == "completed" and done["files"][0]["status"] == "complete"
        # The old pending task is taken up and downloads; a new one works beside it.
        recovered = await svc.wait_final("old-pending")
        assert recovered["status"] == "completed", recovered
        new_id = await svc.submit(job([fileserver.url("/size/1K/new.bin")], title="New one"))
        new = await svc.wait_final(new_id)
        assert new["status"] == "completed" and new["title"] == "New one"
        assert (await svc.http.get("/api/tasks", params={"q": "new"})).json()["total"] == 1

    now = await columns_of(url)
    # The status filter's index; the old one on status alone is gone (revision 0002).
    indexes = await index_columns(url, "tasks")
    assert indexes["ix_tasks_status_seq"] == ["status", "seq"]
    assert "ix_tasks_status" not in indexes
    for table in Base.metadata.sorted_tables:
        assert {c.name for c in table.columns} <= now[table.name]
        assert {f"index:{i.name}" for i in table.indexes} <= now[table.name]
    # A second start finds nothing to add.
    db = Database(url)
    try:
        await db.init()
    finally:
        await db.close()
    assert await columns_of(url) == now


async def test_sqlite_database_of_an_older_version(data_dir: Path, fileserver: FileServer) -> None:
    await check_the_service_on_an_old_database(data_dir, fileserver)


async def test_a_migration_cut_off_leaves_the_old_schema(
    data_dir: Path, fileserver: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The columns and their backfill commit together: a failed backfill adds nothing."""
    from draftdl.db import migrate

    settings = make_settings(data_dir)
    await make_old_database(settings.db_url, settings.downloads_dir.resolve(), fileserver)

    def broken(conn: Any) -> int:
        raise RuntimeError("cut off")

    monkeypatch.setitem(migrate.BACKFILLS, "tasks.title", broken)
    db = Database(settings.db_url)
    try:
        with pytest.raises(RuntimeError, match="cut off"):
            await db.init()
    finally:
        await db.close()
    columns = await columns_of(settings.db_url)
    assert "title" not in columns["tasks"] and "source_url" not in columns["task_files"]
    monkeypatch.undo()
    db = Database(settings.db_url)
    try:
        await db.init()
        listing, _ = await db.list_tasks(None, 10, 0)
    finally:
        await db.close()
    assert {t.id: t.title for t in listing}["old-done"] == "Old Ünïcode"


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
async def postgres_url(tmp_path: Path) -> AsyncIterator[str]:
    with postgres_server(tmp_path / "postgres") as url:
        await asyncio.sleep(0)
        yield url


async def test_postgresql_database_of_an_older_version(
    data_dir: Path, fileserver: FileServer, postgres_url: str
) -> None:
    await check_the_service_on_an_old_database(data_dir, fileserver, postgres_url)


# -- Alembic: fresh, old and failing databases, on SQLite and PostgreSQL ------------------------

T = TypeVar("T")
HEAD = "0003"
DDL_OR_WRITE = ("CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE")


class Databases:
    """Empty databases of one kind, made on demand: SQLite files, or databases in a throwaway
    PostgreSQL cluster."""

    def __init__(self, tmp_path: Path, postgres_url: str | None) -> None:
        self.tmp_path = tmp_path
        self.postgres_url = postgres_url

    @property
    def kind(self) -> str:
        return "sqlite" if self.postgres_url is None else "postgresql"

    async def new(self, name: str) -> str:
        if self.postgres_url is None:
            return f"sqlite+aiosqlite:///{self.tmp_path / name}.db"
        engine = create_async_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql(f"CREATE DATABASE {name}")
        finally:
            await engine.dispose()
        return self.postgres_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
async def databases(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Databases]:
    if request.param == "sqlite":
        yield Databases(tmp_path, None)
        return
    with postgres_server(tmp_path / "postgres") as url:
        yield Databases(tmp_path, url)


async def on_connection(url: str, fn: Callable[[Connection], T]) -> T:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


async def start(url: str) -> None:
    """What the service does with its database at start, and no more."""
    db = Database(url)
    try:
        await db.init()
    finally:
        await db.close()


async def revisions(url: str) -> list[str]:
    def read(conn: Connection) -> list[str]:
        if not inspect(conn).has_table("alembic_version"):
            return []
        return list(conn.scalars(text("SELECT version_num FROM alembic_version")))

    return await on_connection(url, read)


async def count_rows(url: str, table: str) -> int:
    return await on_connection(url, lambda conn: conn.scalar(text(f"SELECT count(*) FROM {table}")))


async def reflect(url: str) -> MetaData:
    """The database's tables as they are, without Alembic's own."""
    found = MetaData()
    await on_connection(url, found.reflect)
    found.remove(found.tables["alembic_version"])
    for name in [n for n in found.tables if n.startswith("pgqueuer")]:
        found.remove(found.tables[name])  # the queue's own (cluster/jobs.py)
    return found


async def differences(url: str, target: MetaData) -> list[Any]:
    """What Alembic's autogenerate would change to make the database at ``url`` match
    ``target``: tables, columns (types, nullability), indexes, keys."""

    def compare(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn, opts={"include_name": lambda name, *_: not str(name).startswith("pgqueuer")}
        )
        return list(compare_metadata(context, target))

    return await on_connection(url, compare)


def is_float_vs_double(diff: Any) -> bool:
    """0.1.0 made ``tasks.progress_percent`` FLOAT, today's tables DOUBLE: SQLite reflects
    the two names apart but stores both as REAL (PostgreSQL: both double precision)."""
    return (
        isinstance(diff, list)
        and len(diff) == 1
        and diff[0][0] == "modify_type"
        and diff[0][2:4] == ("tasks", "progress_percent")
    )


class StatementLog:
    """Every statement any engine runs while it is installed (the migration engine is made
    and disposed of inside ``Database.init``, so the listener goes on the Engine class)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __enter__(self) -> StatementLog:
        event.listen(Engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(Engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        self.statements.append(" ".join(sql.split()))

    def changes(self) -> list[str]:
        return [s for s in self.statements if s.upper().startswith(DDL_OR_WRITE)]


def with_revision_0004(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, upgrade: str) -> None:
    """Migrations from a copy of the package's scripts plus a revision 0004 whose
    ``upgrade()`` body is ``upgrade`` (the injection point: ``schema.SCRIPT_LOCATION``)."""
    scripts = tmp_path / "migrations"
    shutil.copytree(
        Path(migrations.__file__).parent, scripts, ignore=shutil.ignore_patterns("__pycache__")
    )
    (scripts / "versions" / "0004_test.py").write_text(
        '"""A revision only the tests have."""\n\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        'revision = "0004"\ndown_revision = "0003"\n\n\n'
        "def upgrade() -> None:\n" + textwrap.indent(textwrap.dedent(upgrade).strip(), "    ")
    )
    monkeypatch.setattr(schema, "SCRIPT_LOCATION", str(scripts))


async def test_a_fresh_database_ends_at_head_and_a_second_start_changes_nothing(
    databases: Databases,
) -> None:
    url = await databases.new("fresh")
    await start(url)
    assert await revisions(url) == [schema.head()] == [HEAD]
    # Exactly the tables the service declares: the revisions and tables.py agree.
    assert await differences(url, Base.metadata) == []
    # (pgqueuer's tables are a cluster node's: one process on PostgreSQL needs none)
    assert not await on_connection(url, lambda c: inspect(c).has_table("pgqueuer"))
    if databases.kind == "sqlite":
        path = sqlite_file(url)
        assert path is not None and path.stat().st_mode & 0o777 == 0o600
    with StatementLog() as log:
        await start(url)
    assert log.statements  # it did look
    assert log.changes() == []
    assert await revisions(url) == [HEAD]


async def test_an_old_database_ends_like_a_fresh_one_and_keeps_its_rows(
    databases: Databases, fileserver: FileServer, tmp_path: Path
) -> None:
    fresh, old = await databases.new("fresh"), await databases.new("old")
    await start(fresh)
    await make_old_database(old, tmp_path / "downloads", fileserver)
    assert "ix_tasks_status" in await index_columns(old, "tasks")
    assert (await count_rows(old, "tasks"), await count_rows(old, "task_files")) == (3, 2)
    await start(old)
    assert await revisions(old) == [HEAD]
    assert (await count_rows(old, "tasks"), await count_rows(old, "task_files")) == (3, 2)
    found = await differences(old, await reflect(fresh))
    if databases.kind == "sqlite":
        assert [d for d in found if not is_float_vs_double(d)] == []
        assert len(found) == 1
    else:
        assert found == []


async def test_a_revision_that_rebuilds_tasks_keeps_the_file_rows(
    databases: Databases, fileserver: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite alters a column by copying the table and dropping the old one; with foreign
    keys on, that drop would empty task_files through ON DELETE CASCADE."""
    url = await databases.new("old")
    await make_old_database(url, tmp_path / "downloads", fileserver)
    with_revision_0004(
        tmp_path,
        monkeypatch,
        """
        with op.batch_alter_table("tasks") as batch:
            batch.alter_column(
                "max_download_limit", existing_type=sa.String(32), type_=sa.String(48)
            )
        """,
    )
    await start(url)
    assert await revisions(url) == ["0004"]
    assert (await count_rows(url, "tasks"), await count_rows(url, "task_files")) == (3, 2)
    if databases.kind == "sqlite":
        assert (
            await on_connection(url, lambda c: c.exec_driver_sql("PRAGMA foreign_key_check").all())
            == []
        )


@pytest.mark.parametrize("made_by", ["an older draftdl", "nothing"])
async def test_a_revision_that_fails_leaves_the_database_as_it_was(
    databases: Databases,
    fileserver: FileServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    made_by: str,
) -> None:
    url = await databases.new("db")
    if made_by == "an older draftdl":
        await make_old_database(url, tmp_path / "downloads", fileserver)
    before = await columns_of(url)
    with_revision_0004(
        tmp_path,
        monkeypatch,
        """
        with op.batch_alter_table("tasks") as batch:
            batch.add_column(sa.Column("doomed", sa.Integer(), nullable=True))
        op.create_table("doomed", sa.Column("id", sa.Integer(), primary_key=True))
        op.execute("SELECT no_such_column FROM tasks")
        """,
    )
    with pytest.raises(DBAPIError, match="no_such_column"):
        await start(url)
    assert await columns_of(url) == before
    monkeypatch.undo()
    await start(url)
    assert await revisions(url) == [HEAD]


async def test_two_starts_at_once_on_one_fresh_database_both_succeed(
    databases: Databases,
) -> None:
    """Two nodes sharing one database, started together (PostgreSQL: an advisory lock makes
    them take turns; SQLite: BEGIN IMMEDIATE). Without the lock PostgreSQL's two
    transactions can wait on each other's catalog rows for good, hence the deadline."""
    url = await databases.new("shared")
    async with asyncio.timeout(30):
        await asyncio.gather(start(url), start(url))
    assert await revisions(url) == [HEAD]
    assert await differences(url, Base.metadata) == []
