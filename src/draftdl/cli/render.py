"""How the CLI writes numbers and tasks: one family of units (KiB, MiB, GiB), plain
tab-separated lines when stdout is not a terminal, tables when it is."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from draftdl.units import human_size


def plural(n: int, word: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def human_speed(n: float | None) -> str:
    return f"{human_size(int(n or 0))}/s"


def human_duration(seconds: float) -> str:
    """``5s``, ``2m05s``, ``1h02m``: an ETA, not a timestamp."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def sizes(done: int, total: int) -> str:
    """``1.0 MiB/4.0 MiB``; ``?`` for a total not known yet."""
    return f"{human_size(done)}/{human_size(total) if total else '?'}"


def when(stamp: str | None) -> str:
    """An ISO timestamp as ``2024-05-01 12:00:00`` (UTC, as the server keeps them)."""
    return (stamp or "")[:19].replace("T", " ")


def file_percent(f: dict[str, Any]) -> float:
    if f.get("status") == "complete":
        return 100.0
    total = f.get("total_length") or 0
    return min(100.0 * (f.get("completed_length") or 0) / total, 100.0) if total else 0.0


def file_sizes(f: dict[str, Any]) -> str:
    done, total = f.get("completed_length") or 0, f.get("total_length") or 0
    if f.get("status") == "complete":  # a finished file is all there, whatever was last read
        total = total or done
        done = total
    return sizes(done, total)


def rows(console: Console, header: list[str], lines: Sequence[tuple[str, ...]]) -> None:
    """A table on a terminal; for scripts, one tab-separated line per row, never cut."""
    if console.is_terminal:
        table = Table(box=None)
        for column in header:
            table.add_column(column, no_wrap=column in ("task", "status"), overflow="fold")
        for line in lines:
            table.add_row(*map(Text, line))  # names and errors are text, not markup
        console.print(table)
    else:
        for line in lines:
            click.echo("\t".join(map(cell, line)))


def cell(text: str) -> str:
    """A value on one tab-separated line: no tabs or line breaks inside."""
    return " ".join(text.split()) if any(c in text for c in "\t\r\n") else text


def show_task(console: Console, task: dict[str, Any]) -> None:
    """A task's fields, then one row per file."""
    p = task.get("progress") or {}
    progress = (
        f"{p.get('progress_percent', 0):.1f}% "
        f"{sizes(p.get('downloaded_size') or 0, p.get('total_size') or 0)}, "
        f"{p.get('completed_files', 0)}/{p.get('total_files', 0)} files"
    )
    if p.get("failed_files"):
        progress += f", {p['failed_files']} failed"
    if task.get("status") == "downloading":
        progress += f", {human_speed(p.get('download_speed'))}"
        eta = p.get("eta_seconds")
        progress += f", ETA {'?' if eta is None else human_duration(eta)}"
    fields: list[tuple[str, str]] = [
        ("task", task["task_id"]),
        ("title", task.get("title") or ""),
        ("status", task["status"]),
        ("priority", str(task.get("priority", 0))),
        ("progress", progress),
    ]
    if "max_download_limit" in task:
        fields.append(("limit", str(task["max_download_limit"] or "none")))
    for key in ("message", "error_message", "draft_path"):
        if task.get(key):
            fields.append((key.replace("_", " "), str(task[key])))
    fields += [("created", when(task.get("created_at"))), ("updated", when(task.get("updated_at")))]
    if task.get("completed_at"):
        fields.append(("finished", when(task["completed_at"])))
    files = task.get("files") or []
    lines = [
        (
            f.get("file_name") or "",
            f.get("status") or "",
            f"{file_percent(f):.1f}%",
            file_sizes(f),
            human_speed(f.get("download_speed")) if f.get("status") == "active" else "",
            str(f.get("attempts", 0)),
            when(f.get("next_retry_at")),
            f.get("error_message") or "",
            f.get("url") or "",
        )
        for f in files
    ]
    header = ["file", "status", "done", "size", "speed", "tries", "next retry", "error", "url"]
    if console.is_terminal:
        table = Table(box=None, show_header=False)
        table.add_column("field", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        for key, value in fields:
            table.add_row(key, Text(value))
        console.print(table)
        console.print()
        rows(console, header, lines)
        console.print(plural(len(files), "file"), highlight=False)
    else:
        for key, value in fields:
            click.echo(f"{key}\t{cell(value)}")
        for line in lines:  # "file" first, so a script tells them from the fields above
            click.echo("\t".join(map(cell, ("file", *line))))
