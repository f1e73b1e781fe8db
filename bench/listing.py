"""LIST: 10,000 stored tasks, the listing's latency and the server's memory.

The tasks are written straight into a fresh database through draftdl's own db layer
(``Database.init`` creates the schema, ``Database.save_task`` stores each task and its file
row as the server does at submit) before any server starts: submitting 10,000 jobs and
letting them download and build their drafts would take minutes. The database is seeded
once per bench run (about 10 s) and copied into each series' data dir. Every task is a
1-file job like SUBMIT's, stored as it ends: mostly completed with a draft path, every 10th
failed with its file's error, every 20th cancelled, the newest first in the listing.

Per series a server starts on the copy; after 20 untimed requests, ``GET
/api/tasks?status=completed`` (the first page, 20 tasks) is timed ``--list-requests`` times
one after another, then, as figures without a target, the unfiltered first page and a deep
page (``offset=5000``). The memory figure is the server's VmRSS (from /proc) after listing;
its peak (VmHWM) and the RSS right after start are recorded beside it. aria2c's memory is
its own process and not counted.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx

from bench.api_load import TINY_PATH, TINY_SIZE
from bench.common import BenchError, Context, Json, fmt, log_tail, proc_cpu_s, proc_memory
from bench.profiling import Profile, py_spy
from bench.service import Service, dig, task_body
from bench.stats import Figure, figure_of_series, latency_summary, median, percentile

SEED_TASKS = 10_000
WARM_REQUESTS = 20
DEEP_OFFSET = 5000
DB_FILES = ("tasks.db", "tasks.db-wal", "tasks.db-shm")


def seed_status(i: int) -> str:
    if i % 10 == 9:
        return "failed"
    if i % 20 == 4:
        return "cancelled"
    return "completed"


def expected_counts(n: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in range(n):
        out[seed_status(i)] = out.get(seed_status(i), 0) + 1
    return out


async def seed_database(data_dir: Path, n: int, base_url: str) -> None:
    """``n`` finished 1-file tasks in ``data_dir``/tasks.db, the server's default database.

    draftdl is imported here, not at the top: with ``--src`` the runner has put that tree
    first on sys.path by then, so the rows are written by the code that will read them.
    """
    from draftdl.db.repo import Database
    from draftdl.model.states import FileStatus, TaskStatus
    from draftdl.model.task import FileState, TaskState, new_gid, utcnow

    db = Database(f"sqlite+aiosqlite:///{(data_dir / 'tasks.db').resolve()}")
    await db.init()
    try:
        start = utcnow() - timedelta(hours=1)
        for i in range(n):
            tid = str(uuid.uuid4())
            created = start + timedelta(milliseconds=300 * i)
            ended = created + timedelta(seconds=1)
            status = TaskStatus(seed_status(i))
            failed = status is TaskStatus.FAILED
            done = status is TaskStatus.COMPLETED
            url = f"{base_url}/{TINY_PATH}"
            file = FileState(
                idx=0,
                url=url,
                file_name="one.bin",
                file_path=str(data_dir / "downloads" / tid / "one.bin"),
                gid=new_gid(),
                status=FileStatus.ERROR if failed else FileStatus.COMPLETE,
                total_length=TINY_SIZE,
                completed_length=0 if failed else TINY_SIZE,
                attempts=4 if failed else 1,
                error_code=3 if failed else None,
                error_message="resource not found (HTTP 404)" if failed else None,
            )
            body = task_body(False, [TINY_PATH], base_url, title=f"seeded {i:05d}")
            task = TaskState(
                id=tid,
                seq=i + 1,
                status=status,
                priority=0,
                request_json=json.dumps(body, ensure_ascii=False),
                created_at=created,
                updated_at=ended,
                files=[file],
                message=None,
                error_message="1 file failed" if failed else None,
                draft_path=str(data_dir / "drafts" / f"seeded {i:05d}") if done else None,
                completed_at=ended if done else None,
                progress_percent=100.0 if done else 0.0,
            )
            await db.save_task(task)
    finally:
        await db.close()


class ListingFamily:
    """The listing's latency and RSS on 10,000 stored tasks, one server per series."""

    name = "LIST"

    def __init__(self, ctx: Context, requests: int) -> None:
        self.ctx = ctx
        self.requests = requests
        self.template: Path | None = None
        self.seed_s: float | None = None
        self.series: list[Json] = []

    def seed(self) -> Path:
        if self.template is None:
            template = self.ctx.tmp / "list-template"
            shutil.rmtree(template, ignore_errors=True)
            template.mkdir()
            t0 = time.perf_counter()
            asyncio.run(seed_database(template, SEED_TASKS, self.ctx.base_url))
            self.seed_s = time.perf_counter() - t0
            print(f"LIST: seeded {SEED_TASKS:,} tasks through draftdl.db in {self.seed_s:.1f} s")
            self.template = template
        return self.template

    def run_series(self, batches: int) -> None:
        s = self.run_one(f"LIST-s{len(self.series) + 1}", batches)
        self.series.append(s)
        print(f"LIST series {len(self.series)}: {list_line(s)}")

    def profile(self, profile: Profile, batches: int) -> None:
        s = self.run_one("LIST-profile", batches, profile)
        profile.run = {"completed": s.get("completed"), "error": s.get("error")}
        profile.error = s.get("error")
        print(f"LIST profiled series: {list_line(s)}")

    def run_one(self, tag: str, batches: int, profile: Profile | None = None) -> Json:
        out: Json = {"error": None, "notes": []}
        data_dir = self.ctx.tmp / f"draftdl-data-{tag}"
        svc = Service(self.ctx.tmp, tag, self.ctx.ports, data_dir=data_dir, src=self.ctx.src)
        try:
            template = self.seed()
            shutil.rmtree(data_dir, ignore_errors=True)
            data_dir.mkdir()
            for name in DB_FILES:
                if (template / name).exists():
                    shutil.copy2(template / name, data_dir / name)
            with httpx.Client(timeout=30) as client:
                svc.start(client, fresh=False)
                out["rss_start_mib"] = (proc_memory(svc.pid) or {}).get("vmrss")
                url = f"{svc.url}/api/tasks"
                completed = {"status": "completed"}
                for _ in range(WARM_REQUESTS):
                    client.get(url, params=completed)
                srv0 = proc_cpu_s(svc.pid)
                if profile is not None:
                    with py_spy(svc.pid, profile):
                        times = self.timed(client, url, completed, self.requests * batches)
                else:
                    times = self.timed(client, url, completed, self.requests * batches)
                srv1 = proc_cpu_s(svc.pid)
                out["completed"] = latency_summary(times)
                out["completed_ms"] = times
                out["server_cpu_ms_per_request"] = (
                    None if srv0 is None or srv1 is None else (srv1 - srv0) * 1000 / len(times)
                )
                extra = max(self.requests // 4, 1)
                out["unfiltered"] = latency_summary(self.timed(client, url, {}, extra))
                deep = {"status": "completed", "offset": DEEP_OFFSET}
                out["deep_page"] = latency_summary(self.timed(client, url, deep, extra))
                mem = proc_memory(svc.pid) or {}
                out["rss_mib"] = mem.get("vmrss")
                out["hwm_mib"] = mem.get("vmhwm")
                out["aria2_rss_mib"] = (proc_memory(svc.current_aria2()) or {}).get("vmrss")
        except (BenchError, httpx.HTTPError, ValueError, OSError) as exc:
            out["error"] = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, BenchError):
                out["error"] += f"\n{log_tail(svc.log_path)}"
        finally:
            out["notes"] += svc.stop()
        return out

    @staticmethod
    def timed(client: httpx.Client, url: str, params: Json, n: int) -> list[float]:
        """``n`` requests one after another, each checked: a full page and the right total."""
        want = expected_counts(SEED_TASKS)
        status = params.get("status")
        total = want.get(str(status), 0) if status else SEED_TASKS
        offset = int(params.get("offset", 0))
        page = min(20, max(total - offset, 0))
        times: list[float] = []
        for _ in range(n):
            t0 = time.perf_counter()
            r = client.get(url, params=params)
            times.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                raise BenchError(f"GET {r.url} -> HTTP {r.status_code}: {r.text[:300]}")
            answer = r.json()
            got_total, tasks = dig(answer, "total"), dig(answer, "tasks")
            if got_total != total or not isinstance(tasks, list) or len(tasks) != page:
                raise BenchError(
                    f"GET {r.url}: total {got_total} (want {total}), "
                    f"{len(tasks) if isinstance(tasks, list) else tasks!r} tasks (want {page})"
                )
        return times

    def figures(self) -> dict[str, Figure]:
        ok = [s for s in self.series if not s["error"]]
        pooled = [v for s in ok for v in s["completed_ms"]]
        rss = [s.get("rss_mib") for s in self.series]
        good_rss = [v for v in rss if v is not None]
        return {
            "completed_p95_ms": figure_of_series(
                [
                    percentile(s["completed_ms"], 95) if not s["error"] else None
                    for s in self.series
                ],
                len(pooled),
                pooled=percentile(pooled, 95),
            ),
            "rss_mib": figure_of_series(
                rss, len(good_rss), pooled=max(good_rss) if good_rss else None
            ),
        }

    def summary(self) -> Json:
        ok = [s for s in self.series if not s["error"]]
        pooled = [v for s in ok for v in s["completed_ms"]]
        return {
            "workload": self.name,
            "family": "listing",
            "title": f"GET /api/tasks?status=completed with {SEED_TASKS:,} tasks stored",
            "series": len(self.series),
            "seeded_tasks": SEED_TASKS,
            "seeded_by": "draftdl.db.repo.Database.save_task before the server starts",
            "seed_s": self.seed_s,
            "expected": expected_counts(SEED_TASKS),
            "completed": latency_summary(pooled),
            "unfiltered_p95_ms": median(s["unfiltered"]["p95_ms"] for s in ok),
            "deep_page_p95_ms": median(s["deep_page"]["p95_ms"] for s in ok),
            "server_cpu_ms_per_request": median(s["server_cpu_ms_per_request"] for s in ok),
            "rss_start_mib": median(s.get("rss_start_mib") for s in ok),
            "rss_mib": median(s.get("rss_mib") for s in ok),
            "hwm_mib": median(s.get("hwm_mib") for s in ok),
            "aria2_rss_mib": median(s.get("aria2_rss_mib") for s in ok),
            "figures": {k: f.as_json() for k, f in self.figures().items()},
            "errors": [
                f"series {i}: {s['error']}" for i, s in enumerate(self.series, 1) if s["error"]
            ],
            "notes": sorted({n for s in self.series for n in s["notes"]}),
            "each_series": [
                {k: v for k, v in s.items() if k != "completed_ms"} for s in self.series
            ],
        }


def list_line(s: Json) -> str:
    if s["error"]:
        return f"ERROR {str(s['error']).splitlines()[0]}"
    c = s["completed"]
    return (
        f"status=completed n={c['n']} p50 {fmt(c['median_ms'], '.1f')} "
        f"p95 {fmt(c['p95_ms'], '.1f')} p99 {fmt(c['p99_ms'], '.1f')} ms; "
        f"unfiltered p95 {fmt(s['unfiltered']['p95_ms'], '.1f')} ms, "
        f"offset {DEEP_OFFSET} p95 {fmt(s['deep_page']['p95_ms'], '.1f')} ms; "
        f"RSS {fmt(s.get('rss_mib'), '.0f')} MiB (peak {fmt(s.get('hwm_mib'), '.0f')}, "
        f"at start {fmt(s.get('rss_start_mib'), '.0f')})"
    )
