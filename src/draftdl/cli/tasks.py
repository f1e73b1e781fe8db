"""Commands about tasks: submit, watch, list, show, and the queue controls (pause, resume,
retry, priority, limit, regenerate, cancel, delete)."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import click
from rich.console import Console

from draftdl.cli.client import ApiClient
from draftdl.cli.options import TASK_STATUSES, connect, server_options
from draftdl.cli.render import plural, rows, show_task, when
from draftdl.cli.watch import report, watch

RATE_HELP = "bytes per second, or aria2 style like 2M or 500K; none for no cap"
# Where OLD ends in OLD=NEW: an "=" that starts a URL (URLs hold "=" in their queries).
URL_START = re.compile(r"=(?=[A-Za-z][A-Za-z0-9+.-]*://)")
INTERRUPTED = 130  # what a shell reports for a command ended by Ctrl-C


def _rate(value: str) -> str | None:
    """A limit as the API takes it: the text, or null for none."""
    return None if value.strip().lower() in ("none", "off", "unlimited") else value.strip()


def follow(ctx: click.Context, api: ApiClient, task_id: str) -> None:
    """Watches the task and exits with its outcome; Ctrl-C stops the watch, not the task."""
    try:
        final = watch(api, task_id, Console())
    except KeyboardInterrupt:
        click.echo(
            ("\n" if sys.stderr.isatty() else "")  # after the ^C the terminal echoed
            + f"stopped watching: task {task_id} goes on in the server "
            f"(`draftdl cancel {task_id}` cancels it)",
            err=True,
        )
        ctx.exit(INTERRUPTED)
    ctx.exit(report(final))


@click.command()
@click.argument("file", type=click.File("rb"))
@click.option("--priority", type=int, help="Higher runs first (overrides the file's).")
@click.option(
    "--limit",
    "rate",
    metavar="RATE",
    help=f"This task's speed cap: {RATE_HELP} (overrides the file's).",
)
@click.option("--watch", "follow_task", is_flag=True, help="Follow the task until it ends.")
@server_options
@click.pass_context
def submit(
    ctx: click.Context,
    file: Any,
    priority: int | None,
    rate: str | None,
    follow_task: bool,
    server: str,
    token: str | None,
) -> None:
    """Submit a job (a JSON file; - for standard input)."""
    raw = file.read()
    overrides: dict[str, Any] = {}
    if priority is not None:
        overrides["priority"] = priority
    if rate is not None:
        overrides["max_download_limit"] = _rate(rate)
    if overrides:
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise click.ClickException(f"{file.name} is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise click.ClickException(f"{file.name} must hold a JSON object")
        body.update(overrides)
        raw = json.dumps(body, ensure_ascii=False).encode()
    api = connect(ctx, server, token)
    answer = api.request(
        "POST", "/api/tasks/submit", content=raw, headers={"Content-Type": "application/json"}
    )
    click.echo(f"task {answer['task_id']} accepted ({plural(answer['total_files'], 'file')})")
    if follow_task:
        follow(ctx, api, answer["task_id"])


@click.command("watch")
@click.argument("task_id")
@server_options
@click.pass_context
def watch_cmd(ctx: click.Context, task_id: str, server: str, token: str | None) -> None:
    """Follow a task with progress bars until it ends.

    Exit 0 completed, 1 failed, 2 cancelled, 3 the server failed, 130 interrupted (Ctrl-C:
    the task goes on).
    """
    follow(ctx, connect(ctx, server, token), task_id)


def _statuses(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    """--status a,b --status c → [a, b, c], each one the API knows."""
    out: list[str] = []
    for value in values:
        for status in filter(None, (s.strip().lower() for s in value.split(","))):
            if status not in TASK_STATUSES:
                raise click.BadParameter(
                    f"{status!r} is not one of {', '.join(TASK_STATUSES)}", ctx, param
                )
            if status not in out:
                out.append(status)
    return out


@click.command("list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    metavar="STATUS[,STATUS]",
    callback=_statuses,
    help=f"Only tasks in these states ({', '.join(TASK_STATUSES)}); comma-separated or repeated.",
)
@click.option("--search", metavar="TEXT", help="Only tasks whose title contains TEXT.")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, help="Skip this many tasks.")
@server_options
@click.pass_context
def list_cmd(
    ctx: click.Context,
    statuses: list[str],
    search: str | None,
    limit: int,
    offset: int,
    server: str,
    token: str | None,
) -> None:
    """List tasks, newest first."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if statuses:
        params["status"] = ",".join(statuses)
    if search:
        params["q"] = search
    page = connect(ctx, server, token).request("GET", "/api/tasks", params=params)
    lines = [
        (
            t["task_id"],
            t["status"],
            str(t.get("priority", 0)),
            f"{t['progress']['progress_percent']:.1f}%",
            f"{t['progress']['completed_files']}/{t['progress']['total_files']}",
            when(t.get("created_at")),
            t.get("title") or "",
        )
        for t in page["tasks"]
    ]
    console = Console()
    rows(console, ["task", "status", "priority", "progress", "files", "created", "title"], lines)
    summary = f"{len(lines)} of {plural(page['total'], 'task')}"
    if offset:
        summary += f", from number {offset + 1}"
    click.echo(summary)


@click.command()
@click.argument("task_id")
@server_options
@click.pass_context
def show(ctx: click.Context, task_id: str, server: str, token: str | None) -> None:
    """Show a task and its files."""
    task = connect(ctx, server, token).request("GET", f"/api/tasks/{task_id}")
    show_task(Console(), task)


def _post(ctx: click.Context, server: str, token: str | None, path: str) -> Any:
    return connect(ctx, server, token).request("POST", path)


def _control(name: str, summary: str) -> click.Command:
    """A command that POSTs one control (``/api/tasks/{id}/<name>``) and says the answer."""

    @click.command(name=name, help=summary)
    @click.argument("task_id")
    @server_options
    @click.pass_context
    def command(ctx: click.Context, task_id: str, server: str, token: str | None) -> None:
        answer = _post(ctx, server, token, f"/api/tasks/{task_id}/{name}")
        click.echo(answer.get("message") or f"task {task_id} {answer.get('status')}")

    return command


pause = _control("pause", "Pause a pending or downloading task (its bytes are kept).")
resume = _control("resume", "Resume a paused task.")
cancel = _control("cancel", "Cancel a task; its record is kept.")
regenerate = _control("regenerate", "Build a completed or failed task's draft again.")


def _split_pairs(api: ApiClient, task_id: str, values: tuple[str, ...]) -> dict[str, str]:
    """OLD=NEW pairs. URLs hold "=" in their queries: the split is at an "=" that starts a
    URL, and when there are several such, at the one whose left side is a URL of the task."""
    urls: set[str] | None = None
    pairs: dict[str, str] = {}
    for value in values:
        splits = [(value[: m.start()], value[m.end() :]) for m in URL_START.finditer(value)]
        if not splits and "=" in value:
            old, new = value.split("=", 1)
            splits = [(old, new)]
        splits = [(old, new) for old, new in splits if old and new]
        if len(splits) > 1:
            if urls is None:
                task = api.request("GET", f"/api/tasks/{task_id}")
                urls = {f["url"] for f in task.get("files") or []}
            splits = [(old, new) for old, new in splits if old in urls]
        if len(splits) != 1:
            raise click.BadParameter(
                f"{value!r}: expected OLD=NEW, OLD being the URL of one of the task's files "
                "(see `draftdl show`)",
                param_hint="'--url'",
            )
        old, new = splits[0]
        pairs[old] = new
    return pairs


@click.command()
@click.argument("task_id")
@click.option(
    "--url",
    "urls",
    multiple=True,
    metavar="OLD=NEW",
    help="Download this file from NEW instead of OLD (repeatable).",
)
@server_options
@click.pass_context
def retry(
    ctx: click.Context, task_id: str, urls: tuple[str, ...], server: str, token: str | None
) -> None:
    """Download a failed or cancelled task's missing files again.

    --url gives a file a new link (an expired one): OLD is the file's URL as `draftdl show`
    lists it.
    """
    api = connect(ctx, server, token)
    kwargs: dict[str, Any] = {}
    if urls:
        kwargs["json"] = {"urls": _split_pairs(api, task_id, urls)}
    answer = api.request("POST", f"/api/tasks/{task_id}/retry", **kwargs)
    line = answer.get("message")
    if not line:
        retried = answer.get("retried_files")
        line = f"task {task_id} {answer.get('status')}"
        if isinstance(retried, int):
            line += f" ({plural(retried, 'file')} retried)"
    click.echo(line)


@click.command(context_settings={"ignore_unknown_options": True})  # N may be negative
@click.argument("task_id")
@click.argument("value", metavar="N", type=int)
@server_options
@click.pass_context
def priority(ctx: click.Context, task_id: str, value: int, server: str, token: str | None) -> None:
    """Set a task's priority (higher runs first)."""
    task = connect(ctx, server, token).request(
        "PATCH", f"/api/tasks/{task_id}", json={"priority": value}
    )
    click.echo(f"task {task_id}: priority {task.get('priority', value)}")


@click.command()
@click.argument("task_id")
@click.argument("rate", metavar="RATE")
@server_options
@click.pass_context
def limit(ctx: click.Context, task_id: str, rate: str, server: str, token: str | None) -> None:
    """Cap a task's download speed.

    RATE is bytes per second, or aria2 style like 2M or 500K; none removes the cap.
    """
    task = connect(ctx, server, token).request(
        "PATCH", f"/api/tasks/{task_id}", json={"max_download_limit": _rate(rate)}
    )
    cap = task.get("max_download_limit", _rate(rate))
    click.echo(f"task {task_id}: " + (f"download limit {cap}" if cap else "no download limit"))


@click.command()
@click.argument("task_id")
@click.option("--files", is_flag=True, help="Also delete its downloaded files.")
@click.option("--draft", is_flag=True, help="Also delete its draft folder.")
@server_options
@click.pass_context
def delete(
    ctx: click.Context, task_id: str, files: bool, draft: bool, server: str, token: str | None
) -> None:
    """Delete a task (with --files / --draft, what it made too)."""
    params = {k: "true" for k, on in (("files", files), ("draft", draft)) if on}
    answer = connect(ctx, server, token).request("DELETE", f"/api/tasks/{task_id}", params=params)
    click.echo(answer.get("message") or f"task {task_id} deleted")


COMMANDS = (
    submit,
    watch_cmd,
    list_cmd,
    show,
    pause,
    resume,
    retry,
    priority,
    limit,
    regenerate,
    cancel,
    delete,
)
