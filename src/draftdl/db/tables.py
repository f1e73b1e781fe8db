"""Tables: one row per task (the request as received), one per file to download, and the
webhook outbox (one row per delivery, one per attempt). Read and written with Core statements
(db/repo.py), never through the ORM's unit of work: the classes only declare the schema."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from draftdl.model.task import MAX_TITLE


class Base(DeclarativeBase):
    pass


class TaskRow(Base):
    __tablename__ = "tasks"
    # The status filter walks this in list order and stops after a page (an older database's
    # ix_tasks_status, which this one makes redundant, is dropped by migration 0002).
    __table_args__ = (Index("ix_tasks_status_seq", "status", "seq"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    max_download_limit: Mapped[str | None] = mapped_column(String(32), default=None)
    request_json: Mapped[str] = mapped_column(Text)
    # The rule group's title, for listing and search (``q``); old rows get it at migration.
    title: Mapped[str] = mapped_column(String(MAX_TITLE), default="", server_default="", index=True)
    # A retried or regenerated task: the job's deadline (from the first submit) is over.
    deadline_dropped: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The job's own webhook, checked at submit ({"url", "events"} as JSON); None: none.
    webhook: Mapped[str | None] = mapped_column(Text, default=None)
    # What the draft does not use (tasks/unused.py), a JSON list; None: nothing.
    warnings: Mapped[str | None] = mapped_column(Text, default=None)
    message: Mapped[str | None] = mapped_column(Text, default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    draft_path: Mapped[str | None] = mapped_column(Text, default=None)
    progress_percent: Mapped[float] = mapped_column(default=0.0)
    # The files' counts and sizes (FileTotals), written with the file rows: a listing reads
    # them here instead of adding up the rows of every task on the page.
    files_total: Mapped[int] = mapped_column(default=0, server_default="0")
    files_completed: Mapped[int] = mapped_column(default=0, server_default="0")
    files_failed: Mapped[int] = mapped_column(default=0, server_default="0")
    files_active: Mapped[int] = mapped_column(default=0, server_default="0")
    total_size: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    downloaded_size: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    # More than one node (cluster/): the worker that holds the task, the claim's number (every
    # write of the task's state matches it: a node that lost its claim writes nothing) and
    # when the claim runs out unless its holder renews it (the database's clock).
    owner: Mapped[str | None] = mapped_column(String(64), default=None)
    attempt: Mapped[int] = mapped_column(default=0, server_default="0")
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # A regenerate's own draft folder key (None: the task's default one).
    build_key: Mapped[str | None] = mapped_column(String(32), default=None)


class NodeRow(Base):
    """A node of a cluster, by its ``node_name``: two live processes never share a name."""

    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    # Kept in the node's data folder: the same token is the same node, started again.
    token: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ControlRequestRow(Base):
    """A control of a task that another node holds, and that node's answer
    (cluster/control.py): the truth behind the NOTIFY that wakes it."""

    __tablename__ = "control_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(36))
    node: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(16))
    args: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    answer: Mapped[str | None] = mapped_column(Text, default=None)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class ClusterSettingRow(Base):
    """A setting changed at run time for every node of a cluster (the global speed cap)."""

    __tablename__ = "cluster_settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class FileRow(Base):
    __tablename__ = "task_files"

    task_id: Mapped[str] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    file_name: Mapped[str] = mapped_column(Text)
    file_path: Mapped[str] = mapped_column(Text)
    gid: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    total_length: Mapped[int] = mapped_column(default=0)
    completed_length: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    error_code: Mapped[int | None] = mapped_column(default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    next_retry_at: Mapped[datetime | None] = mapped_column(default=None)
    source_url: Mapped[str | None] = mapped_column(Text, default=None)


class DeliveryRow(Base):
    """Not tied to the task row: a delivery outlives the task it tells of (a delete)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(36), index=True)
    url: Mapped[str] = mapped_column(Text)
    event: Mapped[str] = mapped_column(String(16))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_status: Mapped[int | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


class AttemptRow(Base):
    __tablename__ = "webhook_attempts"

    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), primary_key=True
    )
    n: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    duration_ms: Mapped[int] = mapped_column(default=0)
