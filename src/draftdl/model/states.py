"""Task and file states, and the transitions a task may make."""

from __future__ import annotations

import enum


class TaskStatus(enum.StrEnum):
    PENDING = "pending"
    DOWNLOADING = "downloading"
    PAUSED = "paused"  # held back by the user: bytes kept, no slot taken
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in FINAL


FINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})

_P, _D, _Z, _B = (
    TaskStatus.PENDING,
    TaskStatus.DOWNLOADING,
    TaskStatus.PAUSED,
    TaskStatus.PROCESSING,
)
_C, _F, _X = TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED

ALLOWED: dict[TaskStatus, frozenset[TaskStatus]] = {
    _P: frozenset({_D, _B, _Z, _F, _X}),
    _D: frozenset({_B, _Z, _F, _X}),
    _Z: frozenset({_P, _F, _X}),  # resume puts it back in the queue
    _B: frozenset({_C, _F, _X}),
    _C: frozenset({_P, _B}),  # regenerate: download what is missing, or build again
    _F: frozenset({_P, _B}),  # retry or regenerate
    _X: frozenset({_P}),  # retry
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
