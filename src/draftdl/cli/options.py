"""What every command that talks to a running server shares: --server, --token, the client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from draftdl.cli.client import ApiClient

F = TypeVar("F", bound=Callable[..., Any])

# The task statuses the API speaks (the server's, not this package's enum: the CLI may talk
# to a server of another version, and it checks what it sends).
TASK_STATUSES = (
    "pending",
    "downloading",
    "paused",
    "processing",
    "completed",
    "failed",
    "cancelled",
)


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


def connect(ctx: click.Context, server: str, token: str | None) -> ApiClient:
    """A client closed with the command."""
    api = ApiClient(server, token)
    ctx.call_on_close(api.close)
    return api
