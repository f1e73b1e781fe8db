"""``GET /api/tasks/submit_with_url``: a job fetched from a URL, bounded and checked."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest

from fileserver import FileServer
from servers import LiveServer, job, live_server, make_settings


class JobHost:
    """Serves job JSON (and redirects) on 127.0.0.1, counting what it was asked."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.asked: list[str] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.asked.append(self.path)
                status, headers, body = host.pages.get(self.path, (404, {}, b"no"))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "X-Unsized" in headers:  # no length: the body ends with the connection
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def put(self, path: str, body: Any, status: int = 200, **headers: str) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.pages[path] = (status, {"Content-Type": "application/json", **headers}, raw)


@pytest.fixture
def jobhost() -> Iterator[JobHost]:
    host = JobHost()
    host.thread.start()
    try:
        yield host
    finally:
        host.server.shutdown()
        host.server.server_close()


@pytest.fixture
async def server(data_dir: Path) -> AsyncIterator[LiveServer]:
    async with live_server(make_settings(data_dir, max_request_bytes=4096)) as live:
        yield live


async def test_a_job_at_a_url_is_submitted(
    server: LiveServer, jobhost: JobHost, fileserver: FileServer
) -> None:
    jobhost.put("/job.json", job([fileserver.url("/size/4K/u.bin")], title="from a url"))
    jobhost.put("/moved", b"", 302, Location="/job.json")
    async with server.client() as http:
        resp = await http.get(
            "/api/tasks/submit_with_url",
            params={"url": jobhost.url("/moved"), "wait": 30},
            timeout=40,
        )
        assert resp.status_code == 200, resp.text
        answer = resp.json()
        assert answer["status"] == "completed" and answer["total_files"] == 1
        assert answer["task"]["title"] == "from a url"
    assert jobhost.asked == ["/moved", "/job.json"]


async def test_what_is_refused(server: LiveServer, jobhost: JobHost) -> None:
    jobhost.put("/big.json", b"{" + b" " * 5000 + b"}")
    jobhost.put("/big-unsized.json", b"{" + b" " * 5000 + b"}", **{"X-Unsized": "1"})
    jobhost.put("/bad.json", {"materials": "x"})
    jobhost.put("/loop", b"", 302, Location="/loop")
    jobhost.put("/badredirect", b"", 302, Location="http://[::1/x")
    aria2 = server.services.manager.port
    cases = [
        ("ftp://127.0.0.1/job.json", 422, "only http and https"),
        (jobhost.url("/nope.json"), 422, "answered 404"),
        (jobhost.url("/big.json"), 413, "larger than 4096 bytes"),
        (jobhost.url("/big-unsized.json"), 413, "larger than 4096 bytes"),
        (jobhost.url("/loop"), 422, "more than 3 redirects"),
        (f"http://127.0.0.1:{aria2}/jsonrpc", 422, "aria2"),
        ("http://127.0.0.1:1/job.json", 422, "could not fetch it"),
        ("http://xn--zz.example/job.json", 422, "not a valid URL"),
        (jobhost.url("/badredirect"), 422, "could not fetch it"),  # not a 500
    ]
    async with server.client() as http:
        for url, status, words in cases:
            resp = await http.get("/api/tasks/submit_with_url", params={"url": url})
            assert resp.status_code == status, (url, resp.text)
            [problem] = resp.json()["detail"]
            assert problem["loc"] == ["query", "url"] and problem["path"] == "query.url"
            assert words in problem["msg"], (url, problem)
        resp = await http.get(
            "/api/tasks/submit_with_url", params={"url": jobhost.url("/bad.json")}
        )
        assert resp.status_code == 422
        assert any(p["path"] == "materials" for p in resp.json()["detail"])
        # A browser on another site's page cannot make it submit; our own page, a typed
        # address and clients that are not browsers can.
        own = server.base_url
        for headers, status in (
            ({"Sec-Fetch-Site": "cross-site"}, 403),
            ({"Sec-Fetch-Site": "same-site"}, 403),
            ({"Origin": "http://evil.example"}, 403),
            ({"Referer": "http://evil.example/page"}, 403),
            ({"Sec-Fetch-Site": "same-origin"}, 422),
            ({"Sec-Fetch-Site": "none"}, 422),
            ({"Referer": f"{own}/"}, 422),
            ({}, 422),
        ):
            resp = await http.get(
                "/api/tasks/submit_with_url",
                params={"url": jobhost.url("/bad.json")},
                headers=headers,
            )
            assert resp.status_code == status, headers
        assert (await http.get("/api/tasks")).json()["total"] == 0
    assert jobhost.asked.count("/loop") == 4  # the first and 3 redirects, then no more
