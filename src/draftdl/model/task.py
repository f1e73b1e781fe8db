"""A task and its files as the service holds them in memory while they are live."""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from draftdl.model.states import FileStatus, TaskStatus

_GIDS = random.Random()  # seeded from os.urandom, again in a forked child (no twins)
if hasattr(os, "register_at_fork"):  # (not on Windows, which does not fork)
    os.register_at_fork(after_in_child=_GIDS.seed)


def new_gid() -> str:
    """aria2 gids are 16 hex digits (never all zeros); we pick them so they are saved before
    aria2 sees them. Not secret, only unique: a seeded PRNG, since ``os.urandom`` per file was
    5 % of the server's time with many small files."""
    while not (n := _GIDS.getrandbits(64)):
        pass
    return f"{n:016x}"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


MAX_TITLE = 500  # characters kept of a title: within an index entry on any database


def task_title(request: Any) -> str:
    """The rule group's title as tasks show and search it: "" when absent, at most
    ``MAX_TITLE`` characters, without NUL (PostgreSQL text cannot hold it)."""
    group = request.get("ruleGroup") if isinstance(request, dict) else None
    title = group.get("title") if isinstance(group, dict) else None
    if isinstance(title, int | float) and not isinstance(title, bool):
        title = str(title)
    return title.replace("\x00", "")[:MAX_TITLE] if isinstance(title, str) else ""


MASK = "***"
SECRET_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization"})


@dataclass(frozen=True)
class RequestOptions:
    """How aria2 fetches one file, worked out by ``tasks/options.py``: headers beyond our own
    marker, a proxy (its credentials apart) and a per-file speed cap. Never printed whole:
    the repr masks secret header values and the proxy password."""

    headers: tuple[tuple[str, str], ...] = ()
    proxy: str | None = None  # without credentials
    proxy_user: str | None = None
    proxy_password: str | None = None
    max_download_limit: str | None = None
    url: str = field(default="", compare=False)  # what they were worked out for

    def header_lines(self) -> tuple[str, ...]:
        return tuple(f"{name}: {value}" for name, value in self.headers)

    def masked_headers(self) -> dict[str, str]:
        return {n: MASK if n.lower() in SECRET_HEADERS else v for n, v in self.headers}

    def __repr__(self) -> str:
        secret = MASK if self.proxy_password is not None else None
        return (
            f"RequestOptions(headers={self.masked_headers()!r}, proxy={self.proxy!r}, "
            f"proxy_user={self.proxy_user!r}, proxy_password={secret!r}, "
            f"max_download_limit={self.max_download_limit!r})"
        )


@dataclass
class FileState:
    idx: int
    url: str
    file_name: str
    file_path: str
    gid: str
    status: FileStatus = FileStatus.WAITING
    total_length: int = 0
    completed_length: int = 0
    download_speed: int = 0
    attempts: int = 0  # times draftdl asked aria2 for it (a retry is one more)
    error_code: int | None = None
    error_message: str | None = None  # the last error, also while a retry waits
    next_retry_at: datetime | None = None  # a transient failure's retry is due then
    source_url: str | None = None  # the job's URL when a retry replaced it (url is the new)
    # Not stored: the status read after which aria2 must hold this file (None: not handed
    # over yet, -1: handed to an earlier aria2c). Absent from a later read means aria2 lost it.
    handed_at: int | None = None
    handovers: int = 0  # not stored: times aria2 lost it and it was handed over again
    retiring: str | None = None  # not stored: the gid of the failed try, until aria2 drops it
    # Not stored: (monotonic time, bytes) since which the transfer must reach the speed floor.
    stall_mark: tuple[float, int] | None = None
    # Not stored: worked out from the stored request and the download rules (None: not yet).
    options: RequestOptions | None = field(default=None, repr=False, compare=False)
    # Not stored: the row's values as last written or read (db/rows.py); None: unknown, so
    # the next write of the task's files includes it. Copied with the file, like the rest.
    saved: tuple[object, ...] | None = field(default=None, repr=False, compare=False)

    @property
    def done(self) -> bool:
        return self.status is FileStatus.COMPLETE

    def view(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "file_path": self.file_path,
            "file_name": self.file_name,
            "gid": self.gid,
            "status": self.status.value,
            "total_length": self.total_length,
            "completed_length": self.completed_length,
            "download_speed": self.download_speed,
            "attempts": self.attempts,
            "next_retry_at": _iso(self.next_retry_at),
            "error_code": self.error_code,
            "error_message": self.error_message,
            "source_url": self.source_url,
        }


@dataclass(frozen=True)
class FileTotals:
    """Counts and sizes of a task's files, when its file rows were not loaded (listings)."""

    total: int = 0
    completed: int = 0
    failed: int = 0
    active: int = 0
    total_size: int = 0
    downloaded: int = 0

    @classmethod
    def of(cls, files: list[FileState]) -> FileTotals:
        total = completed = failed = active = size = downloaded = 0
        for f in files:
            total += 1
            if f.status is FileStatus.COMPLETE:
                completed += 1
            elif f.status is FileStatus.ERROR:
                failed += 1
            elif f.status is FileStatus.ACTIVE:
                active += 1
            size += f.total_length
            downloaded += f.completed_length
        return cls(total, completed, failed, active, size, downloaded)


@dataclass
class TaskState:
    id: str
    seq: int
    status: TaskStatus
    priority: int
    request_json: str
    created_at: datetime
    updated_at: datetime
    files: list[FileState] = field(default_factory=list)
    message: str | None = None
    error_message: str | None = None
    draft_path: str | None = None
    completed_at: datetime | None = None
    progress_percent: float = 0.0
    max_download_limit: str | None = None
    totals: FileTotals | None = None
    deadline: float | None = None  # seconds after created_at (the job's ``deadline``)
    build_key: str | None = None  # stored: a regenerate's own draft folder key
    deadline_dropped: bool = False  # retried or regenerated: the job's deadline is over
    title: str | None = None  # stored; None when not given: taken from the request
    webhook: str | None = None  # stored: the job's webhook target as JSON (webhooks/spec.py)
    warnings: list[str] = field(default_factory=list)  # stored: what the draft does not use
    attempt: int = 0  # stored: the claim's number (cluster/claims.py); every write matches it

    def __post_init__(self) -> None:
        if self.title is None:
            self.title = task_title(self.request)

    @property
    def deadline_at(self) -> datetime | None:
        if self.deadline is None:
            return None
        return self.created_at + timedelta(seconds=self.deadline)

    @property
    def request(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.request_json)
        return data

    def file_map(self) -> dict[str, str]:
        """The job's URL → local file, kept beside the request so a draft can be rebuilt
        later (a replaced link maps from the URL the job names)."""
        return {f.source_url or f.url: f.file_path for f in self.files}

    def progress(self) -> dict[str, Any]:
        """DownloadProgressInfo; the percent never goes backwards (it is clamped and kept)."""
        if self.totals is not None:
            return self._summary(self.totals)
        # One pass: a view or event of a 1,000-file task is read many times a second.
        total_files = len(self.files)
        completed = failed = active = total_size = downloaded = speed = 0
        fractions = 0.0
        sizes_known = True
        for f in self.files:
            status, length, got = f.status, f.total_length, f.completed_length
            total_size += length
            downloaded += got
            if length <= 0:
                sizes_known = False
            if status is FileStatus.COMPLETE:
                completed += 1
                fractions += 1.0
                continue
            if status is FileStatus.ACTIVE:
                active += 1
                speed += f.download_speed
            elif status is FileStatus.ERROR:
                failed += 1
            if length:
                fractions += got / length
        if total_files == 0:
            percent = 100.0 if self.status in (TaskStatus.PROCESSING, TaskStatus.COMPLETED) else 0.0
        elif sizes_known and total_size > 0:
            percent = 100.0 * downloaded / total_size
        else:
            percent = 100.0 * fractions / total_files
        if completed < total_files:
            percent = min(percent, 99.99)
        percent = max(round(percent, 2), self.progress_percent)
        self.progress_percent = percent
        eta: float | None = None
        if sizes_known and speed > 0:
            eta = round(max(total_size - downloaded, 0) / speed, 1)
        elif completed == total_files:
            eta = 0.0
        return {
            "total_files": total_files,
            "completed_files": completed,
            "failed_files": failed,
            "active_files": active,
            "total_size": total_size,
            "downloaded_size": downloaded,
            "progress_percent": percent,
            "download_speed": speed,
            "eta_seconds": eta,
        }

    def event(self, files_limit: int = 0) -> dict[str, Any]:
        """What a pushed event carries; the files only for tasks small enough to send often."""
        out: dict[str, Any] = {
            "status": self.status.value,
            "priority": self.priority,
            "max_download_limit": self.max_download_limit,
            "message": self.message,
            "progress": self.progress(),
            "draft_path": self.draft_path,
            "error_message": self.error_message,
            "updated_at": _iso(self.updated_at),
        }
        if 0 < len(self.files) <= files_limit:
            out["files"] = [f.view() for f in self.files]
        return out

    def _summary(self, t: FileTotals) -> dict[str, Any]:
        return {
            "total_files": t.total,
            "completed_files": t.completed,
            "failed_files": t.failed,
            "active_files": t.active,
            "total_size": t.total_size,
            "downloaded_size": t.downloaded,
            "progress_percent": self.progress_percent,
            "download_speed": 0,
            "eta_seconds": 0.0 if t.completed == t.total else None,
        }

    def view(self, with_files: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task_id": self.id,
            "title": self.title or "",
            "warnings": list(self.warnings),
            "status": self.status.value,
            "priority": self.priority,
            "max_download_limit": self.max_download_limit,
            "message": self.message,
            "progress": self.progress(),
            "draft_path": self.draft_path,
            "error_message": self.error_message,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "completed_at": _iso(self.completed_at),
        }
        if with_files:
            out["files"] = [f.view() for f in self.files]
        return out


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.replace(tzinfo=UTC).isoformat()
