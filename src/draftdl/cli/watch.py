"""Following a task until it ends: rich bars on a terminal, plain lines elsewhere.

Every figure shown is the server's (bytes, speed, ETA, percent), never an estimate made
here: a watch that joins a running task shows its speed at once, and a finished task shows
no speed left over from its last second. Sizes and speeds come in one family of units
(KiB, MiB, GiB) in both modes.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from draftdl.cli.client import ApiClient
from draftdl.cli.render import file_percent, file_sizes, human_duration, human_speed, sizes

DELETED = "task_deleted"  # its record is gone: there is nothing left to read
FINAL_EVENTS = ("task_completed", "task_failed", "task_cancelled", DELETED)
FINAL_STATUSES = ("completed", "failed", "cancelled")
FILE_ENDS = ("complete", "error", "removed")
PLAIN_EVERY = 2.0  # seconds between progress lines when not on a terminal
DONE_BARS = 20  # finished files kept on screen; older ones are hidden, not forgotten
NAME_WIDTH = 30


def _speed_and_eta(status: str, p: dict[str, Any]) -> tuple[str, str]:
    """Only while downloading: a finished or processing task moves no bytes."""
    if status != "downloading":
        return "", ""
    eta = p.get("eta_seconds")
    return human_speed(p.get("download_speed")), "ETA " + (
        "?" if eta is None else human_duration(eta)
    )


def progress_line(status: str, p: dict[str, Any]) -> str:
    parts = [
        f"{status}: {p['progress_percent']:.1f}% {sizes(p['downloaded_size'], p['total_size'])}",
        f"files {p['completed_files']}/{p['total_files']}",
    ]
    if p.get("failed_files"):
        parts.append(f"{p['failed_files']} failed")
    speed, eta = _speed_and_eta(status, p)
    if speed:
        parts += [speed, eta]
    return ", ".join(parts)


def _key(f: dict[str, Any]) -> str:
    """A file of the task: its path stays when a retry gives it a new URL."""
    return str(f.get("file_path") or f["url"])


def _file_note(f: dict[str, Any]) -> str:
    """The last column of a file's bar: its ETA while active, else its state."""
    status = f["status"]
    if status == "complete":
        return "done"
    if status != "active":
        return str(status)
    speed = f.get("download_speed") or 0
    total = f.get("total_length") or 0
    if not speed or not total:
        return ""
    return "ETA " + human_duration(max(total - (f.get("completed_length") or 0), 0) / speed)


def file_line(f: dict[str, Any]) -> str:
    return f"file {f['file_name']}: {f['status']} {file_percent(f):.1f}% {file_sizes(f)}"


class Bars:
    """One bar for the task and one per file that has started, kept (at 100 % once done)
    until the watch ends."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TextColumn("{task.fields[percent]}", justify="right"),
            TextColumn("{task.fields[size]}", justify="right"),
            TextColumn("{task.fields[speed]}", justify="right"),
            TextColumn("{task.fields[eta]}"),
            console=console,
            transient=False,
        )
        self.total: TaskID | None = None
        self.files: dict[str, TaskID] = {}
        self.finished: set[TaskID] = set()
        self.shown: collections.deque[TaskID] = collections.deque()  # finished, on screen

    def __enter__(self) -> Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def show(self, task: dict[str, Any], throttle: bool = False) -> None:
        """Bars are redrawn at their own pace: nothing is throttled here."""
        p = task.get("progress")
        if p is None:
            return
        status = task["status"]
        speed, eta = _speed_and_eta(status, p)
        fields = {
            "description": f"{status}, files {p['completed_files']}/{p['total_files']}",
            "completed": p["progress_percent"],
            "percent": f"{p['progress_percent']:.1f}%",
            "size": sizes(p["downloaded_size"], p["total_size"]),
            "speed": speed,
            "eta": eta,
        }
        if self.total is None:
            self.total = self.progress.add_task(total=100, **fields)
        else:
            self.progress.update(self.total, **fields)
        for f in task.get("files") or []:
            self._file(f)

    def _file(self, f: dict[str, Any]) -> None:
        key, status = _key(f), f["status"]
        bar = self.files.get(key)
        if bar is None and status == "waiting":
            return  # not started: no bar yet
        known = bool(f.get("total_length")) or status == "complete"
        fields: dict[str, Any] = {
            "percent": f"{file_percent(f):.1f}%" if known else "?",
            "size": file_sizes(f),
            "speed": human_speed(f.get("download_speed")) if status == "active" else "",
            "eta": _file_note(f),
        }
        if bar is None:
            name = f["file_name"]
            if len(name) > NAME_WIDTH:
                name = name[: NAME_WIDTH - 1] + "…"
            bar = self.files[key] = self.progress.add_task(
                f"  {name}", total=100 if known else None, **fields
            )
        if known:
            fields["total"] = 100
            fields["completed"] = file_percent(f)
        self.progress.update(bar, **fields)
        if status in FILE_ENDS and bar not in self.finished:
            self.finished.add(bar)
            self.shown.append(bar)
            if len(self.shown) > DONE_BARS:
                self.progress.update(self.shown.popleft(), visible=False)
        elif status not in FILE_ENDS and bar in self.finished:  # tried again
            self.finished.discard(bar)
            if bar in self.shown:
                self.shown.remove(bar)
            self.progress.update(bar, visible=True)

    def finish(self, final: dict[str, Any]) -> None:
        self.show(final)


class Lines:
    """For scripts and logs: a line every ``PLAIN_EVERY`` seconds, one per file when it
    ends, and the final figures last; never the same line twice."""

    def __init__(self) -> None:
        self.last_line = ""
        self.last_time = 0.0
        self.files: dict[str, str] = {}  # file → the status last printed

    def __enter__(self) -> Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def show(self, task: dict[str, Any], throttle: bool) -> None:
        for f in task.get("files") or []:
            if f["status"] in FILE_ENDS:
                self._file(f)
        p = task.get("progress")
        if p is None or task["status"] in FINAL_STATUSES:
            return  # the final figures come once, from finish()
        now = time.monotonic()
        if throttle and now - self.last_time < PLAIN_EVERY:
            return
        self.last_time = now
        self._echo(progress_line(task["status"], p))

    def _file(self, f: dict[str, Any]) -> None:
        if self.files.get(_key(f)) != f["status"]:
            self.files[_key(f)] = f["status"]
            click.echo(file_line(f))

    def _echo(self, line: str) -> None:
        if line != self.last_line:
            self.last_line = line
            click.echo(line)

    def finish(self, final: dict[str, Any]) -> None:
        for f in final.get("files") or []:
            self._file(f)
        self._echo(progress_line(final["status"], final["progress"]))


def _tasks(api: ApiClient, task_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, the task as the event tells it) until the final event."""
    for name, data in api.events(task_id):
        yield name, data.get("task", data)
        if name in FINAL_EVENTS:
            return


def watch(api: ApiClient, task_id: str, console: Console) -> dict[str, Any]:
    """Follows the task's event stream; returns its final state (read once it ended, so the
    last figures shown are the stored ones, files included)."""
    view: Bars | Lines = Bars(console) if console.is_terminal else Lines()
    with view:
        for name, task in _tasks(api, task_id):
            if name == DELETED:
                return {"task_id": task_id, "status": "deleted"}
            view.show(task, throttle=name == "task_progress")
        final: dict[str, Any] = api.request("GET", f"/api/tasks/{task_id}")
        view.finish(final)
    return final


def report(final: dict[str, Any]) -> int:
    """Prints the outcome on one unwrapped line (scripts read it); the exit code is 0 only
    for a completed task."""
    status = final["status"]
    if status == "completed":
        click.echo(f"completed: draft at {final.get('draft_path') or '(none)'}")
        return 0
    if status == "failed":
        click.echo(f"failed: {final.get('error_message')}")
        return 1
    if status in ("cancelled", "deleted"):
        click.echo(status)
        return 2
    click.echo(f"{status}: {final.get('message') or ''}")
    return 4
