"""Checks the test file server itself, so download tests can trust what it serves."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from fileserver import DEFAULT_MEDIA_DIR, FileServer, content_for

Response = tuple[int, dict[str, str], bytes]


@pytest.fixture
def server() -> Iterator[FileServer]:
    with FileServer() as srv:
        yield srv
    assert srv.errors == []


def _connect(srv: FileServer) -> http.client.HTTPConnection:
    port = urlsplit(srv.base_url).port
    assert port is not None
    return http.client.HTTPConnection("127.0.0.1", port, timeout=10)


def _fetch(
    srv: FileServer, path: str, *, method: str = "GET", headers: dict[str, str] | None = None
) -> Response:
    """One request on a fresh connection; everything is closed before returning."""
    conn = _connect(srv)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        try:
            body = resp.read()
        finally:
            resp.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def _handler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


def test_content_for_is_deterministic_prefix_stable_and_fast() -> None:
    started = time.monotonic()
    big = content_for("big.bin", 64 * 1024 * 1024)
    assert time.monotonic() - started < 2.0
    assert len(big) == 64 * 1024 * 1024
    assert content_for("big.bin", 200_000) == big[:200_000]
    assert content_for("other.bin", 1000) != big[:1000]
    # Whole-block shifts must not look identical.
    assert big[:65536] != big[65536:131072]


def test_size_body_matches_content_for_with_keep_alive(server: FileServer) -> None:
    conn = _connect(server)
    try:
        for _ in range(2):  # same connection twice: Content-Length must be exact
            conn.request("GET", "/size/100K/clip.mp4")
            resp = conn.getresponse()
            try:
                body = resp.read()
            finally:
                resp.close()
            assert resp.status == 200
            assert resp.getheader("Content-Length") == str(100 * 1024)
            assert resp.getheader("Accept-Ranges") == "bytes"
            assert resp.getheader("Content-Type") == "video/mp4"
            assert body == content_for("clip.mp4", 100 * 1024)
    finally:
        conn.close()


def test_range_requests(server: FileServer) -> None:
    full = content_for("r.bin", 5000)
    status, headers, body = _fetch(server, "/size/5000/r.bin", headers={"Range": "bytes=100-199"})
    assert (status, body) == (206, full[100:200])
    assert headers["content-range"] == "bytes 100-199/5000"
    assert headers["content-length"] == "100"

    status, headers, body = _fetch(server, "/size/5000/r.bin", headers={"Range": "bytes=4000-"})
    assert (status, body) == (206, full[4000:])
    assert headers["content-range"] == "bytes 4000-4999/5000"

    status, _, body = _fetch(server, "/size/5000/r.bin", headers={"Range": "bytes=-10"})
    assert (status, body) == (206, full[-10:])

    status, _, body = _fetch(server, "/size/5000/r.bin", headers={"Range": "bytes=4990-9999"})
    assert (status, body) == (206, full[4990:])

    status, headers, _ = _fetch(server, "/size/5000/r.bin", headers={"Range": "bytes=5000-"})
    assert status == 416
    assert headers["content-range"] == "bytes */5000"

    status, headers, body = _fetch(server, "/size/5000/r.bin", method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == "5000"


def test_media_serves_real_files(server: FileServer) -> None:
    names = {p.name for p in DEFAULT_MEDIA_DIR.iterdir()}
    assert {"clip.mp4", "portrait.mp4", "tone.mp3", "still.png", "photo.jpg"} <= names
    expected = (DEFAULT_MEDIA_DIR / "clip.mp4").read_bytes()
    for prefix in ("/media/", "/other/"):
        status, headers, body = _fetch(server, prefix + "clip.mp4?x=1")
        assert (status, body) == (200, expected)
        assert headers["content-type"] == "video/mp4"
    status, _, body = _fetch(server, "/media/tone.mp3", headers={"Range": "bytes=10-19"})
    assert (status, body) == (206, (DEFAULT_MEDIA_DIR / "tone.mp3").read_bytes()[10:20])


def test_media_dir_override(tmp_path: Path) -> None:
    (tmp_path / "a b.txt").write_bytes(b"hello")
    with FileServer(tmp_path) as srv:
        assert _fetch(srv, "/media/a%20b.txt")[::2] == (200, b"hello")


@pytest.mark.parametrize(
    "path",
    [
        "/media/..%2F..%2Fetc%2Fpasswd",
        "/media/../../etc/passwd",
        "/media/%2Fetc%2Fpasswd",
        "/media/..",
        "/media/",
        "/media/missing.mp4",
        "/media/sub/clip.mp4",
        "/nothing/here",
        "/",
    ],
)
def test_not_found(server: FileServer, path: str) -> None:
    assert _fetch(server, path)[0] == 404


@pytest.mark.parametrize("code", [404, 500, 503])
def test_status_endpoint(server: FileServer, code: int) -> None:
    status, _, body = _fetch(server, f"/status/{code}/x.mp4")
    assert status == code
    assert body == f"status {code}\n".encode()


def test_cut_first_request_short_then_full(server: FileServer) -> None:
    full = content_for("c.bin", 10_000)
    conn = _connect(server)
    try:
        conn.request("GET", "/cut/10000/c.bin?after=3000")
        resp = conn.getresponse()
        try:
            assert resp.getheader("Content-Length") == "10000"
            with pytest.raises(http.client.IncompleteRead) as excinfo:
                resp.read()
        finally:
            resp.close()
        assert excinfo.value.partial == full[:3000]
    finally:
        conn.close()
    # A resuming client gets the rest, and later plain requests are whole.
    status, _, body = _fetch(server, "/cut/10000/c.bin", headers={"Range": "bytes=3000-"})
    assert (status, body) == (206, full[3000:])
    assert _fetch(server, "/cut/10000/c.bin")[::2] == (200, full)


def test_cut_times_all_still_lets_a_resuming_client_finish(server: FileServer) -> None:
    full = content_for("c.bin", 1000)
    got = b""
    for _ in range(5):
        conn = _connect(server)
        try:
            headers = {"Range": f"bytes={len(got)}-"}
            conn.request("GET", "/cut/1000/c.bin?after=400&times=all", headers=headers)
            resp = conn.getresponse()
            try:
                got += resp.read()
            except http.client.IncompleteRead as exc:
                got += exc.partial
            finally:
                resp.close()
        finally:
            conn.close()
        if len(got) == len(full):
            break
    assert got == full
    assert server.requests_for("/cut/1000/c.bin") == 3


def test_noclen_has_no_length_and_closes(server: FileServer) -> None:
    status, headers, body = _fetch(server, "/noclen/70000/n.bin", headers={"Range": "bytes=5-"})
    assert status == 200
    assert "content-length" not in headers
    assert "accept-ranges" not in headers
    assert body == content_for("n.bin", 70000)


def test_slow_rate_is_roughly_honoured(server: FileServer) -> None:
    started = time.monotonic()
    status, _, body = _fetch(server, "/slow/64K/s.bin?rate=128K")
    elapsed = time.monotonic() - started
    assert (status, body) == (200, content_for("s.bin", 64 * 1024))
    assert 0.3 <= elapsed < 5.0


def test_stop_returns_quickly_while_streaming() -> None:
    srv = FileServer()
    srv.start()
    conn = _connect(srv)
    try:
        conn.request("GET", "/slow/10M/s.bin?rate=64K")
        resp = conn.getresponse()
        try:
            assert len(resp.read(1000)) == 1000
            assert _handler_threads()
            started = time.monotonic()
            srv.stop()
            assert time.monotonic() - started < 1.0
            assert _handler_threads() == []
            srv.stop()  # idempotent
        finally:
            resp.close()
    finally:
        conn.close()
    assert srv.errors == []


def test_stop_breaks_idle_keep_alive_connections() -> None:
    srv = FileServer()
    srv.start()
    conn = _connect(srv)
    try:
        conn.request("GET", "/size/10/k.bin")
        resp = conn.getresponse()
        resp.read()
        resp.close()
        started = time.monotonic()
        srv.stop()
        assert time.monotonic() - started < 1.0
        assert _handler_threads() == []
    finally:
        conn.close()


def test_counters(server: FileServer) -> None:
    _fetch(server, "/size/1K/a%20b.bin")
    _fetch(server, "/size/1K/a%20b.bin?again=1")
    _fetch(server, "/size/1K/a%20b.bin", method="HEAD")
    _fetch(server, "/size/1K/a%20b.bin", headers={"Range": "bytes=1000-"})
    assert server.requests_for("/size/1K/a%20b.bin") == 4
    assert server.requests_for("/size/1K/a b.bin") == 4
    assert server.requests_for(server.url("/size/1K/a b.bin?q")) == 4
    assert server.bytes_served("/size/1K/a%20b.bin") == 2 * 1024 + 24
    assert server.requests_for("/size/1K/other.bin") == 0
    server.reset_counters()
    assert server.requests_for("/size/1K/a%20b.bin") == 0
    assert server.bytes_served("/size/1K/a%20b.bin") == 0
