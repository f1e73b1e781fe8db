"""Real local HTTP file server that the test suite downloads from with a real aria2c.

A plain static server is not enough: the tests need throttled bodies, connections cut
mid-body, forced error statuses and bodies without a Content-Length, plus exact accounting
of what was sent, so that aria2c's resume and retry behaviour can be asserted byte for byte.

Endpoints (GET and HEAD; query strings never affect which resource is served, but for the
``to`` of ``/redirect`` and the ``filename`` of ``/disposition``):

- ``/media/<name>``, ``/other/<name>``: a plain file from ``media_dir``.
- ``/size/<n>/<name>``: ``n`` bytes of :func:`content_for` (``n`` may end in K, M or G).
- ``/slow/<n>/<name>?rate=B``: like ``/size`` but throttled to about ``B`` bytes/s.
- ``/cut/<n>/<name>?after=B&times=K``: like ``/size`` but the first ``K`` GETs of that path
  (``times=all``: every GET) drop the connection after ``B`` body bytes (default ``n // 2``).
- ``/status/<code>/<name>``: answers ``code`` with a small text body.
- ``/noclen/<n>/<name>``: like ``/size`` but close-delimited, without ranges.
- ``/flaky/<n>/<name>?fail=N&code=C``: like ``/size`` but the first ``N`` GETs of that path
  answer status ``C`` (default 503).
- ``/stall/<n>/<name>?after=B&times=K``: like ``/size`` but the first ``K`` GETs (default: every
  GET) send ``B`` body bytes (default ``n // 2``) and then nothing more, holding the connection
  open until the server stops.
- ``/redirect/<code>/<name>?to=URL``: answers ``code`` (a 30x) with ``Location: URL`` (the
  percent-decoded ``to``, which may be any URL: ``file:///etc/passwd``, another path, another
  port).
- ``/disposition/<n>/<name>?filename=F``: like ``/size`` but with
  ``Content-Disposition: attachment; filename="F"`` (``F`` percent-decoded, as sent).

Every request's headers are recorded (``headers_for``). The server is also an HTTP proxy for
plain-http URLs of any host: a request in absolute form (``GET http://cdn.invalid/size/1K/a``)
is served from the same endpoints by its path and recorded with its target (``proxied_for``),
so a test can tell that a download went through a proxy, with which credentials.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import socketserver
import stat
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO, Self
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_MEDIA_DIR = Path(__file__).parent / "data" / "media"
DEFAULT_SLOW_RATE = 256 * 1024
STALL_HOLD = 600.0  # how long a stalled body keeps its connection open, at most

_BLOCK = 64 * 1024  # unit of generated content and of non-throttled writes
_STOP_JOIN_TIMEOUT = 2.0
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
_SIZE_RE = re.compile(r"(\d{1,15})([KMG]?)", re.IGNORECASE)
_RANGE_RE = re.compile(r"bytes\s*=\s*(\d*)\s*-\s*(\d*)", re.IGNORECASE)
_CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".wav": "audio/wav",
    ".aac": "audio/aac",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
}

# --------------------------------------------------------------------------- content


@lru_cache(maxsize=64)
def _base_block(name: str) -> bytes:
    """64 KiB of hash-derived bytes for ``name``: any byte shift inside a block shows up."""
    seed = hashlib.sha256(b"draftdl-fileserver\0" + name.encode()).digest()
    return b"".join(
        hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(_BLOCK // 32)
    )


def _block(name: str, index: int) -> bytes:
    """Block ``index`` gets its own hash head, so shifts by whole blocks show up too."""
    head = hashlib.sha256(name.encode() + b"\0" + index.to_bytes(8, "big")).digest()
    return head + _base_block(name)[len(head) :]


def _iter_content(name: str, start: int, end: int) -> Iterator[bytes]:
    """Yield bytes ``[start, end)`` of the generated content without building all of it."""
    pos = start
    while pos < end:
        index, offset = divmod(pos, _BLOCK)
        take = min(_BLOCK - offset, end - pos)
        block = _block(name, index)
        yield block if take == _BLOCK else block[offset : offset + take]
        pos += take


def content_for(name: str, size: int) -> bytes:
    """Exact body of ``/size/<size>/<name>`` so tests can check downloads byte for byte.

    Deterministic per name, prefix-stable (``content_for(n, a)`` starts
    ``content_for(n, b)`` for ``a < b``) and cheap: 64 MiB takes well under a second.
    """
    if size < 0:
        raise ValueError(f"negative size: {size}")
    return b"".join(_iter_content(name, 0, size))


def _iter_file(f: BinaryIO, start: int, end: int) -> Iterator[bytes]:
    """Stream a file slice; a file that shrinks underneath is a test bug, so it raises."""
    f.seek(start)
    remaining = end - start
    while remaining > 0:
        data = f.read(min(_BLOCK, remaining))
        if not data:
            raise OSError(f"{f.name!r} shrank while being served")
        remaining -= len(data)
        yield data


# --------------------------------------------------------------------------- parsing


class _RangeNotSatisfiable(Exception):
    """Raised for a Range that starts past the end, answered with 416."""


def _parse_size(text: str) -> int | None:
    """``123``, ``4K``, ``2M`` -> bytes (binary units); None if malformed."""
    m = _SIZE_RE.fullmatch(text)
    if m is None:
        return None
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return ``(start, end_exclusive)`` for one byte range, or None to serve everything.

    Multi-range and malformed headers are ignored (a full 200 is allowed by RFC 9110).
    """
    if header is None:
        return None
    m = _RANGE_RE.fullmatch(header.strip())
    if m is None:
        return None
    first, last = m.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _RangeNotSatisfiable
        return max(0, size - suffix), size
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise _RangeNotSatisfiable
    end = size if not last else min(int(last) + 1, size)
    return start, end


def _decode_segment(raw: str) -> str | None:
    """Percent-decode one path segment; None if it is not valid UTF-8."""
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        return None


def _content_type(name: str) -> str:
    """Fixed table instead of ``mimetypes``, which depends on the host's mime files."""
    return _CONTENT_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def _counter_key(path: str) -> str:
    """Normalise a request target, path or URL to the decoded path the counters use."""
    if "://" in path:
        path = urlsplit(path).path
    return unquote(path.partition("?")[0].partition("#")[0])


class _BadRequest(Exception):
    """A malformed query parameter, answered with 400."""


def _query_int(params: dict[str, list[str]], key: str, default: int) -> int:
    """Read a size-like query parameter (suffixes allowed)."""
    values = params.get(key)
    if not values:
        return default
    value = _parse_size(values[-1])
    if value is None:
        raise _BadRequest(f"bad {key}={values[-1]!r}")
    return value


# --------------------------------------------------------------------------- server


class _Server(ThreadingHTTPServer):
    """Per-run state: the stop event and the live connections that stop() must break."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # aria2c opens many connections at once; avoid SYN retries

    def __init__(self, owner: FileServer, port: int = 0) -> None:
        self.owner = owner
        self.stopping = threading.Event()
        self._conns_lock = threading.Lock()
        self._conns: dict[socket.socket, threading.Thread] = {}
        # Every handler thread, until stop() has joined it: one whose connection is already
        # untracked may still be finishing (a stream that saw the stop event on its own).
        self._handlers: set[threading.Thread] = set()
        super().__init__(("127.0.0.1", port), _Handler)

    def server_bind(self) -> None:
        """Skip HTTPServer's getfqdn() lookup, which can stall on a slow resolver."""
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = int(self.socket.getsockname()[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet; keep unexpected handler bugs so tests can see them in ``errors``."""
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, OSError):
            self.owner.errors.append(exc)

    def track(self, conn: socket.socket) -> None:
        """Register a connection; one accepted during stop() is broken right away."""
        with self._conns_lock:
            self._conns[conn] = threading.current_thread()
            if len(self._handlers) > 256:  # keep only those still running
                self._handlers = {t for t in self._handlers if t.is_alive()}
            self._handlers.add(threading.current_thread())
            if not self.stopping.is_set():
                return
        _break(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.pop(conn, None)

    def break_connections(self) -> list[threading.Thread]:
        """Wake every handler blocked in recv/send; return their threads to join."""
        with self._conns_lock:
            items = list(self._conns.items())
        for conn, _ in items:
            _break(conn)
        with self._conns_lock:
            threads, self._handlers = self._handlers, set()
        return list(threads)


def _break(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Routes GET/HEAD to the endpoints described in the module docstring."""

    protocol_version = "HTTP/1.1"
    server_version = "draftdl-test-fileserver/1"
    timeout = 30  # a stalled client must not pin a handler thread forever
    disable_nagle_algorithm = True  # headers and body are separate writes; avoid 40 ms stalls

    @property
    def _srv(self) -> _Server:
        assert isinstance(self.server, _Server)
        return self.server

    def log_message(self, format: str, *args: Any) -> None:
        """Tests must not write to stderr."""

    def setup(self) -> None:
        super().setup()
        self._srv.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._srv.untrack(self.connection)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    # -- routing

    def _dispatch(self) -> None:
        target = self.path
        if target.lower().startswith("http://"):  # a proxy request: served by its path
            self.path = urlsplit(target)._replace(scheme="", netloc="").geturl() or "/"
        raw_path, _, query = self.path.partition("?")
        self._key = _counter_key(raw_path)
        owner = self._srv.owner
        owner._count_request(self._key)
        owner._record_headers(self._key, self.headers.items(), target)
        params = parse_qs(query)
        parts = raw_path.split("/")
        kind = parts[1] if len(parts) > 1 and parts[0] == "" else ""
        try:
            if kind in ("media", "other") and len(parts) == 3:
                self._serve_media(parts[2])
            elif kind == "status" and len(parts) == 4:
                self._serve_status(parts[2], parts[3])
            elif (
                kind in ("size", "slow", "cut", "noclen", "stall", "disposition", "flaky")
                and len(parts) == 4
            ):
                self._serve_generated(kind, parts[2], parts[3], params)
            elif kind == "redirect" and len(parts) == 4:
                self._serve_redirect(parts[2], params)
            else:
                self._send_text(404, "not found\n")
        except _BadRequest as exc:
            self._send_text(400, f"{exc}\n")

    def _serve_media(self, raw_name: str) -> None:
        media_dir = self._srv.owner.media_dir
        name = _decode_segment(raw_name)
        if (
            name is None
            or name in ("", ".", "..")
            or any(c in name for c in "/\\\0")
            or (media_dir / name).resolve().parent != media_dir.resolve()
        ):
            self._send_text(404, "not found\n")
            return
        try:
            f = (media_dir / name).open("rb")
        except OSError:
            self._send_text(404, "not found\n")
            return
        with f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                self._send_text(404, "not found\n")
                return
            self._serve_sized(
                st.st_size,
                lambda start, end: _iter_file(f, start, end),
                _content_type(name),
                extra={"Last-Modified": self.date_time_string(int(st.st_mtime))},
            )

    def _serve_status(self, raw_code: str, raw_name: str) -> None:
        if not raw_code.isdigit() or not 200 <= int(raw_code) <= 599 or not raw_name:
            self._send_text(404, "not found\n")
            return
        self._send_text(int(raw_code), f"status {raw_code}\n")

    def _serve_redirect(self, raw_code: str, params: dict[str, list[str]]) -> None:
        if not raw_code.isdigit() or not 300 <= int(raw_code) <= 399:
            self._send_text(404, "not found\n")
            return
        target = params.get("to")
        if not target:
            raise _BadRequest("redirect needs ?to=URL")
        self._send_text(int(raw_code), f"see {target[-1]}\n", {"Location": target[-1]})

    def _serve_generated(
        self, kind: str, raw_size: str, raw_name: str, params: dict[str, list[str]]
    ) -> None:
        size = _parse_size(raw_size)
        name = _decode_segment(raw_name)
        if size is None or not name:
            self._send_text(404, "not found\n")
            return

        def source(start: int, end: int) -> Iterator[bytes]:
            return _iter_content(name, start, end)

        ctype = _content_type(name)
        if kind == "size":
            self._serve_sized(size, source, ctype)
        elif kind == "disposition":
            filename = params.get("filename", [name])[-1]
            extra = {"Content-Disposition": f'attachment; filename="{filename}"'}
            self._serve_sized(size, source, ctype, extra=extra)
        elif kind == "slow":
            rate = _query_int(params, "rate", DEFAULT_SLOW_RATE)
            if rate <= 0:
                raise _BadRequest("rate must be positive")
            self._serve_sized(size, source, ctype, rate=rate)
        elif kind == "cut":
            after = _query_int(params, "after", size // 2)
            times_raw = params.get("times", ["1"])[-1]
            if times_raw != "all" and not times_raw.isdigit():
                raise _BadRequest(f"bad times={times_raw!r}")
            cut = False
            if self.command == "GET":
                gets = self._srv.owner._count_get(self._key)
                cut = times_raw == "all" or gets <= int(times_raw)
            self._serve_sized(size, source, ctype, cut_after=after if cut else None)
        elif kind == "flaky":
            fails = _query_int(params, "fail", 1)
            code = _query_int(params, "code", 503)
            if self.command == "GET" and self._srv.owner._count_get(self._key) <= fails:
                self._send_text(code, f"status {code}\n")
                return
            self._serve_sized(size, source, ctype)
        elif kind == "stall":
            after = _query_int(params, "after", size // 2)
            times = _query_int(params, "times", 0)  # 0: every GET stalls
            stalls = self.command == "GET" and (
                times == 0 or self._srv.owner._count_get(self._key) <= times
            )
            self._serve_sized(size, source, ctype, cut_after=after if stalls else None, hold=True)
        else:
            self._serve_noclen(size, source, ctype)

    # -- responses

    def _serve_sized(
        self,
        size: int,
        source: Callable[[int, int], Iterable[bytes]],
        ctype: str,
        *,
        rate: int | None = None,
        cut_after: int | None = None,
        hold: bool = False,
        extra: dict[str, str] | None = None,
    ) -> None:
        """Answer 200/206/416 with an exact Content-Length, then stream the body; with
        ``hold``, a body cut at ``cut_after`` stalls (the connection stays open) instead."""
        try:
            byte_range = _parse_range(self.headers.get("Range"), size)
        except _RangeNotSatisfiable:
            self._send_text(416, "range not satisfiable\n", {"Content-Range": f"bytes */{size}"})
            return
        start, end = byte_range or (0, size)
        self.send_response(206 if byte_range else 200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        if byte_range:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        limit = cut_after if cut_after is not None and cut_after < end - start else None
        if not self._write_body(source(start, end), rate=rate, limit=limit):
            if hold and limit is not None:
                self._srv.stopping.wait(STALL_HOLD)
            self.close_connection = True

    def _serve_noclen(
        self, size: int, source: Callable[[int, int], Iterable[bytes]], ctype: str
    ) -> None:
        """Close-delimited body: no Content-Length, no ranges, so the size is unknown."""
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Connection", "close")  # also sets close_connection
        self.end_headers()
        if self.command == "GET":
            self._write_body(source(0, size))
        self.close_connection = True

    def _send_text(self, code: int, text: str, extra: dict[str, str] | None = None) -> None:
        """Small text answer that keeps the connection usable (exact Content-Length)."""
        body = b"" if code in (204, 304) else text.encode()
        self.send_response(code)
        if code not in (204, 304):
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body and not self._send(body):
            self.close_connection = True

    def _write_body(
        self, chunks: Iterable[bytes], *, rate: int | None = None, limit: int | None = None
    ) -> bool:
        """Send the body; False if it was cut, stop() was called or the client went away.

        With ``rate``, writes are small and paced against a monotonic clock so the average
        stays near ``rate``; the pause is an Event wait so stop() interrupts it at once.
        """
        stopping = self._srv.stopping
        piece = _BLOCK if rate is None else max(1, min(16 * 1024, rate // 20))
        started = time.monotonic()
        sent = 0
        for chunk in chunks:
            view = memoryview(chunk)
            for lo in range(0, len(view), piece):
                part = view[lo : lo + piece]
                if limit is not None:
                    part = part[: limit - sent]
                if stopping.is_set() or not self._send(part):
                    return False
                sent += len(part)
                if limit is not None and sent >= limit:
                    return False
                if rate is not None:
                    delay = started + sent / rate - time.monotonic()
                    if delay > 0 and stopping.wait(delay):
                        return False
        return True

    def _send(self, data: bytes | memoryview) -> bool:
        """Write and account body bytes; counted before the write so a test that sees the
        download finish never reads a stale counter (rolled back if the write fails)."""
        owner = self._srv.owner
        owner._count_bytes(self._key, len(data))
        try:
            self.wfile.write(data)
        except OSError:
            owner._count_bytes(self._key, -len(data))
            return False
        return True


# --------------------------------------------------------------------------- public API


class FileServer:
    """Local HTTP/1.1 server on 127.0.0.1 with per-path request and byte counters.

    Counters are keyed by the percent-decoded path without query, so ``bytes_served`` and
    ``requests_for`` accept either the encoded or the decoded path (or a full URL).
    ``errors`` collects unexpected handler exceptions (not connection errors), which are
    otherwise swallowed to keep stderr clean; tests may assert it stays empty.
    """

    def __init__(self, media_dir: Path | None = None, port: int = 0) -> None:
        self.media_dir = Path(media_dir) if media_dir is not None else DEFAULT_MEDIA_DIR
        self._port = port  # 0: a free one
        self.errors: list[BaseException] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._bytes: Counter[str] = Counter()
        self._gets: Counter[str] = Counter()
        self._headers: dict[str, list[dict[str, str]]] = {}
        self._proxied: dict[str, list[str]] = {}

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; stays readable after stop() for error messages."""
        if self._base_url is None:
            raise RuntimeError("FileServer has not been started")
        return self._base_url

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def start(self) -> None:
        """Bind 127.0.0.1 (a free port unless one was given); serve from a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("FileServer is already running")
        httpd = _Server(self, self._port)
        self._base_url = f"http://127.0.0.1:{httpd.server_port}"
        # A short poll interval keeps shutdown() (and so stop()) fast.
        thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fileserver-{httpd.server_port}",
            daemon=True,
        )
        self._httpd, self._thread = httpd, thread
        thread.start()

    def stop(self) -> None:
        """Stop accepting, break live connections and join every thread; idempotent.

        Streaming handlers notice the stop event between chunks; handlers blocked in a
        socket call are woken by shutting the socket down, so nothing outlives stop().
        """
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._httpd = self._thread = None
        httpd.stopping.set()
        httpd.shutdown()
        handlers = httpd.break_connections()
        httpd.server_close()
        thread.join()
        deadline = time.monotonic() + _STOP_JOIN_TIMEOUT
        for handler in handlers:
            if handler is not threading.current_thread():
                handler.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def bytes_served(self, path: str) -> int:
        """Body bytes sent for requests whose path (query ignored) equals ``path``."""
        with self._lock:
            return self._bytes[_counter_key(path)]

    def requests_for(self, path: str) -> int:
        """GET and HEAD requests received for ``path`` (query ignored)."""
        with self._lock:
            return self._requests[_counter_key(path)]

    def reset_counters(self) -> None:
        """Zero all counters, including the per-path GET count that ``/cut`` uses."""
        with self._lock:
            self._requests.clear()
            self._bytes.clear()
            self._gets.clear()
            self._headers.clear()
            self._proxied.clear()

    # Called from handler threads.

    def _count_request(self, key: str) -> None:
        with self._lock:
            self._requests[key] += 1

    def _count_get(self, key: str) -> int:
        with self._lock:
            self._gets[key] += 1
            return self._gets[key]

    def _count_bytes(self, key: str, n: int) -> None:
        with self._lock:
            self._bytes[key] += n

    def headers_for(self, path: str) -> list[dict[str, str]]:
        """The headers of each request for ``path`` (query ignored), in arrival order; a
        header sent twice has its values joined with ", " (so a duplicate shows)."""
        with self._lock:
            return [dict(h) for h in self._headers.get(_counter_key(path), [])]

    def proxied_for(self, path: str) -> list[str]:
        """The absolute-form targets of the proxy requests for ``path``, in arrival order."""
        with self._lock:
            return list(self._proxied.get(_counter_key(path), []))

    def _record_headers(self, key: str, items: Iterable[tuple[str, str]], target: str) -> None:
        headers: dict[str, str] = {}
        for name, value in items:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        with self._lock:
            self._headers.setdefault(key, []).append(headers)
            if target.lower().startswith("http://"):
                self._proxied.setdefault(key, []).append(target)


def _main() -> None:
    """``python tests/fileserver.py [--port N]``: serves on 127.0.0.1 (a free port unless
    ``--port``), prints the port on one line and runs until SIGTERM or SIGINT, or until its
    standard input closes with ``--until-stdin-closes`` (so it cannot outlive its parent)."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description="the test file server, on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--until-stdin-closes", action="store_true")
    args = parser.parse_args()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.until_stdin_closes:

        def watch_stdin() -> None:
            sys.stdin.buffer.read()
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
    server = FileServer(port=args.port)
    server.start()
    print(server.base_url.rsplit(":", 1)[1], flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()


if __name__ == "__main__":
    _main()
