"""Answers only requests addressed to a name we serve, and changes nothing for another site.

A web page on ``http://evil.example`` that re-points its name at 127.0.0.1 reaches a loopback
service with ``Host: evil.example``; browsers never forge that header. So the loopback names
(and every loopback address) are served, plus ``allowed_hosts`` and the address we bind to.

Our own aria2c marks every request it makes for a job (``X-Draftdl-Fetch``): such a request
reaching the API (a job's URL that redirects here) is refused, so a job cannot download the
API's answers into a draft.

A page on another site can still send "simple" requests to a name we do serve (a form post,
a bodiless ``POST .../cancel``); browsers mark those with an ``Origin``. A request that changes
something (any method but GET, HEAD, OPTIONS) from an origin other than our own or one of
``cors_origins`` is refused (403). Clients that are not browsers send no ``Origin``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from draftdl.aria2.models import FETCH_MARKER
from draftdl.settings import is_loopback

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MARKER = FETCH_MARKER[0].lower().encode()  # on every request our aria2c makes
WATCHED = (b"host", b"origin", MARKER)


def host_name(header: str) -> str:
    """'[::1]:8000' → '::1', 'Example.COM.:80' → 'example.com'."""
    value = header.strip().lower()
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def is_loopback_name(name: str) -> bool:
    # Browsers resolve *.localhost to loopback themselves.
    return name.endswith(".localhost") or is_loopback(name)


class HostGuard:
    """ASGI middleware: 400 (HTTP) or close 1008 (WebSocket) for a Host we do not serve."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str], origins: Iterable[str] = ()) -> None:
        self.app = app
        names = {host_name(h) for h in allowed if h}
        self.any = "*" in names
        self.allowed = frozenset(names - {"*", "0.0.0.0", "::"})
        self.origins = frozenset(o.rstrip("/").lower() for o in origins)

    def same_site(self, origin: str | None, host: str | None) -> bool:
        """No Origin (not a browser), our own origin, or one of ``cors_origins``."""
        if origin is None:
            return True
        origin = origin.rstrip("/").lower()
        if "*" in self.origins or origin in self.origins:
            return True
        return host is not None and urlsplit(origin).netloc == host.strip().lower()

    def serves(self, header: str | None) -> bool:
        if header is None or self.any:
            return True  # no Host at all is no browser
        name = host_name(header)
        return name in self.allowed or is_loopback_name(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k: v.decode("latin-1") for k, v in scope["headers"] if k in WATCHED}
        if MARKER in headers:
            await _refuse(
                scope,
                send,
                403,
                "draftdl does not download from itself: a job's URL (or a redirect) led here",
            )
            return
        header = headers.get(b"host")
        if not self.serves(header):
            name = host_name(header or "")
            await _refuse(
                scope,
                send,
                400,
                f"this server does not answer to the host name {name!r}; "
                "add it to the allowed_hosts setting to serve it",
            )
            return
        changes = scope["type"] == "http" and scope["method"] not in SAFE_METHODS
        if changes and not self.same_site(headers.get(b"origin"), header):
            await _refuse(
                scope,
                send,
                403,
                f"a request from {headers.get(b'origin')!r} may not change anything here; "
                "add that origin to the cors_origins setting to allow it",
            )
            return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, send: Send, status: int, detail: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"detail": detail, "message": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
