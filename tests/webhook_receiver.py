"""A webhook receiver on 127.0.0.1 that checks every signature and answers as scripted."""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from servers import free_port


@dataclass
class Received:
    id: str
    timestamp: str
    body: bytes
    verified: bool
    answered: int


@dataclass
class Receiver:
    """``script``: the statuses answered to one webhook-id's 1st, 2nd, ... attempt (then 200)."""

    secret: str
    script: list[int] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    got: list[Received] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    hang: float = 0.0  # seconds to wait before answering (a receiver that does not answer)
    _runner: web.AppRunner | None = None
    _seen: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?key=s3cret"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        msg_id = request.headers.get("webhook-id", "")
        try:
            Webhook(self.secret).verify(body, dict(request.headers))
            verified = True
        except WebhookVerificationError:
            verified = False
        n = self._seen[msg_id]
        self._seen[msg_id] += 1
        status = self.script[n] if n < len(self.script) and verified else 200
        if not verified:
            status = 401
        self.got.append(
            Received(msg_id, request.headers.get("webhook-timestamp", ""), body, verified, status)
        )
        self.changed.set()
        if self.hang:
            await asyncio.sleep(self.hang)
        return web.Response(status=status, text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def acknowledged(self) -> list[Received]:
        return [r for r in self.got if 200 <= r.answered < 300]

    async def wait_for(self, ok: Any, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while not ok():
                self.changed.clear()
                await self.changed.wait()
