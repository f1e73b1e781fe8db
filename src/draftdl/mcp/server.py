"""The MCP server: the tools and resources, and the API client its lifespan holds.

``build_server`` takes how to open that client; ``run_stdio`` is ``draftdl mcp``: a client to
a draftdl server by URL, served on stdin/stdout.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx
from mcp.server.mcpserver import MCPServer

from draftdl import __version__
from draftdl.mcp.backend import Backend
from draftdl.mcp.resources import JOB_FORMAT, register_resources
from draftdl.mcp.tools import register_tools

INSTRUCTIONS = f"""\
draftdl downloads the media of JianYing (CapCut China) draft jobs and builds the drafts.
Read {JOB_FORMAT} for the job format and its examples. Then: submit_job(job) gives a
task_id; get_task(task_id, wait_seconds=60), again until status is completed (draft_path is
the draft folder), failed (error_message says why) or cancelled."""

OpenBackend = Callable[[], AbstractAsyncContextManager[Backend]]


def build_server(open_backend: OpenBackend) -> MCPServer[Backend]:
    """The server; ``open_backend`` runs for its lifespan (one client for every call)."""

    def lifespan(_: MCPServer[Backend]) -> AbstractAsyncContextManager[Backend]:
        return open_backend()

    server: MCPServer[Backend] = MCPServer(
        "draftdl",
        title="draftdl",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
    )
    register_tools(server)
    register_resources(server)
    return server


def remote_backend(server_url: str, token: str | None) -> OpenBackend:
    """A client to a draftdl server by URL, with the token of ``--token``."""

    @contextlib.asynccontextmanager
    async def open_backend() -> AsyncIterator[Backend]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(base_url=server_url.rstrip("/"), headers=headers) as http:
            yield Backend(http)

    return open_backend


def run_stdio(server_url: str, token: str | None) -> None:
    """Serves until the agent host closes stdin. Standard output is the protocol's: logs go to
    standard error (configured before the SDK's own logging set-up, which then adds none)."""
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    build_server(remote_backend(server_url, token)).run("stdio")
