"""aria2's answers, parsed once at the boundary."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from draftdl.model.states import FileStatus

RUNNING_STATE = {
    "active": FileStatus.ACTIVE,
    "waiting": FileStatus.WAITING,
    "paused": FileStatus.PAUSED,
}

# Only the fields the monitor needs, per list: aria2 serialises every key it is asked for.
# tellActive answers only active downloads (its status is implied), a waiting one moves no
# bytes, and only a stopped one has an error.
ACTIVE_KEYS: tuple[str, ...] = ("gid", "totalLength", "completedLength", "downloadSpeed")
WAITING_KEYS: tuple[str, ...] = ("gid", "status", "totalLength", "completedLength")
STOPPED_KEYS: tuple[str, ...] = (
    "gid",
    "status",
    "totalLength",
    "completedLength",
    "errorCode",
    "errorMessage",
)
# How many stopped results our own aria2c keeps (its max-download-result): a read of that
# many sees every one of them.
MAX_DOWNLOAD_RESULT = 10000


RUNNING = frozenset({"active", "waiting", "paused"})
ENDED = frozenset({"complete", "error", "removed"})
DONE_EVENTS = frozenset({"aria2.onDownloadComplete", "aria2.onBtDownloadComplete"})
STOP_EVENTS = frozenset({"aria2.onDownloadError", "aria2.onDownloadStop"})


class Notice(enum.Enum):
    """What one of aria2's notifications tells us (it names only a gid)."""

    DONE = "done"  # finished: the task's last file may be done
    STOPPED = "stopped"  # ended otherwise: worth a read now

    @classmethod
    def of(cls, method: str) -> Notice | None:
        if method in DONE_EVENTS:
            return cls.DONE
        if method in STOP_EVENTS:
            return cls.STOPPED
        return None


@dataclass(frozen=True, slots=True)
class DownloadStatus:
    gid: str
    status: str  # active, waiting, paused, error, complete, removed
    total_length: int
    completed_length: int
    download_speed: int
    error_code: int | None
    error_message: str | None

    @property
    def running(self) -> bool:
        """Held by aria2 and not finished: it may still move bytes."""
        return self.status in RUNNING

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def failed(self) -> bool:
        return self.status == "error"

    @property
    def removed(self) -> bool:
        return self.status == "removed"

    @property
    def file_status(self) -> FileStatus | None:
        """The file state a running download stands for (None once it ended)."""
        return RUNNING_STATE.get(self.status)

    @classmethod
    def parse(cls, raw: dict[str, Any], status: str = "") -> DownloadStatus:
        """``status`` for an entry that does not carry its own (tellActive's)."""
        code = raw.get("errorCode")
        return cls(
            gid=str(raw["gid"]),
            status=str(raw.get("status", status)),
            total_length=int(raw.get("totalLength") or 0),
            completed_length=int(raw.get("completedLength") or 0),
            download_speed=int(raw.get("downloadSpeed") or 0),
            error_code=int(code) if code not in (None, "", "0") else None,
            error_message=raw.get("errorMessage") or None,
        )


class StatusBook:
    """The entries of the last read by gid. An entry equal to the one before is not parsed
    again but answered with the same object, so a reader tells what changed by identity."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[dict[str, Any], DownloadStatus]] = {}

    def read(
        self, lists: Sequence[tuple[Sequence[dict[str, Any]], str]]
    ) -> dict[str, DownloadStatus]:
        """Each list of entries with the status its entries imply (tellActive: "active")."""
        last = self._last
        seen: dict[str, tuple[dict[str, Any], DownloadStatus]] = {}
        for entries, implied in lists:
            for raw in entries:
                known = last.get(raw["gid"])
                if known is not None and known[0] == raw:
                    seen[raw["gid"]] = known
                else:
                    st = DownloadStatus.parse(raw, implied)
                    seen[st.gid] = (raw, st)
        self._last = seen
        return {gid: st for gid, (_, st) in seen.items()}


# Sent with every request aria2c makes for us, so that our own API can refuse it: a job's URL
# that redirects to the API (which needs no token by default) must not download its answers.
FETCH_MARKER = ("X-Draftdl-Fetch", "aria2c")


@dataclass(frozen=True, slots=True)
class AddRequest:
    """One file to hand to aria2: we choose the gid so it is saved before aria2 knows it."""

    gid: str
    url: str
    dir: str
    out: str
    max_download_limit: str | None = None
    proxy: str | None = None
    proxy_user: str | None = None
    proxy_passwd: str | None = field(default=None, repr=False)  # None: "-" (the guard's)
    headers: tuple[str, ...] = field(default=(), repr=False)  # may carry cookies
    paused: bool = False  # added held (its task is paused), to go on when unpaused

    def options(self) -> dict[str, str | list[str]]:
        opts: dict[str, str | list[str]] = {"gid": self.gid, "dir": self.dir, "out": self.out}
        if self.max_download_limit:
            opts["max-download-limit"] = self.max_download_limit
        if self.proxy:
            opts["all-proxy"] = self.proxy
        if self.proxy_user is not None:
            opts["all-proxy-user"] = self.proxy_user
            opts["all-proxy-passwd"] = "-" if self.proxy_passwd is None else self.proxy_passwd
        if self.headers:
            opts["header"] = list(self.headers)
        if self.paused:
            opts["pause"] = "true"
        return opts


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a download failed, worded for a person, and whether trying again may help."""

    text: str
    transient: bool


# aria2's error codes (aria2c(1) "EXIT STATUS"). aria2 folds many HTTP statuses into 22 and 29
# (it answers 29 for 502, 503 and 504 alike), so when its message carries the status, the HTTP
# table below decides instead: a 502 is reported as a 502.
ERROR_CODES: dict[int, Reason] = {
    1: Reason("unknown error", True),
    2: Reason("timed out", True),
    3: Reason("not found (HTTP 404)", False),
    4: Reason("not found (HTTP 404)", False),
    5: Reason("download too slow", True),
    6: Reason("network problem (connection refused, reset or cut)", True),
    7: Reason("unfinished at shutdown", True),
    8: Reason("the server does not support resuming", True),
    9: Reason("not enough disk space", False),
    10: Reason("piece length differs from the control file", False),
    11: Reason("the same file is already being downloaded", False),
    12: Reason("the same torrent is already being downloaded", False),
    13: Reason("the file already exists", False),
    14: Reason("renaming the file failed", False),
    15: Reason("could not open the file", False),
    16: Reason("could not create or truncate the file", False),
    17: Reason("file I/O error", False),
    18: Reason("could not create the directory", False),
    19: Reason("name resolution failed", True),
    20: Reason("could not parse a metalink document", False),
    21: Reason("FTP command failed", True),
    22: Reason("unexpected HTTP response", True),
    23: Reason("too many redirects", False),
    24: Reason("authorization failed (HTTP 401)", True),
    25: Reason("could not parse bencoded data", False),
    26: Reason("the torrent file is corrupted", False),
    27: Reason("bad magnet URI", False),
    28: Reason("bad option or unexpected input", False),
    29: Reason("the server is overloaded or down for maintenance", True),
    30: Reason("could not parse the JSON-RPC request", False),
    31: Reason("reserved (unused)", False),
    32: Reason("checksum validation failed", True),
}

HTTP_STATUS: dict[int, Reason] = {
    400: Reason("bad request", False),
    401: Reason("authorization required", True),  # signed links answer so for a while
    403: Reason("forbidden", True),
    404: Reason("not found", False),
    405: Reason("method not allowed", False),
    408: Reason("the server timed out waiting for the request", True),
    410: Reason("gone", False),
    416: Reason("range not satisfiable", False),
    425: Reason("too early", True),
    429: Reason("too many requests", True),
    500: Reason("internal server error", True),
    501: Reason("not implemented by the server", False),
    502: Reason("bad gateway", True),
    503: Reason("service unavailable", True),
    504: Reason("gateway timeout", True),
}

HTTP_IN_MESSAGE = re.compile(r"status=(\d{3})\b")
REDIRECT_REFUSED = re.compile(r"Redirect to \S+ failed")


def http_status_of(message: str | None) -> int | None:
    match = HTTP_IN_MESSAGE.search(message or "")
    return int(match.group(1)) if match else None


def classify(code: int | None, message: str | None) -> Reason:
    """One place that says why a download failed: the HTTP status when aria2 names one,
    else aria2's error code."""
    if message and REDIRECT_REFUSED.search(message):
        return Reason("the server redirected to something that is not an http(s) URL", False)
    status = http_status_of(message)
    if status is not None:
        known = HTTP_STATUS.get(status)
        if known is None:  # statuses nobody lists: the class decides
            known = Reason("server error" if status >= 500 else "refused", status >= 500)
        return Reason(f"{known.text} (HTTP {status})", known.transient)
    return ERROR_CODES.get(code or 0, Reason("download failed", True))


def describe_error(code: int | None, message: str | None) -> str:
    """A reason a person can act on, keeping aria2's own words after it."""
    reason = classify(code, message).text
    if message:
        return f"{reason}: {message}"
    return reason if code is None else f"{reason} (aria2 error {code})"
