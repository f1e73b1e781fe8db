"""The schema at revision 0001, frozen: the tables as ``db/tables.py`` declared them when
Alembic took over. Never change it: it is history (the next change is a new revision).

Two users, so both agree by construction: revision 0001 creates these tables in a fresh
database, and the hand-written migrator (db/migrate.py) brings a database an older draftdl
made up to exactly them before it is stamped 0001. Defaults are dialect-neutral
(``false()``, not SQLite's ``0``, which PostgreSQL refuses for a boolean); the Python-side
defaults are kept because the migrator writes them as the DEFAULT of a column it adds.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

BASELINE = MetaData()

TASKS = Table(
    "tasks",
    BASELINE,
    Column("id", String(36), primary_key=True),
    Column("seq", Integer, nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("max_download_limit", String(32)),
    Column("request_json", Text, nullable=False),
    Column("title", String(500), nullable=False, default="", server_default="", index=True),
    Column("deadline_dropped", Boolean, nullable=False, default=False, server_default=false()),
    Column("webhook", Text),
    Column("warnings", Text),
    Column("message", Text),
    Column("error_message", Text),
    Column("draft_path", Text),
    Column("progress_percent", Double, nullable=False, default=0.0),
    Column("files_total", Integer, nullable=False, default=0, server_default="0"),
    Column("files_completed", Integer, nullable=False, default=0, server_default="0"),
    Column("files_failed", Integer, nullable=False, default=0, server_default="0"),
    Column("files_active", Integer, nullable=False, default=0, server_default="0"),
    Column("total_size", BigInteger, nullable=False, default=0, server_default="0"),
    Column("downloaded_size", BigInteger, nullable=False, default=0, server_default="0"),
    Column("created_at", DateTime, nullable=False, index=True),
    Column("updated_at", DateTime, nullable=False),
    Column("completed_at", DateTime),
    Index("ix_tasks_status_seq", "status", "seq"),
)

FILES = Table(
    "task_files",
    BASELINE,
    Column("task_id", String(36), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("url", Text, nullable=False),
    Column("file_name", Text, nullable=False),
    Column("file_path", Text, nullable=False),
    Column("gid", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("total_length", Integer, nullable=False, default=0),
    Column("completed_length", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error_code", Integer),
    Column("error_message", Text),
    Column("next_retry_at", DateTime),
    Column("source_url", Text),
)

DELIVERIES = Table(
    "webhook_deliveries",
    BASELINE,
    Column("id", String(40), primary_key=True),
    Column("task_id", String(36), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("event", String(16), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("next_attempt_at", DateTime, index=True),
    Column("state", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("delivered_at", DateTime),
)

ATTEMPTS = Table(
    "webhook_attempts",
    BASELINE,
    Column(
        "delivery_id",
        String(40),
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("n", Integer, primary_key=True),
    Column("at", DateTime, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False, default=0),
)
