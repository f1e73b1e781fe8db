"""url_deny_networks holds for every connection aria2c makes, redirects included.

Only loopback addresses take part: 127.0.0.2 plays the internal network that a deployment
keeps jobs away from, 127.0.0.1 the outside world.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from fileserver import FileServer, content_for
from servers import job, make_settings, running_service


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
            "refused by draftdl: the host 127.0.0.2 (127.0.0.2) is in 127.0.0.2/32, "
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
    assert "x-draftdl-gid" not in headers and "proxy-connection" not in headers
    assert headers["connection"] == "close"


async def test_without_denied_networks_no_guard_runs(service: Any) -> None:
    assert service.services.queue.monitor.egress is None
