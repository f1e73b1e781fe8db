"""The API under load: reads and submits while W2 downloads, and submit throughput.

API: each round is W2 (10 tasks x 20 pictures x 1 MiB) submitted by 10 clients at once; a
reader polls ``GET /api/tasks/{id}`` over the round's tasks (round robin, the next request
20 ms after the last answer, like a dashboard) until all ten are completed with their drafts.
Every submit and every read is timed from sending to the whole answer read (closed loop: a
stall shows as one long sample, not as many). Percentiles are pooled over all rounds of all
series; the spread is the per-series percentile.

SUBMIT: 20 clients submit 1-file jobs (one 4 KiB file from nginx, no testData) as fast as
the server answers, each sending its next job when the last is answered; the rate is the
jobs answered 200 over the wall time from the first send to the last answer. The tasks
download meanwhile, as they would. Every answer must carry a task id, and the server's
listing must count them all afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import aiohttp
import httpx

from bench.common import (
    BenchError,
    Context,
    Json,
    fmt,
    gather_all,
    log_tail,
    proc_cpu_s,
    self_cpu_s,
)
from bench.downloads import DownloadWorkload
from bench.profiling import Profile, py_spy
from bench.service import (
    Service,
    dig,
    is_completed,
    is_downloaded,
    submitted_id,
    task_body,
    task_problem,
)
from bench.stats import Figure, figure_of_series, latency_summary, median, percentile
from bench.verify import check_draft, verify_dir

READ_PAUSE_S = 0.02
SUBMIT_CLIENTS = 20
TINY_PATH = "tiny/one.bin"
TINY_SIZE = 4096


def client_session(connections: int, timeout: float) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, force_close=False),
        timeout=aiohttp.ClientTimeout(total=timeout),
    )


@dataclass
class ApiSeries:
    get_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    dl_s: list[float] = field(default_factory=list)
    e2e_s: list[float] = field(default_factory=list)
    drafts_ok: int = 0
    drafts_total: int = 0
    server_cpu_s: float | None = None
    aria2_cpu_s: float | None = None
    client_cpu_s: float | None = None
    seconds: float | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)


class ApiLoadFamily:
    """GET and submit latency while W2 runs, over ``--repeat`` rounds per series."""

    name = "API"

    def __init__(self, ctx: Context, w2: DownloadWorkload) -> None:
        self.ctx = ctx
        self.w2 = w2
        self.series: list[ApiSeries] = []

    def run_series(self, rounds: int) -> None:
        s = self.run_one(f"API-s{len(self.series) + 1}", rounds)
        self.series.append(s)
        print(f"API series {len(self.series)}: {series_line(s)}")

    def profile(self, profile: Profile, rounds: int) -> None:
        s = self.run_one("API-profile", rounds, profile)
        profile.run = {
            "get": latency_summary(s.get_ms),
            "submit": latency_summary(s.submit_ms),
            "error": s.error,
        }
        profile.error = s.error
        print(f"API profiled series: {series_line(s)}")

    def run_one(self, tag: str, rounds: int, profile: Profile | None = None) -> ApiSeries:
        out = ApiSeries()
        svc = Service(self.ctx.tmp, tag, self.ctx.ports, src=self.ctx.src)
        try:
            with httpx.Client(timeout=30) as client:
                svc.start(client)
            spy = nullcontext() if profile is None else py_spy(svc.pid, profile)
            with spy:
                srv0, aria0, me0 = proc_cpu_s(svc.pid), proc_cpu_s(svc.aria2_pid), self_cpu_s()
                t0 = time.perf_counter()
                asyncio.run(self.rounds(svc, rounds, out))
                out.seconds = time.perf_counter() - t0
                srv1, aria1 = proc_cpu_s(svc.pid), proc_cpu_s(svc.aria2_pid)
                out.client_cpu_s = self_cpu_s() - me0
            if srv0 is not None and srv1 is not None:
                out.server_cpu_s = srv1 - srv0
            if aria0 is not None and aria1 is not None:
                out.aria2_cpu_s = aria1 - aria0
        except (BenchError, httpx.HTTPError, aiohttp.ClientError, ValueError) as exc:
            out.error = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, BenchError):
                out.error += f"\n{log_tail(svc.log_path)}"
        except TimeoutError:
            out.error = f"a round took longer than {self.ctx.timeout:g} s"
        finally:
            out.notes += svc.stop()
        return out

    async def rounds(self, svc: Service, rounds: int, out: ApiSeries) -> None:
        async with client_session(0, self.ctx.timeout) as http:
            for r in range(rounds):
                async with asyncio.timeout(self.ctx.timeout):
                    ids, views = await self.round(http, svc, r, out)
                downloads = svc.data_dir / "downloads"
                for tid, paths in zip(ids, self.w2.rel_paths(), strict=True):
                    verify_dir(downloads / tid, [self.w2.file_size] * len(paths))
                    out.drafts_total += 1
                    problem = check_draft(True, len(paths), views[tid], downloads / tid)
                    if problem is None:
                        out.drafts_ok += 1
                    else:
                        out.notes.append(f"draft of task {tid}: {problem}")

    async def round(
        self, http: aiohttp.ClientSession, svc: Service, r: int, out: ApiSeries
    ) -> tuple[list[str], dict[str, Json]]:
        """One W2: 10 submits at once and the reader, until every task is completed."""
        paths = self.w2.rel_paths()
        bodies = [
            task_body(True, p, self.ctx.base_url, title=f"api r{r} t{t}")
            for t, p in enumerate(paths)
        ]
        ids: list[str | None] = [None] * len(bodies)
        downloaded: dict[str, float] = {}
        completed: dict[str, Json] = {}
        first = asyncio.Event()
        t0 = time.perf_counter()

        async def submit(i: int, body: Json) -> None:
            ts = time.perf_counter()
            async with http.post(f"{svc.url}/api/tasks/submit", json=body) as resp:
                text = await resp.text()
                status = resp.status
            out.submit_ms.append((time.perf_counter() - ts) * 1000)
            ids[i] = submitted_id(status, text, json.loads(text))
            first.set()

        async def reader() -> None:
            await first.wait()
            k = 0
            while len(completed) < len(bodies):
                known = [t for t in ids if t is not None and t not in completed]
                if not known:
                    await asyncio.sleep(READ_PAUSE_S)
                    continue
                tid = known[k % len(known)]
                k += 1
                ts = time.perf_counter()
                async with http.get(f"{svc.url}/api/tasks/{tid}") as resp:
                    raw = await resp.read()
                    status = resp.status
                now = time.perf_counter()
                out.get_ms.append((now - ts) * 1000)
                if status != 200:
                    raise BenchError(f"GET /api/tasks/{tid} -> HTTP {status}: {raw[:300]!r}")
                view = json.loads(raw)
                problem = task_problem(view)
                if problem is not None:
                    raise BenchError(f"task {tid} {problem}")
                if is_downloaded(view):
                    downloaded.setdefault(tid, now)
                if is_completed(view):
                    completed[tid] = view
                await asyncio.sleep(READ_PAUSE_S)

        await gather_all(*(submit(i, b) for i, b in enumerate(bodies)), reader())
        out.dl_s.append(max(downloaded.values()) - t0)
        out.e2e_s.append(time.perf_counter() - t0)
        got = [t for t in ids if t is not None]
        return got, completed

    def figures(self) -> dict[str, Figure]:
        gets = [v for s in self.series for v in s.get_ms]
        subs = [v for s in self.series for v in s.submit_ms]
        return {
            "get_p99_ms": figure_of_series(
                [percentile(s.get_ms, 99) for s in self.series],
                len(gets),
                pooled=percentile(gets, 99),
            ),
            "submit_p99_ms": figure_of_series(
                [percentile(s.submit_ms, 99) for s in self.series],
                len(subs),
                pooled=percentile(subs, 99),
            ),
        }

    def summary(self) -> Json:
        gets = [v for s in self.series for v in s.get_ms]
        subs = [v for s in self.series for v in s.submit_ms]
        return {
            "workload": self.name,
            "family": "api",
            "title": "GET /api/tasks/{id} during W2, its 10 submits at once",
            "series": len(self.series),
            "rounds": sum(len(s.e2e_s) for s in self.series),
            "read_pause_s": READ_PAUSE_S,
            "get": latency_summary(gets),
            "submit": latency_summary(subs),
            "round_dl_s": median(v for s in self.series for v in s.dl_s),
            "round_e2e_s": median(v for s in self.series for v in s.e2e_s),
            "drafts": f"{sum(s.drafts_ok for s in self.series)}/"
            f"{sum(s.drafts_total for s in self.series)}",
            "server_cpu_s": median(s.server_cpu_s for s in self.series),
            "client_cpu_s": median(s.client_cpu_s for s in self.series),
            "figures": {k: f.as_json() for k, f in self.figures().items()},
            "errors": [f"series {i}: {s.error}" for i, s in enumerate(self.series, 1) if s.error],
            "notes": sorted({n for s in self.series for n in s.notes}),
            "each_series": [
                {
                    "get": latency_summary(s.get_ms),
                    "submit": latency_summary(s.submit_ms),
                    "dl_s": s.dl_s,
                    "e2e_s": s.e2e_s,
                    "drafts_ok": s.drafts_ok,
                    "drafts_total": s.drafts_total,
                    "server_cpu_s": s.server_cpu_s,
                    "aria2_cpu_s": s.aria2_cpu_s,
                    "client_cpu_s": s.client_cpu_s,
                    "seconds": s.seconds,
                    "error": s.error,
                }
                for s in self.series
            ],
        }


def series_line(s: ApiSeries) -> str:
    if s.error:
        return f"ERROR {s.error.splitlines()[0]}"
    g, u = latency_summary(s.get_ms), latency_summary(s.submit_ms)
    return (
        f"{len(s.e2e_s)} rounds, GET n={g['n']} p50 {fmt(g['median_ms'], '.1f')} "
        f"p99 {fmt(g['p99_ms'], '.1f')} ms; submit n={u['n']} p50 {fmt(u['median_ms'], '.1f')} "
        f"p99 {fmt(u['p99_ms'], '.1f')} ms; drafts {s.drafts_ok}/{s.drafts_total}"
    )


# --------------------------------------------------------------------------- SUBMIT


@dataclass
class Burst:
    jobs: int
    ok: int = 0
    seconds: float | None = None
    latencies_ms: list[float] = field(default_factory=list)
    server_cpu_s: float | None = None
    client_cpu_s: float | None = None

    @property
    def rate(self) -> float | None:
        return self.ok / self.seconds if self.seconds else None


@dataclass
class SubmitSeries:
    bursts: list[Burst] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)


class SubmitFamily:
    """Submits per second with 20 clients, ``--repeat`` bursts per series on one server."""

    name = "SUBMIT"

    def __init__(self, ctx: Context, jobs: int) -> None:
        self.ctx = ctx
        self.jobs = jobs
        self.series: list[SubmitSeries] = []

    def run_series(self, bursts: int) -> None:
        s = self.run_one(f"SUBMIT-s{len(self.series) + 1}", bursts)
        self.series.append(s)
        print(f"SUBMIT series {len(self.series)}: {submit_line(s)}")

    def profile(self, profile: Profile, bursts: int) -> None:
        s = self.run_one("SUBMIT-profile", bursts, profile)
        profile.run = {"rate_per_s": [b.rate for b in s.bursts], "error": s.error}
        profile.error = s.error
        print(f"SUBMIT profiled series: {submit_line(s)}")

    def run_one(self, tag: str, bursts: int, profile: Profile | None = None) -> SubmitSeries:
        out = SubmitSeries()
        svc = Service(self.ctx.tmp, tag, self.ctx.ports, src=self.ctx.src)
        body = task_body(False, [TINY_PATH], self.ctx.base_url, title="submit")
        try:
            with httpx.Client(timeout=30) as client:
                svc.start(client)
                spy = nullcontext() if profile is None else py_spy(svc.pid, profile)
                with spy:
                    for _ in range(bursts):
                        burst = Burst(self.jobs)
                        srv0, me0 = proc_cpu_s(svc.pid), self_cpu_s()
                        asyncio.run(self.burst(svc, body, burst))
                        srv1 = proc_cpu_s(svc.pid)
                        burst.client_cpu_s = self_cpu_s() - me0
                        if srv0 is not None and srv1 is not None:
                            burst.server_cpu_s = srv1 - srv0
                        out.bursts.append(burst)
                r = client.get(f"{svc.url}/api/tasks", params={"limit": 1})
                total = dig(r.json(), "total")
                stored = sum(b.ok for b in out.bursts)
                if total != stored:
                    raise BenchError(f"{stored} submits answered, the listing counts {total}")
        except (BenchError, httpx.HTTPError, aiohttp.ClientError, ValueError) as exc:
            out.error = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, BenchError):
                out.error += f"\n{log_tail(svc.log_path)}"
        except TimeoutError:
            out.error = f"a burst took longer than {self.ctx.timeout:g} s"
        finally:
            out.notes += svc.stop()
        return out

    async def burst(self, svc: Service, body: Json, burst: Burst) -> None:
        await submit_burst([svc.url], body, burst, self.ctx.timeout)

    def figures(self) -> dict[str, Figure]:
        per = [median(b.rate for b in s.bursts) if not s.error else None for s in self.series]
        return {
            "submits_per_s": figure_of_series(per, sum(b.ok for s in self.series for b in s.bursts))
        }

    def summary(self) -> Json:
        bursts = [b for s in self.series for b in s.bursts]
        lats = [v for b in bursts for v in b.latencies_ms]
        return {
            "workload": self.name,
            "family": "api",
            "title": f"{SUBMIT_CLIENTS} clients submitting 1-file jobs",
            "series": len(self.series),
            "jobs_per_burst": self.jobs,
            "clients": SUBMIT_CLIENTS,
            "rate_per_s": median(b.rate for b in bursts),
            "latency": latency_summary(lats),
            "server_cpu_s": median(b.server_cpu_s for b in bursts),
            "client_cpu_s": median(b.client_cpu_s for b in bursts),
            "burst_s": median(b.seconds for b in bursts),
            "figures": {k: f.as_json() for k, f in self.figures().items()},
            "errors": [f"series {i}: {s.error}" for i, s in enumerate(self.series, 1) if s.error],
            "notes": sorted({n for s in self.series for n in s.notes}),
            "each_burst": [
                {
                    "jobs": b.jobs,
                    "ok": b.ok,
                    "seconds": b.seconds,
                    "rate_per_s": b.rate,
                    "latency": latency_summary(b.latencies_ms),
                    "server_cpu_s": b.server_cpu_s,
                    "client_cpu_s": b.client_cpu_s,
                }
                for b in bursts
            ],
        }


async def submit_burst(urls: list[str], body: Json, burst: Burst, timeout: float) -> None:
    """``burst.jobs`` submits by SUBMIT_CLIENTS clients, client i to ``urls[i % len(urls)]``
    (one server, or api nodes shared out evenly), each posting its next job once the last
    is answered; the first bad answer stops them all."""
    payload = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    left = burst.jobs
    errors: list[str] = []

    async def client(http: aiohttp.ClientSession, url: str) -> None:
        nonlocal left
        while left > 0 and not errors:
            left -= 1
            ts = time.perf_counter()
            async with http.post(f"{url}/api/tasks/submit", data=payload, headers=headers) as resp:
                text = await resp.text()
                status = resp.status
            burst.latencies_ms.append((time.perf_counter() - ts) * 1000)
            try:
                submitted_id(status, text, json.loads(text))
            except (BenchError, ValueError) as exc:
                errors.append(str(exc))
                return
            burst.ok += 1

    async with client_session(SUBMIT_CLIENTS, timeout) as http:
        async with asyncio.timeout(timeout):
            t0 = time.perf_counter()
            await gather_all(*(client(http, urls[i % len(urls)]) for i in range(SUBMIT_CLIENTS)))
            burst.seconds = time.perf_counter() - t0
    if errors:
        raise BenchError(f"{len(errors)} submit(s) failed, first: {errors[0]}")


def submit_line(s: SubmitSeries) -> str:
    if s.error:
        return f"ERROR {s.error.splitlines()[0]}"
    parts = []
    for b in s.bursts:
        lat = latency_summary(b.latencies_ms)
        parts.append(
            f"{b.ok} jobs in {fmt(b.seconds, '.2f')} s = {fmt(b.rate, '.0f')}/s "
            f"(p50 {fmt(lat['median_ms'], '.1f')} ms, p99 {fmt(lat['p99_ms'], '.1f')} ms, "
            f"client CPU {fmt(b.client_cpu_s, '.2f')} s)"
        )
    return "; ".join(parts)
