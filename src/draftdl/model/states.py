"""Task and file states, and the transitions a task may make."""

from __future__ import annotations

import enum


class TaskStatus(enum.StrEnum):
    PENDING = "pending"
    DOWNLOADING = "downloading"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in FINAL


FINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})

ALLOWED: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset(
        {TaskStatus.DOWNLOADING, TaskStatus.PROCESSING, TaskStatus.FAILED, TaskStatus.CANCELLED}
    ),
    TaskStatus.DOWNLOADING: frozenset(
        {TaskStatus.PROCESSING, TaskStatus.FAILED, TaskStatus.CANCELLED}
    ),
    TaskStatus.PROCESSING: frozenset(
        {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}
    ),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}


def can_move(src: TaskStatus, dst: TaskStatus) -> bool:
    return dst in ALLOWED[src]


class FileStatus(enum.StrEnum):
    WAITING = "waiting"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETE = "complete"
    ERROR = "error"
    REMOVED = "removed"  # its task ended (cancelled, failed) before it completed
