"""aria2's answers, parsed once at the boundary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Only the fields the monitor needs: aria2 serialises every key it is asked for.
STATUS_KEYS: tuple[str, ...] = (
    "gid",
    "status",
    "totalLength",
    "completedLength",
    "downloadSpeed",
    "errorCode",
    "errorMessage",
)


@dataclass(frozen=True, slots=True)
class DownloadStatus:
    gid: str
    status: str  # active, waiting, paused, error, complete, removed
    total_length: int
    completed_length: int
    download_speed: int
    error_code: int | None
    error_message: str | None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> DownloadStatus:
        code = raw.get("errorCode")
        return cls(
            gid=str(raw["gid"]),
            status=str(raw.get("status", "")),
            total_length=int(raw.get("totalLength") or 0),
            completed_length=int(raw.get("completedLength") or 0),
            download_speed=int(raw.get("downloadSpeed") or 0),
            error_code=int(code) if code not in (None, "", "0") else None,
            error_message=raw.get("errorMessage") or None,
        )


@dataclass(frozen=True, slots=True)
class AddRequest:
    """One file to hand to aria2: we choose the gid so it is saved before aria2 knows it."""

    gid: str
    url: str
    dir: str
    out: str
    max_download_limit: str | None = None

    def options(self) -> dict[str, str]:
        opts = {"gid": self.gid, "dir": self.dir, "out": self.out}
        if self.max_download_limit:
            opts["max-download-limit"] = self.max_download_limit
        return opts


# aria2's exit/error codes (aria2c(1) "EXIT STATUS"), worded for a person.
ERROR_REASONS: dict[int, str] = {
    1: "unknown error",
    2: "timed out",
    3: "not found (HTTP 404)",
    4: "not found (HTTP 404)",
    5: "download too slow",
    6: "network problem (connection refused, reset or cut)",
    7: "unfinished downloads at shutdown",
    8: "server does not support resuming",
    9: "not enough disk space",
    13: "file already exists",
    15: "could not open the file",
    16: "could not create or truncate the file",
    17: "file I/O error",
    18: "could not create the directory",
    19: "name resolution failed",
    22: "bad HTTP response (unexpected status)",
    23: "too many redirects",
    24: "HTTP authorization failed",
    26: "resource too slow",
    28: "bad request",
    29: "server overloaded (HTTP 503)",
}


def describe_error(code: int | None, message: str | None) -> str:
    """A reason a person can act on, keeping aria2's own words (they carry the HTTP status)."""
    reason = ERROR_REASONS.get(code or 0, "download failed")
    if message:
        return f"{reason}: {message}"
    return reason if code is None else f"{reason} (aria2 error {code})"
