"""Rows to states and back, and which file rows a write must include.

Every file remembers the values its row holds (``FileState.saved``, set when the row is read or
written). A write includes a file only when its values differ from those, so a transition or a
progress flush writes the rows that changed and no others, whoever changed them (the monitor, a
retry resetting files, a cancel marking them removed).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, Table

from draftdl.db.tables import Base
from draftdl.model.states import FileStatus, TaskStatus
from draftdl.model.task import FileState, FileTotals, TaskState

TASKS: Table = Base.metadata.tables["tasks"]
FILES: Table = Base.metadata.tables["task_files"]

# A file's columns that change after it is stored, in ``FileState.saved``'s order.
FILE_FIELDS = (
    "status",
    "total_length",
    "completed_length",
    "attempts",
    "error_code",
    "error_message",
    "next_retry_at",
    "url",
    "source_url",
    "gid",
)
TOTALS_FIELDS = (
    "files_total",
    "files_completed",
    "files_failed",
    "files_active",
    "total_size",
    "downloaded_size",
)
# What a listing shows: neither the request (it may be megabytes) nor the webhook.
LIST_COLUMNS = [c for c in TASKS.columns if c.name not in ("request_json", "webhook")]
# A task's row is written only by the holder of its claim (cluster/claims.py): its number.
FENCE = "b_attempt"
FILE_COLUMNS = [
    FILES.c.idx,
    FILES.c.file_name,
    FILES.c.file_path,
    *(FILES.c[n] for n in FILE_FIELDS),
]


def file_values(f: FileState) -> tuple[object, ...]:
    return (
        f.status.value,
        f.total_length,
        f.completed_length,
        f.attempts,
        f.error_code,
        f.error_message,
        f.next_retry_at,
        f.url,
        f.source_url,
        f.gid,
    )


def task_values(task: TaskState) -> dict[str, object]:
    """The columns a transition (or a change by the user) may change."""
    return {
        "status": task.status.value,
        "priority": task.priority,
        "max_download_limit": task.max_download_limit,
        "deadline_dropped": task.deadline_dropped,
        "message": task.message,
        "error_message": task.error_message,
        "draft_path": task.draft_path,
        "progress_percent": task.progress_percent,
        "updated_at": task.updated_at,
        "completed_at": task.completed_at,
        "build_key": task.build_key,
    }


def totals_values(task: TaskState) -> dict[str, object]:
    """The files' counts and sizes as a listing shows them, written with the file rows."""
    t = FileTotals.of(task.files)
    return dict(
        zip(
            TOTALS_FIELDS,
            (t.total, t.completed, t.failed, t.active, t.total_size, t.downloaded),
            strict=True,
        )
    )


def new_task_values(task: TaskState) -> dict[str, object]:
    return {
        "id": task.id,
        "seq": task.seq,
        "request_json": task.request_json,
        "title": task.title or "",
        "webhook": task.webhook,
        "warnings": json.dumps(task.warnings, ensure_ascii=False) if task.warnings else None,
        "created_at": task.created_at,
        **task_values(task),
        **totals_values(task),
    }


class FileWrites:
    """The file rows one write includes (those whose values changed), and the values each
    file is marked with once the write commits: what was written, not what the file holds by
    then (it may have moved on meanwhile, and then the next write includes it again)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []
        self._marks: list[tuple[FileState, tuple[object, ...]]] = []

    def add(
        self, task_id: str, files: Iterable[FileState], *, new: bool = False, attempt: int = 0
    ) -> None:
        """``attempt``: the claim the task's row must carry for a changed row to be written."""
        for f in files:
            values = file_values(f)
            if not new and values == f.saved:
                continue
            row: dict[str, object] = dict(zip(FILE_FIELDS, values, strict=True))
            if new:
                row.update(task_id=task_id, idx=f.idx, file_name=f.file_name, file_path=f.file_path)
            else:
                row.update(b_task=task_id, b_idx=f.idx)
                row[FENCE] = attempt
            self.rows.append(row)
            self._marks.append((f, values))

    def committed(self) -> None:
        for f, values in self._marks:
            f.saved = values


def file_state(row: Row[Any]) -> FileState:
    f = FileState(
        idx=row.idx,
        url=row.url,
        file_name=row.file_name,
        file_path=row.file_path,
        gid=row.gid,
        status=FileStatus(row.status),
        total_length=row.total_length,
        completed_length=row.completed_length,
        attempts=row.attempts,
        error_code=row.error_code,
        error_message=row.error_message,
        next_retry_at=row.next_retry_at,
        source_url=row.source_url,
    )
    f.saved = file_values(f)
    return f


def task_state(row: Row[Any], files: list[FileState] | None = None) -> TaskState:
    """A task from its full row with its files, or from a listing's row (``files`` None):
    then it carries ``totals`` instead of files and no request (``request_json`` is "")."""
    listed = files is None
    return TaskState(
        id=row.id,
        seq=row.seq,
        status=TaskStatus(row.status),
        priority=row.priority,
        request_json="" if listed else row.request_json,
        created_at=row.created_at,
        updated_at=row.updated_at,
        files=[] if files is None else files,
        message=row.message,
        error_message=row.error_message,
        draft_path=row.draft_path,
        completed_at=row.completed_at,
        progress_percent=row.progress_percent,
        max_download_limit=row.max_download_limit,
        deadline_dropped=row.deadline_dropped,
        title=row.title,
        webhook=None if listed else row.webhook,
        warnings=json.loads(row.warnings) if row.warnings else [],
        totals=_totals(row) if listed else None,
        attempt=row.attempt,
        build_key=row.build_key,
    )


def _totals(row: Row[Any]) -> FileTotals:
    return FileTotals(
        row.files_total,
        row.files_completed,
        row.files_failed,
        row.files_active,
        row.total_size,
        row.downloaded_size,
    )
