"""``/mcp``: the MCP server over streamable HTTP, inside the app.

Behind the app's ``HostGuard`` like every route (a foreign Host is a 400, so DNS rebinding
protection stays ours, with ``allowed_hosts``), and behind the API token: the door checks it
with ``require_token`` (401 as for any route), and every tool sends the caller's own
``Authorization`` on to the API, which the tools reach in-process (``httpx.ASGITransport`` to
the app itself), so they pass the same checks as any client.

Stateless, with JSON answers: each MCP request is one HTTP exchange and nothing is kept
between them (no session to expire or to lose at a restart); the tools need no more.

The SDK's session manager runs inside the app's lifespan (``run``), after the app's parts are
up and stopping before them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, HTTPException
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from draftdl.api.deps import bearer, require_token
from draftdl.api.errors import error_response
from draftdl.mcp.backend import Backend
from draftdl.mcp.server import build_server
from draftdl.settings import Settings

log = logging.getLogger(__name__)

PATH = "/mcp"
BASE = "http://127.0.0.1"  # the in-process client's address: a loopback name HostGuard serves
# One line per request ("Terminating session: None", stateless) would drown our own.
NOISY = logging.getLogger("mcp.server.streamable_http")


class McpEndpoint:
    """The ASGI app of ``/mcp``; ``run(app)`` in the app's lifespan serves it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.manager: StreamableHTTPSessionManager | None = None

    def install(self, app: FastAPI) -> None:
        app.router.routes.append(Route(PATH, endpoint=self, include_in_schema=False))

    @contextlib.asynccontextmanager
    async def run(self, app: ASGIApp) -> AsyncIterator[None]:
        """A fresh MCP server each time (the SDK's manager runs once), in a task of its own:
        the manager holds an anyio task group, which must be left in the task that entered
        it, and an app's lifespan may be left in another (a test fixture's teardown)."""

        @contextlib.asynccontextmanager
        async def in_process() -> AsyncIterator[Backend]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
                yield Backend(http, forward_auth=True)

        if NOISY.level == logging.NOTSET:
            NOISY.setLevel(logging.WARNING)
        server = build_server(in_process)
        server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            # The body limit is the API's (max_request_bytes, its own 413); the job sits
            # inside the JSON-RPC request, maybe as an escaped string.
            max_request_body_size=2 * self.settings.max_request_bytes + 65536,
            # HostGuard checks Host and Origin for the whole app, with its settings.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        manager = server.session_manager
        started, stop = asyncio.Event(), asyncio.Event()

        async def serve() -> None:
            async with manager.run():
                started.set()
                await stop.wait()

        serving = asyncio.create_task(serve(), name="mcp-sessions")
        waiting = asyncio.create_task(started.wait())
        try:
            await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
            if serving.done():
                serving.result()  # it failed to start: raise why
        except BaseException:
            serving.cancel()
            raise
        finally:
            waiting.cancel()
        self.manager = manager
        serving.add_done_callback(self._ended)  # /mcp answers 503 if it ever stops early
        try:
            yield
        finally:
            self.manager = None
            stop.set()
            await serving

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.manager = None
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("the MCP session manager stopped: %r", exc)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            await require_token(request, await bearer(request))
        except HTTPException as exc:
            await error_response(exc.detail, exc.status_code, exc.headers)(scope, receive, send)
            return
        if self.manager is None:
            await error_response("the MCP endpoint is not running", 503)(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)
