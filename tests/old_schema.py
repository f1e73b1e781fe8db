"""The tables as draftdl 0.1.0 made them (``src/draftdl/db/tables.py`` at d4c5b84), before
``tasks.title``, ``task_files.next_retry_at`` and ``task_files.source_url``: a database an
older version left, for the migration tests. Never change it: it is history."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
)

OLD = MetaData()

TASKS = Table(
    "tasks",
    OLD,
    Column("id", String(36), primary_key=True),
    Column("seq", Integer, nullable=False, index=True),
    Column("status", String(16), nullable=False, index=True),
    Column("priority", Integer, nullable=False),
    Column("max_download_limit", String(32)),
    Column("request_json", Text, nullable=False),
    Column("message", Text),
    Column("error_message", Text),
    Column("draft_path", Text),
    Column("progress_percent", Float, nullable=False),
    Column("created_at", DateTime, nullable=False, index=True),
    Column("updated_at", DateTime, nullable=False),
    Column("completed_at", DateTime),
)

FILES = Table(
    "task_files",
    OLD,
    Column("task_id", String(36), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("url", Text, nullable=False),
    Column("file_name", Text, nullable=False),
    Column("file_path", Text, nullable=False),
    Column("gid", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("total_length", Integer, nullable=False),
    Column("completed_length", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error_code", Integer),
    Column("error_message", Text),
)


def insert_task(
    conn: Connection,
    task_id: str,
    seq: int,
    status: str,
    request: dict[str, Any],
    files: list[dict[str, Any]] | None = None,
) -> None:
    """A task row as 0.1.0 wrote it (and its file rows: url, file_name, file_path, status)."""
    now = datetime(2024, 5, 1, 12, 0, seq)
    conn.execute(
        insert(TASKS).values(
            id=task_id,
            seq=seq,
            status=status,
            priority=0,
            request_json=json.dumps(request, ensure_ascii=False),
            progress_percent=100.0 if status == "completed" else 0.0,
            created_at=now,
            updated_at=now,
            completed_at=now if status == "completed" else None,
            message=status,
        )
    )
    for idx, f in enumerate(files or []):
        conn.execute(
            insert(FILES).values(
                task_id=task_id,
                idx=idx,
                gid=f"{seq:08x}{idx:08x}",
                total_length=f.get("total_length", 0),
                completed_length=f.get("completed_length", 0),
                attempts=0,
                **{k: f[k] for k in ("url", "file_name", "file_path", "status")},
            )
        )
