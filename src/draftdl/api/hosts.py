"""Answers only requests addressed to a name we serve: a DNS-rebinding page cannot drive us.

A web page on ``http://evil.example`` that re-points its name at 127.0.0.1 reaches a loopback
service with ``Host: evil.example``; browsers never forge that header. So the loopback names
(and every loopback address) are served, plus ``allowed_hosts`` and the address we bind to.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send


def host_name(header: str) -> str:
    """'[::1]:8000' → '::1', 'Example.COM.:80' → 'example.com'."""
    value = header.strip().lower()
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def is_loopback_name(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):
        return True  # browsers resolve these to loopback themselves
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class HostGuard:
    """ASGI middleware: 400 (HTTP) or close 1008 (WebSocket) for a Host we do not serve."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        names = {host_name(h) for h in allowed if h}
        self.any = "*" in names
        self.allowed = frozenset(names - {"*", "0.0.0.0", "::"})

    def serves(self, header: str | None) -> bool:
        if header is None or self.any:
            return True  # no Host at all is no browser
        name = host_name(header)
        return name in self.allowed or is_loopback_name(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
        if self.serves(header):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        name = host_name(header or "")
        detail = (
            f"this server does not answer to the host name {name!r}; "
            "add it to the allowed_hosts setting to serve it"
        )
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
