"""LAT: a task's end pushed to Socket.IO and SSE clients, timed from its last byte.

The design wants the completion at a client within 100 ms (median) of the last byte, rather
than on the next monitor tick. The service runs with its default timing; only aria2's
completion notification can make it fast. The file comes from a throttled HTTP server in
this process that notes when it wrote each body's last byte; one Socket.IO connection and
one HTTP client stay open for all rounds, like a UI, and every round subscribes both
transports to one task. aria2c's own RPC WebSocket is watched too, as a reference that
splits each latency into aria2's part and draftdl's. See bench/README.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
import socketio
from httpx_sse import aconnect_sse

from bench.common import MIB, BenchError, Context, Json, fmt, log_tail
from bench.profiling import Profile, py_spy
from bench.service import Service, submitted_id, task_body
from bench.stats import Figure, figure_of_series, latency_summary
from bench.verify import verify_dir

LAT_RATE = 4 * MIB  # bytes/s the throttled server sends at
LAT_MIN_SIZE = 2 * MIB
LAT_SPAN = MIB  # sizes in [2, 3) MiB: 0.25 s of spread, the ends cover a whole monitor tick
LAT_CHUNK = 16 * 1024
LAT_TARGET_MS = 100.0
LAT_READY_TIMEOUT_S = 5.0
LAT_PATH = re.compile(r"/lat/r\d+-(\d+)\.bin")
LAT_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
FINAL_EVENTS = {"task_completed", "task_failed", "task_cancelled"}
TRANSPORTS = {"socketio": "Socket.IO", "sse": "SSE"}
LAT_EVENTS = {
    "processing": "task_status_changed processing",
    "completed": "task_completed",
}


class ThrottledServer(ThreadingHTTPServer):
    """Serves /lat/r<N>-<size>.bin (zeros, <size> bytes) at LAT_RATE and notes, per path,
    the wall time its last byte was written: the moment the service's latency counts from."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ThrottledHandler)
        self.lock = threading.Lock()
        self.last_byte: dict[str, float] = {}
        self.bodies: dict[str, int] = {}

    def finished(self, path: str, at: float) -> None:
        with self.lock:
            self.last_byte[path] = max(at, self.last_byte.get(path, at))
            self.bodies[path] = self.bodies.get(path, 0) + 1


class ThrottledHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with Content-Length (keep-alive works) and one optional `bytes=a-b` range."""

    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, like nginx's tcp_nodelay: otherwise Nagle holds a short last segment until
    # aria2's delayed ACK (~40 ms) on a reused connection, and "last byte written" would be
    # that much before aria2 can have it.
    disable_nagle_algorithm = True
    block = bytes(LAT_CHUNK)

    def do_GET(self) -> None:
        srv = self.server
        assert isinstance(srv, ThrottledServer)
        path = urlsplit(self.path).path
        m = LAT_PATH.fullmatch(path)
        if m is None:
            self.send_error(404)
            return
        size = int(m[1])
        start, end = 0, size - 1
        rng = LAT_RANGE.fullmatch(self.headers.get("Range", "").strip())
        if rng is not None:
            start, end = int(rng[1]), min(int(rng[2] or size - 1), size - 1)
            if start > end:
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        length = end - start + 1
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        t0 = time.perf_counter()
        sent = 0
        try:
            while sent < length:
                wait = t0 + sent / LAT_RATE - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                n = min(LAT_CHUNK, length - sent)
                self.wfile.write(self.block[:n])
                sent += n
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return
        if end == size - 1:
            srv.finished(path, time.time())

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a line per request on stderr would be noise in the bench output."""


@contextmanager
def throttled_server() -> Iterator[ThrottledServer]:
    """In a thread of this process; stopped (and its port closed) on the way out."""
    srv = ThrottledServer()
    thread = threading.Thread(target=srv.serve_forever, name="lat-files", daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@dataclass
class Seen:
    """When (time.time()) one client got each event of one task."""

    ready: float | None = None  # subscribed / task_subscribed
    ready_status: str | None = None  # the task's status in that snapshot
    processing: float | None = None
    completed: float | None = None
    final: str | None = None
    ready_evt: asyncio.Event = field(default_factory=asyncio.Event)
    done_evt: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, name: str, data: Any, now: float) -> None:
        data = data if isinstance(data, dict) else {}
        if name in ("subscribed", "task_subscribed"):
            task = data.get("task")
            self.ready = now
            self.ready_status = str(task.get("status")) if isinstance(task, dict) else None
            self.ready_evt.set()
        elif name == "subscribe_error":
            self.final = f"subscribe_error: {data.get('error')}"
            self.ready_evt.set()
            self.done_evt.set()
        elif name == "task_status_changed":
            if data.get("status") == "processing" and self.processing is None:
                self.processing = now
        elif name in FINAL_EVENTS:
            self.final = name
            if name == "task_completed":
                self.completed = now
            self.done_evt.set()


@dataclass
class LatRound:
    """One task: the file's last byte and what each client saw, all wall times in s."""

    task_id: str
    size: int
    submitted: float
    last_byte: float
    seen: dict[str, Seen]
    aria2_done: float | None = None  # aria2's onDownloadComplete reached our own WebSocket

    def latency_ms(self, transport: str, event: str) -> float | None:
        at = getattr(self.seen[transport], event)
        return None if at is None else (at - self.last_byte) * 1000

    def aria2_ms(self) -> float | None:
        return None if self.aria2_done is None else (self.aria2_done - self.last_byte) * 1000

    def as_json(self) -> Json:
        out: Json = {
            "task_id": self.task_id,
            "size": self.size,
            "download_s": self.last_byte - self.submitted,
            "aria2_notified_ms": self.aria2_ms(),
        }
        for tr, s in self.seen.items():
            out[tr] = {
                "ready_before_last_byte_ms": None
                if s.ready is None
                else (self.last_byte - s.ready) * 1000,
                "ready_status": s.ready_status,
                **{f"{ev}_ms": self.latency_ms(tr, ev) for ev in LAT_EVENTS},
            }
        return out


@dataclass
class LatSeries:
    """Every finished round of one server; a failed round ends the series with ``error``."""

    rounds: list[LatRound] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    load_before: tuple[float, float, float] | None = None
    load_after: tuple[float, float, float] | None = None

    def values(self, transport: str, event: str) -> list[float]:
        return [v for r in self.rounds if (v := r.latency_ms(transport, event)) is not None]

    def worst_median(self) -> float | None:
        """The largest of the four medians (both transports, both events)."""
        meds = [
            latency_summary(self.values(tr, ev))["median_ms"]
            for tr in TRANSPORTS
            for ev in LAT_EVENTS
        ]
        return None if not self.rounds or None in meds else max(m for m in meds if m is not None)


async def sse_listen(http: httpx.AsyncClient, url: str, seen: Seen) -> None:
    """Reads the stream until the server closes it after the final event."""
    async with aconnect_sse(http, "GET", url) as source:
        if source.response.status_code != 200:
            await source.response.aread()
            raise BenchError(f"SSE {url} -> HTTP {source.response.status_code}")
        async for sse in source.aiter_sse():
            seen.record(sse.event, json.loads(sse.data) if sse.data else {}, time.time())
    if not seen.done_evt.is_set():
        raise BenchError("SSE stream closed before a final event")


async def lat_round(
    i: int,
    size: int,
    svc: Service,
    files: ThrottledServer,
    sio: Any,
    sio_seen: dict[str, Seen],
    http: httpx.AsyncClient,
    timeout: float,
) -> LatRound:
    """Submit one file, subscribe on both transports at once, wait for both to complete."""
    base = f"http://127.0.0.1:{files.server_address[1]}"
    rel = f"lat/r{i:03d}-{size}.bin"
    submitted = time.time()
    r = await http.post(f"{svc.url}/api/tasks/submit", json=task_body(False, [rel], base))
    tid = submitted_id(r.status_code, r.text, r.json())
    seen = {"socketio": Seen(), "sse": Seen()}
    sio_seen[tid] = seen["socketio"]
    await sio.emit("subscribe_task", {"task_id": tid})
    url = f"{svc.url}/api/tasks/{tid}/progress/stream"
    sse = asyncio.create_task(sse_listen(http, url, seen["sse"]))
    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(seen["socketio"].done_evt.wait(), sse)
    except TimeoutError:
        raise BenchError(
            f"task {tid}: no final event on both transports in {timeout:g} s"
        ) from None
    finally:
        sse.cancel()
        with suppress(asyncio.CancelledError, BenchError):
            await sse
        sio_seen.pop(tid, None)
    for tr, s in seen.items():
        if s.final != "task_completed":
            raise BenchError(f"task {tid}: {TRANSPORTS[tr]} ended with {s.final}")
    last = files.last_byte.get(f"/{rel}")
    if last is None:
        raise BenchError(f"task {tid}: the file server never sent the last byte of /{rel}")
    verify_dir(svc.data_dir / "downloads" / tid, [size])
    return LatRound(tid, size, submitted, last, seen)


def aria2_ws_url(pid: int | None) -> str | None:
    """aria2c's RPC WebSocket, the port read from its own conf: the service moves off the
    port it was given when that one is taken."""
    if pid is None:
        return None
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        conf = next(a.split("=", 1)[1] for a in args if a.startswith("--conf-path="))
        m = re.search(r"^rpc-listen-port=(\d+)$", Path(conf).read_text(), re.MULTILINE)
    except (OSError, StopIteration, UnicodeDecodeError):
        return None
    return None if m is None else f"ws://127.0.0.1:{m[1]}/jsonrpc"


async def watch_aria2(url: str, stamps: list[float], connected: asyncio.Event) -> None:
    """aria2 sends its notifications to every WebSocket client, no secret needed; when one
    arrives splits the latency into aria2's part and draftdl's."""
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        connected.set()
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                now = time.time()
                if json.loads(msg.data).get("method") == "aria2.onDownloadComplete":
                    stamps.append(now)


async def lat_rounds(
    svc: Service,
    files: ThrottledServer,
    sizes: list[int],
    first: int,
    timeout: float,
    run: LatSeries,
) -> None:
    """One Socket.IO connection and one HTTP client for all rounds, as a UI would keep them;
    the rounds run one after another so each task has the service to itself."""
    sio = socketio.AsyncClient(reconnection=False)
    sio_seen: dict[str, Seen] = {}

    async def on_any(event: str, data: Any = None) -> None:
        now = time.time()
        tid = data.get("task_id") if isinstance(data, dict) else None
        seen = sio_seen.get(str(tid))
        if seen is not None:
            seen.record(event, data, now)

    sio.on("*", on_any)
    await sio.connect(svc.url, socketio_path="/socket.io", transports=["websocket"])
    stamps: list[float] = []
    watcher: asyncio.Task[None] | None = None
    url = aria2_ws_url(svc.aria2_pid)
    if url is None:
        run.notes.append("aria2c's RPC port not found; no aria2 reference times")
    else:
        connected = asyncio.Event()
        watcher = asyncio.create_task(watch_aria2(url, stamps, connected))
        waiter = asyncio.create_task(connected.wait())
        await asyncio.wait(
            [watcher, waiter], timeout=LAT_READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()
        if not connected.is_set():
            watcher.cancel()
            reason = (
                "timed out" if not watcher.done() or watcher.cancelled() else watcher.exception()
            )
            run.notes.append(f"aria2 WebSocket {url} not watched ({reason}); no aria2 times")
            watcher = None
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)) as http:
            for i, size in enumerate(sizes, first):
                rnd = await lat_round(i, size, svc, files, sio, sio_seen, http, timeout)
                rnd.aria2_done = next((t for t in stamps if t >= rnd.submitted), None)
                run.rounds.append(rnd)
                for tr, s in rnd.seen.items():
                    if s.ready is None or s.ready > rnd.last_byte:
                        run.notes.append(
                            f"round {i}: {TRANSPORTS[tr]} subscribed after the last byte"
                        )
                    elif s.ready_status not in ("pending", "downloading"):
                        run.notes.append(
                            f"round {i}: {TRANSPORTS[tr]} snapshot already {s.ready_status}"
                        )
                print(f"LAT #{i + 1}: {lat_line(rnd)}")
    finally:
        if watcher is not None:
            watcher.cancel()
            with suppress(asyncio.CancelledError, Exception):  # only reference times lost
                await watcher
        await sio.disconnect()


def lat_line(r: LatRound) -> str:
    parts = [f"download {r.last_byte - r.submitted:.2f} s", f"aria2 {fmt(r.aria2_ms(), '.1f')} ms"]
    for tr, name in TRANSPORTS.items():
        lat = ", ".join(f"{ev} {fmt(r.latency_ms(tr, ev), '.1f')}" for ev in LAT_EVENTS)
        parts.append(f"{name} {lat} ms")
    return "; ".join(parts)


def fmt_load(load: Any) -> str:
    return "-" if not load else "/".join(f"{x:.2f}" for x in load)


class LatencyFamily:
    """LAT over series: one server each, ``--repeat`` rounds (20, or 8 with --quick)."""

    name = "LAT"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.series: list[LatSeries] = []
        rng = random.Random(20240)  # the same sizes every run
        self.rng = rng
        self.rounds_done = 0

    def sizes(self, n: int) -> list[int]:
        return [LAT_MIN_SIZE + self.rng.randrange(LAT_SPAN) for _ in range(n)]

    def run_series(self, rounds: int) -> None:
        s = self.run_one(f"LAT-s{len(self.series) + 1}", rounds)
        self.series.append(s)
        print(f"LAT series {len(self.series)}: worst median {fmt(s.worst_median(), '.1f')} ms")

    def profile(self, profile: Profile, rounds: int) -> None:
        s = self.run_one("LAT-profile", rounds, profile)
        profile.run = {"worst_median_ms": s.worst_median(), "error": s.error}
        profile.error = s.error

    def run_one(self, tag: str, rounds: int, profile: Profile | None = None) -> LatSeries:
        """The service with its default tick settings; only the push path may make it fast."""
        run = LatSeries(load_before=os.getloadavg())
        sizes = self.sizes(rounds)
        first = self.rounds_done
        self.rounds_done += rounds
        svc = Service(self.ctx.tmp, tag, self.ctx.ports, src=self.ctx.src)
        try:
            with throttled_server() as files, httpx.Client(timeout=10) as client:
                svc.start(client)
                spy = nullcontext() if profile is None else py_spy(svc.pid, profile)
                with spy:
                    asyncio.run(lat_rounds(svc, files, sizes, first, self.ctx.timeout, run))
                many = [p for p, k in files.bodies.items() if k > 1]
                if many:
                    run.notes.append(f"{len(many)} file(s) were sent more than once (retry/range)")
        except (BenchError, httpx.HTTPError, ValueError, OSError) as exc:
            run.error = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, BenchError):
                run.error += f"\n{log_tail(svc.log_path)}"
        except Exception as exc:  # socketio's own errors: report, don't lose the other workloads
            run.error = f"{type(exc).__name__}: {exc}\n{log_tail(svc.log_path)}"
        finally:
            run.notes += svc.stop()
            run.load_after = os.getloadavg()
        return run

    def rounds(self) -> list[LatRound]:
        return [r for s in self.series for r in s.rounds]

    def stats(self) -> Json:
        out: Json = {}
        for tr in TRANSPORTS:
            out[tr] = {}
            for ev in LAT_EVENTS:
                vals = [v for s in self.series for v in s.values(tr, ev)]
                st = latency_summary(vals)
                st["meets_target"] = None if not vals else st["median_ms"] <= LAT_TARGET_MS
                out[tr][ev] = st
        return out

    def figures(self) -> dict[str, Figure]:
        stats = self.stats()
        meds = [stats[tr][ev]["median_ms"] for tr in TRANSPORTS for ev in LAT_EVENTS]
        counts = [stats[tr][ev]["n"] for tr in TRANSPORTS for ev in LAT_EVENTS]
        pooled = None if None in meds or not meds else max(m for m in meds if m is not None)
        n = len(self.rounds())
        if any(c != n for c in counts):
            pooled = None  # an event some round did not see: not met
        return {
            "push_median_ms": figure_of_series(
                [s.worst_median() for s in self.series], n, pooled=pooled
            )
        }

    def summary(self) -> Json:
        rounds = self.rounds()
        aria2 = latency_summary([v for r in rounds if (v := r.aria2_ms()) is not None])
        gaps = [
            (s.completed - s.processing) * 1000
            for r in rounds
            if (s := r.seen["socketio"]).completed is not None and s.processing is not None
        ]
        env = os.environ
        return {
            "workload": self.name,
            "family": "latency",
            "title": "completion pushed to Socket.IO / SSE after the last byte",
            "series": len(self.series),
            "rounds": len(rounds),
            "file_sizes": [LAT_MIN_SIZE, LAT_MIN_SIZE + LAT_SPAN],
            "rate_bytes_per_s": LAT_RATE,
            "target": f"median <= {LAT_TARGET_MS:g} ms",
            "settings": {
                "progress_interval": env.get("DRAFTDL_PROGRESS_INTERVAL", "1.0 (default)"),
                "poll_interval": env.get("DRAFTDL_POLL_INTERVAL", "0.25 (default)"),
            },
            "stats": self.stats(),
            "aria2_notified_ms": aria2,
            "processing_to_completed_ms": latency_summary(gaps),
            "loadavg": [[s.load_before, s.load_after] for s in self.series],
            "figures": {k: f.as_json() for k, f in self.figures().items()},
            "errors": [f"series {i}: {s.error}" for i, s in enumerate(self.series, 1) if s.error],
            "notes": sorted({n for s in self.series for n in s.notes}),
            "each": [r.as_json() for r in rounds],
        }
