"""``draftdl serve``: settings from flags, env and config.json, then uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
import uvicorn
from pydantic import ValidationError

from draftdl import __version__
from draftdl.app import create_app
from draftdl.settings import Settings


@click.group()
@click.version_option(__version__, prog_name="draftdl")
def cli() -> None:
    """draftdl: downloads JianYing draft media through aria2c and builds the drafts."""


@cli.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 8000).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Data folder (default ./data).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
def serve(host: str | None, port: int | None, data_dir: Path | None, log_level: str | None) -> None:
    """Run the server (aria2c is started and watched by it)."""
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
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise click.ClickException(
            "invalid settings: " + "; ".join(e["msg"] for e in exc.errors())
        ) from exc
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    # One line per aria2 RPC would drown the transitions we do log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        lifespan="on",
    )


def main() -> None:
    cli()
