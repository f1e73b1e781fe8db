"""The ``draftdl`` command: ``serve`` runs the server; the others talk to a running one."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NoReturn

import click

from draftdl import __version__
from draftdl.cli import service, tasks
from draftdl.cli.agents import mcp_cmd
from draftdl.cli.drafts import zip_cmd
from draftdl.cli.pull import pull
from draftdl.datadir import DataDirLock, make_private_dir
from draftdl.errors import DataDirLocked, SettingsError
from draftdl.settings import LOG_LEVELS, load_settings


@click.group()
@click.version_option(__version__, prog_name="draftdl")
def cli() -> None:
    """draftdl: downloads JianYing draft media through aria2c and builds the drafts."""


for command in (*tasks.COMMANDS, zip_cmd, pull, *service.COMMANDS):
    cli.add_command(command)
cli.add_command(mcp_cmd)  # for AI agent hosts: the API as MCP tools, on stdio


@cli.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 8000).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Data folder (default ./data).")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False))
@click.option(
    "--role",
    type=click.Choice(["all", "api", "worker"]),
    help="all (default): one process; api or worker: a node of a cluster on PostgreSQL.",
)
@click.option("--node-name", help="This node's name in a cluster (default host:port).")
def serve(
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    log_level: str | None,
    role: str | None,
    node_name: str | None,
) -> None:
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
            "role": role,
            "node_name": node_name,
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
    # Alembic's two lines at every start ("Will assume non-transactional DDL") mislead: the
    # migration holds a transaction; db/schema.py logs what it did.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    lock = DataDirLock(settings.data_dir)
    try:
        make_private_dir(settings.data_dir)
        lock.acquire()
    except DataDirLocked as exc:
        _refuse(str(exc))
    except OSError as exc:
        _refuse(f"cannot use the data folder {settings.data_dir.resolve()}: {exc}")
    try:
        # The server's parts load only for serve: the other commands start in a blink.
        import uvicorn

        from draftdl.app import create_app

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
