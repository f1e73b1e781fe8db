"""EgressGuard: the forward proxy on 127.0.0.1 that aria2c goes through when a deployment sets
``url_deny_networks``.

Checking a URL at submit is not enough to keep jobs off a network: aria2 follows redirects by
itself (it has no option to stop), and a name may resolve to another address when aria2 looks
it up. Through this proxy every connection aria2 makes, a redirect's included, is checked on
the address the proxy itself resolved, and the proxy connects to exactly that address. Plain
http requests are forwarded one per connection (``Connection: close``), so a kept-alive proxy
connection can never carry a request to an unchecked host; https goes through ``CONNECT``.
aria2 names the download in the proxy credentials (user = gid), so what the guard refused or
could not reach is reported on the right file, whatever the URL was redirected to.

Without ``url_deny_networks`` the proxy is not started and downloads go straight out.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from draftdl.sources import Address, SourcePolicy, parse_address

log = logging.getLogger(__name__)

HEAD_TIMEOUT = 30.0
CONNECT_TIMEOUT = 15.0
CHUNK = 256 * 1024
HOP_HEADERS = frozenset({"proxy-connection", "proxy-authorization", "connection", "keep-alive"})


class Refused(Exception):
    pass


class EgressGuard:
    def __init__(self) -> None:
        self.policy: Callable[[], SourcePolicy] = SourcePolicy  # the queue sets its own
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.port: int | None = None
        self.failures: dict[str, str] = {}  # gid → what the guard refused or could not reach
        self.refusals: set[str] = set()  # of those, the gids refused by policy
        self.refused = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("downloads go through the egress guard on 127.0.0.1:%d", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def reason_for(self, gid: str) -> str | None:
        """Why the guard refused, or could not reach, (a hop of) this download."""
        return self.failures.get(gid)

    def forget(self, gids: Iterable[str]) -> None:
        for gid in gids:
            self.failures.pop(gid, None)
            self.refusals.discard(gid)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = asyncio.create_task(self._serve(reader, writer), name="egress-connection")
        self._connections.add(conn)
        conn.add_done_callback(self._connections.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: asyncio.StreamWriter | None = None
        gid = ""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            method, target, lines = _parse_head(head)
            gid = _proxy_user(lines)
            if method == "CONNECT":
                host, port = _authority(target, 443)
            else:
                parts = urlsplit(target)
                if parts.scheme != "http" or not parts.hostname:
                    raise ValueError(f"not a proxy request for an http URL: {target[:200]}")
                host, port = parts.hostname, parts.port or 80
            try:
                address = await self._checked_address(host, port)
            except Refused as exc:
                self._failed(gid, f"{exc}", refused=True)
                self.refused += 1
                log.warning("egress guard refused %s:%d: %s", host, port, exc)
                await _answer(writer, 403, str(exc))
                return
            except OSError as exc:
                self._failed(gid, f"name resolution failed for {host}: {exc}")
                await _answer(writer, 502, f"name resolution failed for {host}")
                return
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(str(address), port), CONNECT_TIMEOUT
                )
                upstream = up_writer
            except (OSError, TimeoutError) as exc:
                reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
                self._failed(gid, f"could not connect to {host}:{port} ({reason})")
                await _answer(writer, 502, f"could not connect to {host}:{port}")
                return
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:
                up_writer.write(_origin_request(method, target, lines))
                await up_writer.drain()
            await _pipe_both(reader, writer, up_reader, up_writer)
        except (ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            with contextlib.suppress(OSError, ConnectionError):
                await _answer(writer, 400, f"bad proxy request: {exc}")
        except (OSError, TimeoutError):
            pass  # a side went away: nothing to answer
        finally:
            for w in (upstream, writer):
                if w is not None:
                    w.close()

    def _failed(self, gid: str, reason: str, refused: bool = False) -> None:
        if gid:
            self.failures[gid] = reason
            if refused:
                self.refusals.add(gid)

    def refused_gid(self, gid: str) -> bool:
        """The guard refused it by policy: asking again would change nothing."""
        return gid in self.refusals

    async def _checked_address(self, host: str, port: int) -> Address:
        """The address to connect to: every address the name has must be allowed."""
        if port == self.port:
            raise Refused("this URL points at draftdl's own egress guard")
        literal = parse_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            loop = asyncio.get_running_loop()
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found = (parse_address(str(info[4][0])) for info in infos)
            addresses = [a for a in found if a is not None]
        policy = self.policy()
        for address in addresses:
            problem = policy.address_problem(host, address, port)
            if problem:
                raise Refused(problem)
        if not addresses:
            raise OSError(f"{host} has no address")
        return addresses[0]


def _parse_head(head: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    text = head.decode("latin-1")
    first, *rest = text.split("\r\n")
    method, target, _version = first.split(" ", 2)
    lines = []
    for line in rest:
        if line:
            name, _, value = line.partition(":")
            lines.append((name.strip(), value.strip()))
    return method.upper(), target, lines


def _authority(target: str, default: int) -> tuple[str, int]:
    parts = urlsplit(f"//{target}")
    if not parts.hostname:
        raise ValueError(f"bad CONNECT target {target[:200]!r}")
    return parts.hostname, parts.port or default


def _proxy_user(lines: list[tuple[str, str]]) -> str:
    """The user of ``Proxy-Authorization: Basic ...``: aria2 sends the download's gid there."""
    for key, value in lines:
        if key.lower() == "proxy-authorization" and value[:6].lower() == "basic ":
            try:
                return base64.b64decode(value[6:].strip()).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                return ""
    return ""


def _origin_request(method: str, target: str, lines: list[tuple[str, str]]) -> bytes:
    """The proxy request as the origin server expects it, one request per connection."""
    parts = urlsplit(target)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    kept = [(k, v) for k, v in lines if k.lower() not in HOP_HEADERS]
    out = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in kept), "Connection: close"]
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    body = f"draftdl egress guard: {reason}\n".encode()
    words = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
    writer.write(
        f"HTTP/1.1 {status} {words}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()


async def _pipe_both(
    a_reader: asyncio.StreamReader,
    a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
) -> None:
    """Copies both ways until either side closes."""

    async def copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while chunk := await reader.read(CHUNK):
                writer.write(chunk)
                await writer.drain()
        with contextlib.suppress(OSError, ConnectionError):
            if writer.can_write_eof():
                writer.write_eof()

    up = asyncio.create_task(copy(a_reader, b_writer))
    down = asyncio.create_task(copy(b_reader, a_writer))
    # Either side ending ends the exchange: the answer is complete, or the client (aria2
    # timing out, or told to stop) went away and an origin that holds its socket open must
    # not keep the pair alive.
    try:
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for side in (up, down):
            side.cancel()
        await asyncio.gather(up, down, return_exceptions=True)
