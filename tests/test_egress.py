"""url_deny_networks holds for every connection aria2c makes, redirects included.

Only loopback addresses take part: 127.0.0.2 plays the internal network that a deployment
keeps jobs away from, 127.0.0.1 the outside world.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from draftdl.egress import EgressGuard
from draftdl.sources import SourcePolicy
from fileserver import FileServer, content_for
from servers import job, make_settings, running_service, until


class Recorder(ThreadingHTTPServer):
    """A tiny server that records what reaches it: redirects to ``to`` when set."""

    def __init__(self, host: str, to: str | None = None) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.to = to
        super().__init__((host, 0), Handler)

    @property
    def base(self) -> str:
        return f"http://{self.server_address[0]}:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_GET(self) -> None:
        self.server.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        if self.server.to is not None:
            self.send_response(302)
            self.send_header("Location", self.server.to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"internal secret\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def recorders() -> Iterator[list[Recorder]]:
    started: list[Recorder] = []
    yield started
    for server in started:
        server.shutdown()
        server.server_close()


def serve(recorders: list[Recorder], host: str, to: str | None = None) -> Recorder:
    server = Recorder(host, to)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    recorders.append(server)
    return server


async def test_a_redirect_into_a_denied_network_is_refused_at_the_connection(
    data_dir: Path, fileserver: FileServer, recorders: list[Recorder]
) -> None:
    internal = serve(recorders, "127.0.0.2")
    bouncer = serve(recorders, "127.0.0.1", to=f"{internal.base}/secret.bin")
    settings = make_settings(data_dir, url_deny_networks=["127.0.0.2/32"])
    async with running_service(settings) as svc:
        direct = await svc.http.post("/api/tasks/submit", json=job([f"{internal.base}/x.bin"]))
        assert direct.status_code == 422
        assert "127.0.0.2/32" in direct.json()["detail"][0]["msg"]

        task = await svc.wait_final(await svc.submit(job([f"{bouncer.base}/open.bin"])))
        assert task["status"] == "failed"
        assert task["files"][0]["error_message"] == (
            "egress guard: the host 127.0.0.2 (127.0.0.2) is in 127.0.0.2/32, "
            "which the url_deny_networks setting keeps jobs away from"
        )
        assert internal.seen == []  # not one request reached the internal network
        assert [path for path, _ in bouncer.seen] == ["/open.bin"]

        good = fileserver.url("/size/300K/fine.bin")
        done = await svc.wait_final(await svc.submit(job([good])))
        assert done["status"] == "completed"
        assert Path(done["files"][0]["file_path"]).read_bytes() == content_for(
            "fine.bin", 300 * 1024
        )
        assert svc.services.queue.monitor.egress is not None
        assert svc.services.queue.monitor.egress.refused == 1


async def test_the_guard_forwards_one_request_per_connection_without_its_own_header(
    data_dir: Path, recorders: list[Recorder]
) -> None:
    allowed = serve(recorders, "127.0.0.1")
    settings = make_settings(data_dir, url_deny_networks=["127.0.0.2/32"])
    async with running_service(settings) as svc:
        task = await svc.wait_final(await svc.submit(job([f"{allowed.base}/a.txt?x=1"])))
    assert task["status"] == "completed"
    [(path, headers)] = allowed.seen
    assert path == "/a.txt?x=1"
    assert "proxy-authorization" not in headers and "proxy-connection" not in headers
    assert headers["connection"] == "close"


async def test_without_denied_networks_no_guard_runs(service: Any) -> None:
    assert service.services.queue.monitor.egress is None


async def test_a_refused_connection_is_reported_as_the_guards_not_a_502(
    data_dir: Path,
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nobody listens here once the socket is closed
    settings = make_settings(data_dir, url_deny_networks=["127.0.0.2/32"])
    async with running_service(settings) as svc:
        task = await svc.wait_final(await svc.submit(job([f"http://127.0.0.1:{closed}/x.bin"])))
    message = task["files"][0]["error_message"]
    assert message.startswith(f"egress guard: could not connect to 127.0.0.1:{closed} (")
    assert "502" not in message


async def guard_exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), 5)
    writer.close()
    await writer.wait_closed()
    return answer


async def test_connect_is_checked_and_tunnels_to_the_checked_address(
    recorders: list[Recorder],
) -> None:
    allowed = serve(recorders, "127.0.0.1")
    denied = serve(recorders, "127.0.0.2")
    guard = EgressGuard()
    guard.policy = lambda: SourcePolicy.build([], [], ["127.0.0.2/32"])
    await guard.start()
    assert guard.port is not None
    try:
        refused = await guard_exchange(
            guard.port,
            f"CONNECT 127.0.0.2:{denied.server_address[1]} HTTP/1.1\r\n\r\n".encode(),
        )
        assert refused.startswith(b"HTTP/1.1 403 Forbidden")
        mapped = await guard_exchange(
            guard.port,
            f"CONNECT [::ffff:127.0.0.2]:{denied.server_address[1]} HTTP/1.1\r\n\r\n".encode(),
        )
        assert mapped.startswith(b"HTTP/1.1 403 Forbidden")
        assert denied.seen == []
        reader, writer = await asyncio.open_connection("127.0.0.1", guard.port)
        writer.write(f"CONNECT 127.0.0.1:{allowed.server_address[1]} HTTP/1.1\r\n\r\n".encode())
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        writer.write(b"GET /tunnelled HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        body = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await writer.wait_closed()
        assert body.startswith(b"HTTP/1.0 200") and body.endswith(b"internal secret\n")
        assert [p for p, _ in allowed.seen] == ["/tunnelled"]
    finally:
        await guard.stop()


async def test_a_silent_origin_does_not_keep_the_guards_connection(
    recorders: list[Recorder],
) -> None:
    held: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda r, w: held.append(w), "127.0.0.1", 0)  # mute
    port = silent.sockets[0].getsockname()[1]
    guard = EgressGuard()
    await guard.start()
    assert guard.port is not None
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", guard.port)
        writer.write(f"GET http://127.0.0.1:{port}/x HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        await until(lambda: len(guard._connections) == 1, 5)
        writer.close()  # the client gives up (aria2's timeout, a stall, a cancel)
        await writer.wait_closed()
        await until(lambda: not guard._connections, 5)
    finally:
        await guard.stop()
        for w in held:
            w.close()
        silent.close()
        await silent.wait_closed()
