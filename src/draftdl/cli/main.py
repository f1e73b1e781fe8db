"""The ``draftdl`` command: ``serve`` runs the server; the others talk to a running one."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import uvicorn
from rich.console import Console
from rich.table import Table

from draftdl import __version__
from draftdl.app import create_app
from draftdl.cli.client import ApiClient
from draftdl.cli.watch import report, watch
from draftdl.datadir import DataDirLock, make_private_dir
from draftdl.errors import DataDirLocked, SettingsError
from draftdl.model.states import TaskStatus
from draftdl.settings import LOG_LEVELS, load_settings

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
@click.version_option(__version__, prog_name="draftdl")
def cli() -> None:
    """draftdl: downloads JianYing draft media through aria2c and builds the drafts."""


def server_options(command: F) -> F:
    """--server and --token on every command that talks to a running server."""
    command = click.option(
        "--token", envvar="DRAFTDL_API_TOKEN", help="API token (env DRAFTDL_API_TOKEN)."
    )(command)
    command = click.option(
        "--server",
        envvar="DRAFTDL_SERVER",
        default="http://127.0.0.1:8000",
        show_default=True,
        help="The draftdl server (env DRAFTDL_SERVER).",
    )(command)
    return command


def _api(ctx: click.Context, server: str, token: str | None) -> ApiClient:
    api = ApiClient(server, token)
    ctx.call_on_close(api.close)
    return api


@cli.command()
@click.argument("file", type=click.File("rb"))
@click.option("--priority", type=int, help="Higher runs first (overrides the file's).")
@click.option("--watch", "follow", is_flag=True, help="Follow the task until it ends.")
@server_options
@click.pass_context
def submit(
    ctx: click.Context,
    file: Any,
    priority: int | None,
    follow: bool,
    server: str,
    token: str | None,
) -> None:
    """Submit a job (a JSON file; - for standard input)."""
    raw = file.read()
    if priority is not None:
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise click.ClickException(f"{file.name} is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise click.ClickException(f"{file.name} must hold a JSON object")
        body["priority"] = priority
        raw = json.dumps(body, ensure_ascii=False).encode()
    api = _api(ctx, server, token)
    answer = api.request(
        "POST", "/api/tasks/submit", content=raw, headers={"Content-Type": "application/json"}
    )
    console = Console()
    click.echo(f"task {answer['task_id']} accepted ({answer['total_files']} files)")
    if follow:
        ctx.exit(report(watch(api, answer["task_id"], console)))


@cli.command("watch")
@click.argument("task_id")
@server_options
@click.pass_context
def watch_cmd(ctx: click.Context, task_id: str, server: str, token: str | None) -> None:
    """Follow a task with progress bars until it ends; exit 0 only if it completed."""
    console = Console()
    ctx.exit(report(watch(_api(ctx, server, token), task_id, console)))


@cli.command("list")
@click.option(
    "--status",
    type=click.Choice([s.value for s in TaskStatus]),
    help="Only tasks in this state.",
)
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@server_options
@click.pass_context
def list_cmd(
    ctx: click.Context, status: str | None, limit: int, server: str, token: str | None
) -> None:
    """List tasks, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if status:
        params["status"] = status
    page = _api(ctx, server, token).request("GET", "/api/tasks", params=params)
    rows = [
        (
            t["task_id"],
            t["status"],
            f"{t['progress']['progress_percent']:.1f}%",
            f"{t['progress']['completed_files']}/{t['progress']['total_files']}",
            (t["created_at"] or "")[:19].replace("T", " "),
        )
        for t in page["tasks"]
    ]
    console = Console()
    if console.is_terminal:
        table = Table(box=None)
        table.add_column("task", no_wrap=True)  # ids are copied into watch and cancel
        for column in ("status", "progress", "files", "created"):
            table.add_column(column, no_wrap=True)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    else:  # for scripts: one tab-separated line per task, never cut
        for row in rows:
            click.echo("\t".join(row))
    click.echo(f"{len(rows)} of {page['total']} tasks")


@cli.command()
@click.argument("task_id")
@server_options
@click.pass_context
def cancel(ctx: click.Context, task_id: str, server: str, token: str | None) -> None:
    """Cancel a task; its record is kept."""
    answer = _api(ctx, server, token).request("POST", f"/api/tasks/{task_id}/cancel")
    click.echo(answer["message"])


@cli.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 8000).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Data folder (default ./data).")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False))
def serve(host: str | None, port: int | None, data_dir: Path | None, log_level: str | None) -> None:
    """Run the server (aria2c is started and watched by it).

    Bad settings, or a data folder another server holds, end it at once with one line on
    standard error and exit code 2.
    """
    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "host": host,
            "port": port,
            "data_dir": data_dir,
            "log_level": log_level,
        }.items()
        if v is not None
    }
    # Before the settings are read, so that their warnings (unknown names) are shown.
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        _refuse("invalid settings: " + "; ".join(exc.problems))
    logging.getLogger().setLevel(settings.log_level.upper())
    # One line per aria2 RPC would drown the transitions we do log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    lock = DataDirLock(settings.data_dir)
    try:
        make_private_dir(settings.data_dir)
        lock.acquire()
    except DataDirLocked as exc:
        _refuse(str(exc))
    except OSError as exc:
        _refuse(f"cannot use the data folder {settings.data_dir.resolve()}: {exc}")
    try:
        app = create_app(settings)
        app.state.data_dir_lock = lock  # the lifespan uses it rather than locking again
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            lifespan="on",
        )
    finally:
        lock.release()


def _refuse(message: str) -> NoReturn:
    click.echo(f"draftdl: {message}", err=True)
    raise click.exceptions.Exit(2)


def main() -> None:
    cli()
