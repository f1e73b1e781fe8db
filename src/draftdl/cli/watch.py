"""Following a task until it ends: rich bars on a terminal, plain lines elsewhere."""

from __future__ import annotations

import time
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from draftdl.cli.client import ApiClient

FINAL_EVENTS = ("task_completed", "task_failed", "task_cancelled")
PLAIN_EVERY = 2.0  # seconds between progress lines when not on a terminal


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def progress_line(status: str, p: dict[str, Any]) -> str:
    eta = p.get("eta_seconds")
    return (
        f"{status}: {p['progress_percent']:.1f}% "
        f"{_size(p['downloaded_size'])}/{_size(p['total_size'])} "
        f"files {p['completed_files']}/{p['total_files']} "
        f"{_size(p['download_speed'])}/s ETA {'?' if eta is None else f'{eta:.0f}s'}"
    )


class Bars:
    """One bar for the task's bytes and one per file while it downloads."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.total: TaskID | None = None
        self.files: dict[str, TaskID] = {}

    def __enter__(self) -> Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, status: str, progress: dict[str, Any], files: list[dict[str, Any]]) -> None:
        total = progress["total_size"] or None
        if self.total is None:
            self.total = self.progress.add_task(status, total=total)
        self.progress.update(
            self.total,
            description=f"{status} ({progress['completed_files']}/{progress['total_files']})",
            total=total,
            completed=progress["downloaded_size"],
        )
        for f in files:
            bar = self.files.get(f["url"])
            if bar is None and f["status"] == "active":
                bar = self.files[f["url"]] = self.progress.add_task(
                    f"  {f['file_name'][:30]}", total=f["total_length"] or None
                )
            if bar is not None:
                self.progress.update(
                    bar, total=f["total_length"] or None, completed=f["completed_length"]
                )
                if f["status"] in ("complete", "error"):
                    self.progress.remove_task(bar)
                    self.files[f["url"]] = bar  # keep it known, not shown


def watch(api: ApiClient, task_id: str, console: Console) -> dict[str, Any]:
    """Follows the task's event stream; returns its final state."""
    if console.is_terminal:
        with Bars(console) as bars:
            for name, data in api.events(task_id):
                task = data.get("task", data)
                if "progress" in task:
                    bars.update(task["status"], task["progress"], task.get("files") or [])
                if name in FINAL_EVENTS:
                    break
    else:
        last = 0.0
        for name, data in api.events(task_id):
            task = data.get("task", data)
            now = time.monotonic()
            if name == "task_progress" and now - last < PLAIN_EVERY:
                continue
            last = now
            if "progress" in task:
                click.echo(progress_line(task["status"], task["progress"]))
            if name in FINAL_EVENTS:
                break
    final: dict[str, Any] = api.request("GET", f"/api/tasks/{task_id}")
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
    if status == "cancelled":
        click.echo("cancelled")
        return 2
    click.echo(f"{status}: {final.get('message') or ''}")
    return 4
