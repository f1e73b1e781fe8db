"""A database made by an older draftdl: the service starts on it, adds the columns it lacks
(with their defaults and indexes, the status filter's among them), fills the old tasks' titles
and file totals, and new tasks work. SQLite always; PostgreSQL when its server and asyncpg are
on the machine."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from draftdl.db.repo import Database
from draftdl.db.tables import Base
from fileserver import FileServer
from old_schema import OLD, insert_task
from servers import free_port, job, make_settings, running_service


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
    # The status filter's index (the old one on status alone stays; it is harmless).
    assert (await index_columns(url, "tasks"))["ix_tasks_status_seq"] == ["status", "seq"]
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


def postgres_bin() -> Path | None:
    """PostgreSQL's server programs: on PATH, or where Debian puts them."""
    found = shutil.which("pg_ctl")
    if found is not None and shutil.which("initdb") is not None:
        return Path(found).resolve().parent
    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if all((bindir / name).is_file() for name in ("pg_ctl", "initdb", "postgres")):
            return bindir
    return None


@contextlib.contextmanager
def postgres_server(root: Path) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a loopback port (as ``postgres`` when run as root:
    the server refuses root)."""
    bindir = postgres_bin()
    if bindir is None or importlib.util.find_spec("asyncpg") is None:
        pytest.skip("PostgreSQL (pg_ctl, initdb) or asyncpg is not installed")
    root.mkdir(parents=True, exist_ok=True)
    as_user: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: PostgreSQL will not start")
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
        root.chmod(0o700)
        for parent in root.parents:  # the server's user must reach its folder
            if parent == Path(parent.anchor):
                break
            parent.chmod(parent.stat().st_mode | 0o011)
    data, port = root / "pg", free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    run(str(bindir / "initdb"), "-D", str(data), "-U", "draftdl", "--auth=trust", "-E", "UTF8")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start")
    try:
        yield f"postgresql+asyncpg://draftdl@127.0.0.1:{port}/postgres"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")


@pytest.fixture
async def postgres_url(tmp_path: Path) -> AsyncIterator[str]:
    with postgres_server(tmp_path / "postgres") as url:
        await asyncio.sleep(0)
        yield url


async def test_postgresql_database_of_an_older_version(
    data_dir: Path, fileserver: FileServer, postgres_url: str
) -> None:
    await check_the_service_on_an_old_database(data_dir, fileserver, postgres_url)
