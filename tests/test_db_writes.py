"""What the database layer writes and reads: a write includes only the file rows whose values
changed (one statement per table, counted at the driver), a failed or overtaken write leaves its
rows to the next one, a listing reads the stored totals and walks the status index."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from draftdl.db.repo import Database
from draftdl.db.rows import file_values
from draftdl.errors import TaskNotFound
from draftdl.model.states import FileStatus, TaskStatus
from draftdl.model.task import FileState, TaskState
from fileserver import FileServer
from servers import Service, job

START = datetime(2025, 1, 1, 12, 0, 0)


class Statements:
    """Every statement the driver runs, as ("UPDATE task_files", rows it carries)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self.sql: list[tuple[str, Any]] = []

    def __call__(
        self, conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool
    ) -> None:
        flat = " ".join(sql.split())
        head = flat.split(" SET ")[0].split(" (")[0].split(" WHERE ")[0].strip()
        if head.startswith("SELECT"):
            head = "SELECT " + flat.split(" FROM ")[1].split()[0]
        self.seen.append((head, len(params) if many else 1))
        self.sql.append((sql, params))

    def take(self) -> list[tuple[str, int]]:
        seen, self.seen = self.seen, []
        self.sql = []
        return seen


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'tasks.db'}")
    await database.init()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def statements(db: Database) -> Iterator[Statements]:
    seen = Statements()
    event.listen(db.runner.sync_engine, "before_cursor_execute", seen)
    try:
        yield seen
    finally:
        event.remove(db.runner.sync_engine, "before_cursor_execute", seen)


def make_task(seq: int, files: int = 10, status: TaskStatus = TaskStatus.PENDING) -> TaskState:
    now = START + timedelta(seconds=seq)
    return TaskState(
        id=f"task-{seq:03d}",
        seq=seq,
        status=status,
        priority=0,
        request_json=json.dumps({"ruleGroup": {"title": f"task {seq}"}}),
        created_at=now,
        updated_at=now,
        files=[
            FileState(
                i, f"http://h/{seq}/{i}", f"{i}.bin", f"/d/{seq}/{i}.bin", f"{seq:08x}{i:08x}"
            )
            for i in range(files)
        ],
    )


def rows_of(db_file: Path, task_id: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db_file) as conn:
        return conn.execute(
            "SELECT idx, status, completed_length, gid FROM task_files WHERE task_id = ? "
            "ORDER BY idx",
            (task_id,),
        ).fetchall()


async def test_a_transition_writes_only_the_file_rows_that_changed(
    db: Database, statements: Statements, tmp_path: Path
) -> None:
    task = make_task(1)
    await db.save_task(task)
    assert statements.take() == [("INSERT INTO tasks", 1), ("INSERT INTO task_files", 10)]

    task.status = TaskStatus.DOWNLOADING
    await db.save_transition(task, with_files=True)
    assert statements.take() == [("UPDATE tasks", 1)]  # no file changed: no file row

    task.files[3].completed_length = 512
    task.files[7].status = FileStatus.COMPLETE
    task.files[7].download_speed = 99  # not stored: no reason to write
    task.files[8].download_speed = 99
    task.status = TaskStatus.PROCESSING
    await db.save_transition(task, with_files=True)
    assert statements.take() == [("UPDATE tasks", 1), ("UPDATE task_files", 2)]
    rows = rows_of(tmp_path / "tasks.db", task.id)
    assert rows[3] == (3, "waiting", 512, "0000000100000003")
    assert rows[7] == (7, "complete", 0, "0000000100000007")

    await db.save_transition(task, with_files=False)
    assert statements.take() == [("UPDATE tasks", 1)]


async def test_a_progress_flush_writes_the_changed_rows_of_all_tasks_at_once(
    db: Database, statements: Statements, tmp_path: Path
) -> None:
    tasks = [make_task(seq) for seq in (1, 2, 3)]
    for task in tasks:
        await db.save_task(task)
    statements.take()
    for task in tasks:
        task.files[0].completed_length = 100
        task.files[1].completed_length = 200
    # The monitor names files 0-4 of each; only two of each changed.
    await db.save_progress({t.id: (t, {0, 1, 2, 3, 4}) for t in tasks})
    assert statements.take() == [("UPDATE tasks", 3), ("UPDATE task_files", 6)]
    assert [r[2] for r in rows_of(tmp_path / "tasks.db", "task-002")] == [100, 200] + [0] * 8
    # Saved: the transition that follows has no file row left to write.
    await db.save_transition(tasks[1], with_files=True)
    assert statements.take() == [("UPDATE tasks", 1)]


async def test_a_loaded_task_writes_only_what_changed_after_it_was_read(
    db: Database, statements: Statements, tmp_path: Path
) -> None:
    task = make_task(1, status=TaskStatus.FAILED)
    for f in task.files:
        f.status, f.completed_length = FileStatus.COMPLETE, 64
    task.files[2].status = FileStatus.ERROR
    await db.save_task(task)
    loaded = await db.load_task(task.id)
    assert loaded is not None
    statements.take()
    loaded.files[2].status = FileStatus.WAITING  # a retry: the failed file again
    loaded.files[2].gid = "feedfacefeedface"
    loaded.status = TaskStatus.PENDING
    await db.save_transition(loaded, with_files=True)
    assert statements.take() == [("UPDATE tasks", 1), ("UPDATE task_files", 1)]
    assert rows_of(tmp_path / "tasks.db", task.id)[2] == (2, "waiting", 64, "feedfacefeedface")


async def test_a_failed_write_leaves_its_rows_to_the_next_write(
    db: Database, statements: Statements, tmp_path: Path
) -> None:
    """A real refusal (a trigger aborts the file update): nothing is marked written."""
    task = make_task(1)
    await db.save_task(task)
    db_file = tmp_path / "tasks.db"
    with sqlite3.connect(db_file) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE UPDATE ON task_files "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    task.files[4].completed_length = 44
    with pytest.raises(Exception, match="refused"):
        await db.save_progress({task.id: (task, {4})})
    with sqlite3.connect(db_file) as conn:
        conn.execute("DROP TRIGGER refuse")
    statements.take()
    await db.save_transition(task, with_files=True)
    assert statements.take() == [("UPDATE tasks", 1), ("UPDATE task_files", 1)]
    assert rows_of(db_file, task.id)[4] == (4, "waiting", 44, "0000000100000004")


async def test_a_file_that_moves_while_its_row_is_written_is_written_again(
    db: Database, statements: Statements, tmp_path: Path
) -> None:
    task = make_task(1)
    await db.save_task(task)
    task.files[0].completed_length = 10
    writing = asyncio.ensure_future(db.save_progress({task.id: (task, {0})}))
    await asyncio.sleep(0)  # the write has taken its rows and is on its way
    task.files[0].completed_length = 20
    await writing
    assert rows_of(tmp_path / "tasks.db", task.id)[0][2] == 10
    statements.take()
    await db.save_progress({task.id: (task, {0})})
    assert statements.take() == [("UPDATE tasks", 1), ("UPDATE task_files", 1)]
    assert rows_of(tmp_path / "tasks.db", task.id)[0][2] == 20


async def test_a_listing_reads_the_stored_totals_and_no_file_rows(
    db: Database, statements: Statements
) -> None:
    task = make_task(1, files=4)
    await db.save_task(task)
    task.files[0].status, task.files[0].total_length = FileStatus.COMPLETE, 1000
    task.files[0].completed_length = 1000
    task.files[1].status, task.files[1].total_length = FileStatus.ACTIVE, 3000
    task.files[1].completed_length = 500
    task.files[2].status = FileStatus.ERROR
    task.status, task.progress_percent = TaskStatus.FAILED, 37.5
    await db.save_transition(task, with_files=True)
    statements.take()
    listed, total = await db.list_tasks(TaskStatus.FAILED, 20, 0)
    assert statements.take() == [("SELECT tasks", 1), ("SELECT tasks", 1)]
    assert total == 1 and listed[0].files == [] and listed[0].request_json == ""
    assert listed[0].view(with_files=False)["progress"] == {
        "total_files": 4,
        "completed_files": 1,
        "failed_files": 1,
        "active_files": 1,
        "total_size": 4000,
        "downloaded_size": 1500,
        "progress_percent": 37.5,
        "download_speed": 0,
        "eta_seconds": None,
    }


async def test_several_statuses_are_merged_newest_first_across_pages(db: Database) -> None:
    cycle = [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED]
    for seq in range(1, 31):
        await db.save_task(make_task(seq, files=1, status=cycle[seq % 3]))
    wanted = [s for s in range(30, 0, -1) if cycle[s % 3] is not TaskStatus.COMPLETED]
    pages = []
    for offset in (0, 7, 14):
        listed, total = await db.list_tasks([TaskStatus.FAILED, TaskStatus.CANCELLED], 7, offset)
        assert total == 20
        pages.append([t.seq for t in listed])
    assert pages == [wanted[0:7], wanted[7:14], wanted[14:20]]
    found, total = await db.list_tasks([TaskStatus.CANCELLED, TaskStatus.FAILED], 5, 0, q="TASK 2")
    assert ([t.seq for t in found], total) == ([29, 28, 26, 25, 23], 8)


async def test_the_status_filter_walks_its_index(
    db: Database, statements: Statements, tmp_path: Path
) -> None:
    """SQLite's own plans for the page queries the listing sends: one status is a walk that
    needs no sort; several are one walk each (each stops after a page: only what they
    return is sorted, never every match)."""
    for seq in range(1, 6):
        await db.save_task(make_task(seq, files=1, status=TaskStatus.COMPLETED))

    async def plan_of(statuses: list[TaskStatus]) -> list[str]:
        statements.take()
        await db.list_tasks(statuses, 20, 0)
        sql, params = statements.sql[-1]
        with sqlite3.connect(tmp_path / "tasks.db") as conn:
            return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]

    index = "SEARCH tasks USING INDEX ix_tasks_status_seq (status=?)"
    assert await plan_of([TaskStatus.COMPLETED]) == [index]
    several = await plan_of([TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED])
    assert [p for p in several if p.startswith(("SEARCH", "SCAN tasks"))] == [index] * 3


async def test_a_cancelled_task_s_files_are_marked_as_their_rows_now_are(
    service: Service, fileserver: FileServer
) -> None:
    """A cancel writes copies of the files (marked removed); the live files are marked with
    what those copies wrote, so a later write of them compares with the rows as they are."""
    urls = [fileserver.url("/size/4K/done.bin"), fileserver.url("/slow/8M/slow.bin?rate=1M")]
    task_id = await service.submit(job(urls))
    await service.wait_task(task_id, lambda t: t["files"][0]["status"] == "complete")
    task = await service.services.queue.cancel_task(task_id, keep_files=True)
    stored = await service.services.db.load_task(task_id)
    assert stored is not None
    assert [f.saved for f in task.files] == [file_values(f) for f in stored.files]
    assert [f.status for f in stored.files] == [FileStatus.COMPLETE, FileStatus.REMOVED]


async def test_submits_arriving_together_share_one_transaction(
    db: Database, statements: Statements, tmp_path: Path
) -> None:
    tasks = [make_task(seq, files=3) for seq in range(1, 21)]
    await asyncio.gather(*(db.save_task(t) for t in tasks))
    assert statements.take() == [("INSERT INTO tasks", 20), ("INSERT INTO task_files", 60)]
    for t in tasks:
        assert len(rows_of(tmp_path / "tasks.db", t.id)) == 3
        assert [f.saved for f in t.files] == [file_values(f) for f in t.files]
    await db.save_task(make_task(21, files=1))  # a lone one waits for nothing
    assert statements.take() == [("INSERT INTO tasks", 1), ("INSERT INTO task_files", 1)]


async def test_a_bad_row_in_a_shared_transaction_fails_only_its_own_submit(
    db: Database, statements: Statements, tmp_path: Path
) -> None:
    await db.save_task(make_task(5, files=1))
    statements.take()
    again = make_task(5, files=1)  # the same id: its insert breaks the key
    good = [make_task(6, files=2), make_task(7, files=2)]
    results = await asyncio.gather(
        db.save_task(good[0]), db.save_task(again), db.save_task(good[1]), return_exceptions=True
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], Exception)
    assert "UNIQUE" in str(results[1])
    for t in good:
        assert len(rows_of(tmp_path / "tasks.db", t.id)) == 2
    seen = statements.take()
    assert seen[0] == ("INSERT INTO tasks", 3)  # together first, then each on its own
    assert seen[1:] == [
        ("INSERT INTO tasks", 1),
        ("INSERT INTO task_files", 2),
        ("INSERT INTO tasks", 1),
        ("INSERT INTO tasks", 1),
        ("INSERT INTO task_files", 2),
    ]


def status_of(db_file: Path, task_id: str) -> str | None:
    with sqlite3.connect(db_file) as conn:
        row = conn.execute("SELECT status FROM tasks WHERE id = ?", (task_id,)).fetchone()
    return None if row is None else str(row[0])


async def test_status_changes_arriving_together_share_one_transaction(
    db: Database, statements: Statements, tmp_path: Path
) -> None:
    tasks = [make_task(seq, files=3) for seq in range(1, 11)]
    await asyncio.gather(*(db.save_task(t) for t in tasks))
    commits: list[int] = []
    event.listen(db.runner.sync_engine, "commit", lambda conn: commits.append(1))
    statements.take()
    for t in tasks:
        t.status = TaskStatus.PROCESSING
        t.files[1].status = FileStatus.COMPLETE
    await asyncio.gather(*(db.save_transition(t) for t in tasks))
    assert len(commits) == 1
    assert statements.take() == [("UPDATE tasks", 1)] * 10 + [("UPDATE task_files", 10)]
    for t in tasks:
        assert status_of(tmp_path / "tasks.db", t.id) == "processing"
        assert [r[1] for r in rows_of(tmp_path / "tasks.db", t.id)] == [
            "waiting",
            "complete",
            "waiting",
        ]
    tasks[0].status = TaskStatus.COMPLETED
    await db.save_transition(tasks[0], with_files=False)  # a lone one waits for nothing
    assert len(commits) == 2
    assert statements.take() == [("UPDATE tasks", 1)]


async def test_a_change_of_a_deleted_task_fails_only_its_own_in_a_shared_transaction(
    db: Database, statements: Statements, tmp_path: Path
) -> None:
    tasks = [make_task(seq, files=2) for seq in range(1, 4)]
    await asyncio.gather(*(db.save_task(t) for t in tasks))
    assert await db.delete_task(tasks[1].id)
    statements.take()
    for t in tasks:
        t.status = TaskStatus.CANCELLED
        t.files[0].status = FileStatus.REMOVED
    results = await asyncio.gather(*(db.save_transition(t) for t in tasks), return_exceptions=True)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], TaskNotFound)
    assert statements.take() == [("UPDATE tasks", 1)] * 3 + [("UPDATE task_files", 2)]
    assert [status_of(tmp_path / "tasks.db", t.id) for t in tasks] == [
        "cancelled",
        None,
        "cancelled",
    ]
    assert tasks[0].files[0].saved == file_values(tasks[0].files[0])
    assert tasks[1].files[0].saved != file_values(tasks[1].files[0])  # never written


async def test_a_progress_flush_never_overtakes_a_change_waiting_before_it(
    db: Database, tmp_path: Path
) -> None:
    """A change of task X waits while another task's change is written; a flush of X's newer
    progress, issued after it, commits after it too (else the change's older copy wins)."""
    other, x = make_task(1, files=1), make_task(2, files=2)
    await asyncio.gather(db.save_task(other), db.save_task(x))
    x.files[0].status, x.files[0].total_length, x.files[0].completed_length = (
        FileStatus.ACTIVE,
        100,
        60,
    )
    other.status = TaskStatus.DOWNLOADING
    first = asyncio.create_task(db.save_transition(other))
    for _ in range(3):
        await asyncio.sleep(0)  # its write is on its way to the database
    copy = dataclasses.replace(x, status=TaskStatus.PAUSED)
    copy.files = [dataclasses.replace(f) for f in x.files]
    change = asyncio.create_task(db.save_transition(copy))
    await asyncio.sleep(0)
    x.files[0].status, x.files[0].completed_length = FileStatus.COMPLETE, 100  # moved on
    flush = asyncio.create_task(db.save_progress({x.id: (x, {0})}))
    await asyncio.gather(first, change, flush)
    assert status_of(tmp_path / "tasks.db", x.id) == "paused"
    assert rows_of(tmp_path / "tasks.db", x.id)[0] == (0, "complete", 100, x.files[0].gid)
