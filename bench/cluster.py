"""CLUSTER: the cluster roles (api and worker nodes on PostgreSQL) beside the single process,
all on this one machine. No targets: the figures sit next to the single-process ones.

Each round has two parts, each side in an order rotated from round to round so machine
noise hits every side:

- W5 (100 tasks x 10 pictures x 1 MiB, W5's files from nginx) by bare aria2c, the single
  process (role all, SQLite), 1 api node + 1 worker and 1 api node + 2 workers. The cluster's
  tasks are all submitted to the api node and watched there (it reads the database), timed
  like the single process: until every task is downloaded, and until every task is
  completed; the drafts are checked. Ratios are over the bare run of the same round. Which
  worker ran what comes from the workers' logs ("claimed task <id>"): a task's row lets go
  of its owner when it ends.
- Submit throughput: SUBMIT's 20 clients and 1-file job, ``CLUSTER_SUBMIT_JOBS`` jobs, on
  the single process, 1 api node and 2 api nodes (client i talks to node i mod 2). No worker
  runs, so only the submit path (store and enqueue) is measured.

Every PostgreSQL run gets a new database in one throwaway PostgreSQL cluster (bench/
postgres.py) started at CLUSTER's first run and stopped at the end of the bench. Nodes share
a downloads and a drafts folder of the run; each has its own data dir and ports.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
import httpx

from bench.api_load import SUBMIT_CLIENTS, TINY_PATH, Burst, submit_burst
from bench.common import BenchError, Context, Json, fmt, log_tail, proc_cpu_s, self_cpu_s
from bench.downloads import DownloadWorkload, Run, run_bare, run_draftdl
from bench.postgres import Postgres, postgres_cluster
from bench.profiling import Profile
from bench.service import (
    Service,
    dig,
    is_completed,
    is_downloaded,
    poll_until,
    submit_all,
    task_body,
)
from bench.stats import Figure, figure_of_series, latency_summary, median
from bench.verify import check_draft, verify_dir

W5_SIDES = {
    "bare": "bare aria2c",
    "single": "single process (SQLite)",
    "pg1": "1 api + 1 worker (PostgreSQL)",
    "pg2": "1 api + 2 workers (PostgreSQL)",
}
WORKERS = {"pg1": 1, "pg2": 2}
SUBMIT_SIDES = {
    "single": "single process (SQLite)",
    "api1": "1 api node (PostgreSQL)",
    "api2": "2 api nodes (PostgreSQL)",
}
API_NODES = {"api1": 1, "api2": 2}
CLUSTER_SUBMIT_JOBS = 600
CLAIMED = re.compile(r"claimed task (\S+) \(")


@dataclass
class W5Run:
    """One side's W5: times, drafts, and for a cluster which worker claimed how many tasks
    and each node's CPU (main process; aria2c apart) from submit to the last completed."""

    side: str
    series: int
    round: int
    position: int  # 0: went first in its round
    dl_s: float | None = None
    e2e_s: float | None = None
    drafts_ok: int | None = None
    drafts_total: int | None = None
    claims: dict[str, int] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class SubmitRun:
    side: str
    series: int
    round: int
    position: int
    burst: Burst | None = None
    server_cpu_s: float | None = None  # all the side's server processes together
    error: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Round:
    w5: dict[str, W5Run] = field(default_factory=dict)
    submit: dict[str, SubmitRun] = field(default_factory=dict)

    def ratio(self, side: str, get: Callable[[W5Run], float | None]) -> float | None:
        """``side``'s time over the bare time of the same round, when both succeeded."""
        bare, run = self.w5.get("bare"), self.w5.get(side)
        if bare is None or run is None or bare.error or run.error or not bare.dl_s:
            return None
        v = get(run)
        return None if v is None else v / bare.dl_s


def rotated(names: list[str], k: int) -> list[str]:
    k %= len(names)
    return names[k:] + names[:k]


def from_single(run: Run, side: str, rnd: int, position: int) -> W5Run:
    """A downloads.Run (bare or single process) as one side of a round."""
    out = W5Run(side, run.series, rnd, position, run.dl_s, run.e2e_s)
    out.drafts_ok, out.drafts_total = run.drafts_ok, run.drafts_total
    out.error, out.notes = run.error, list(run.notes)
    if side == "single" and run.server_cpu_s is not None and run.draft_cpu_s is not None:
        out.cpu_s["server"] = run.server_cpu_s + run.draft_cpu_s
    return out


def database_name(tag: str) -> str:
    return "bench_" + re.sub(r"[^a-z0-9]+", "_", tag.lower())


class Nodes:
    """The nodes of one cluster run: one database, a shared downloads and drafts folder;
    each node its own data dir, ports and log. Always stopped, workers first."""

    def __init__(self, ctx: Context, pg: Postgres, tag: str) -> None:
        self.ctx = ctx
        self.tag = tag
        self.shared = ctx.tmp / f"cluster-{tag}"
        self.downloads = self.shared / "downloads"
        self.env = {
            "DRAFTDL_DATABASE_URL": pg.create_database(database_name(tag)),
            "DRAFTDL_DOWNLOADS_PATH": str(self.downloads),
            "DRAFTDL_DRAFTS_ROOT": str(self.shared / "drafts"),
        }
        self.nodes: dict[str, Service] = {}

    def add(self, name: str, role: str) -> Service:
        svc = Service(
            self.ctx.tmp,
            f"{self.tag}-{name}",
            self.ctx.ports,
            env=self.env,
            src=self.ctx.src,
            args=["--role", role, "--node-name", name],
        )
        self.nodes[name] = svc
        return svc

    def workers(self) -> dict[str, Service]:
        return {n: s for n, s in self.nodes.items() if n.startswith("w")}

    def cpu(self) -> dict[str, float]:
        """Each node's main process, and each worker's aria2c, now."""
        out: dict[str, float] = {}
        for name, svc in self.nodes.items():
            v = proc_cpu_s(svc.pid)
            if v is not None:
                out[name] = v
            if name in self.workers():
                a = proc_cpu_s(svc.current_aria2())
                if a is not None:
                    out[f"{name} aria2c"] = a
        return out

    def logs_tail(self) -> str:
        return "\n".join(f"--- {n}:\n{log_tail(s.log_path, 8)}" for n, s in self.nodes.items())

    def stop(self) -> list[str]:
        notes: list[str] = []
        for name, svc in reversed(self.nodes.items()):
            notes += [f"{name}: {n}" for n in svc.stop()]
        shutil.rmtree(self.shared, ignore_errors=True)
        return notes


def claimed(log_path: Path, ids: set[str]) -> int:
    """Tasks of this run the worker's log says it claimed (each counted once)."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return 0
    return len({m[1] for m in CLAIMED.finditer(text)} & ids)


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in before if k in after}


def run_cluster_w5(
    wl: DownloadWorkload, ctx: Context, pg: Postgres, tag: str, out: W5Run, workers: int
) -> None:
    """W5 submitted to the api node, watched there, run by ``workers`` workers."""
    nodes: Nodes | None = None
    try:
        nodes = Nodes(ctx, pg, tag)
        api = nodes.add("api1", "api")
        for i in range(1, workers + 1):
            nodes.add(f"w{i}", "worker")
        with httpx.Client(timeout=30) as client:
            for svc in nodes.nodes.values():  # the api node first: it migrates the database
                svc.start(client)
            bodies = [task_body(wl.pictures, p, ctx.base_url) for p in wl.rel_paths()]
            cpu0 = nodes.cpu()
            t0 = time.perf_counter()
            ids = submit_all(api.url, bodies)
            poll_until(client, api.url, ids, is_downloaded, t0, ctx.timeout)
            out.dl_s = time.perf_counter() - t0
            views = poll_until(client, api.url, ids, is_completed, t0, ctx.timeout)
            out.e2e_s = time.perf_counter() - t0
            out.cpu_s = cpu_spent(cpu0, nodes.cpu())
        for tid, paths in zip(ids, wl.rel_paths(), strict=True):
            verify_dir(nodes.downloads / tid, [wl.file_size] * len(paths))
        out.drafts_total, out.drafts_ok = len(ids), 0
        for tid in ids:
            problem = check_draft(wl.pictures, wl.files_per_task, views[tid], nodes.downloads / tid)
            if problem is None:
                out.drafts_ok += 1
            else:
                out.notes.append(f"draft of task {tid}: {problem}")
        wanted = set(ids)
        out.claims = {n: claimed(s.log_path, wanted) for n, s in nodes.workers().items()}
        if sum(out.claims.values()) != len(ids):
            out.notes.append(f"{sum(out.claims.values())} claims logged for {len(ids)} tasks")
    except (BenchError, httpx.HTTPError, ValueError) as exc:
        out.error = f"{type(exc).__name__}: {exc}"
        if nodes is not None and not isinstance(exc, BenchError):
            out.error += f"\n{nodes.logs_tail()}"
    finally:
        if nodes is not None:
            out.notes += nodes.stop()


def run_submit_burst(
    ctx: Context, pg: Postgres | None, tag: str, out: SubmitRun, api_nodes: int, jobs: int
) -> None:
    """One burst on the single process (``pg`` None) or on ``api_nodes`` api nodes of a
    fresh database with no worker; then the listing must count every job answered."""
    nodes: Nodes | None = None
    single: Service | None = None
    servers: list[Service] = []
    try:
        if pg is None:
            single = Service(ctx.tmp, tag, ctx.ports, src=ctx.src)
            servers = [single]
        else:
            nodes = Nodes(ctx, pg, tag)
            servers = [nodes.add(f"api{i}", "api") for i in range(1, api_nodes + 1)]
        body = task_body(False, [TINY_PATH], ctx.base_url, title="submit")
        with httpx.Client(timeout=30) as client:
            for svc in servers:
                svc.start(client)
            burst = Burst(jobs)
            cpu0, me0 = [proc_cpu_s(s.pid) for s in servers], self_cpu_s()
            asyncio.run(submit_burst([s.url for s in servers], body, burst, ctx.timeout))
            cpu1 = [proc_cpu_s(s.pid) for s in servers]
            burst.client_cpu_s = self_cpu_s() - me0
            out.burst = burst
            spent = [
                b - a for a, b in zip(cpu0, cpu1, strict=True) if a is not None and b is not None
            ]
            if len(spent) == len(servers):
                out.server_cpu_s = sum(spent)
            r = client.get(f"{servers[-1].url}/api/tasks", params={"limit": 1})
            total = dig(r.json(), "total")
            if total != burst.ok:
                raise BenchError(f"{burst.ok} submits answered, the listing counts {total}")
    except (BenchError, httpx.HTTPError, aiohttp.ClientError, ValueError) as exc:
        out.error = f"{type(exc).__name__}: {exc}"
        if nodes is not None and not isinstance(exc, BenchError):
            out.error += f"\n{nodes.logs_tail()}"
        elif single is not None and not isinstance(exc, BenchError):
            out.error += f"\n{log_tail(single.log_path)}"
    except TimeoutError:
        out.error = f"the burst took longer than {ctx.timeout:g} s"
    finally:
        if single is not None:
            out.notes += single.stop()
        if nodes is not None:
            out.notes += nodes.stop()


def w5_line(r: W5Run) -> str:
    if r.error:
        return f"ERROR {r.error.splitlines()[0]}"
    if r.side == "bare":
        return f"{fmt(r.dl_s)} s"
    text = (
        f"downloads {fmt(r.dl_s)} s, end to end {fmt(r.e2e_s)} s, "
        f"drafts {r.drafts_ok}/{r.drafts_total}"
    )
    if r.claims:
        text += ", tasks per worker " + " ".join(f"{n}={c}" for n, c in r.claims.items())
    if r.cpu_s:
        text += ", CPU s " + " ".join(f"{n}={v:.1f}" for n, v in r.cpu_s.items())
    return text


def submit_run_line(r: SubmitRun) -> str:
    if r.error or r.burst is None:
        return f"ERROR {(r.error or 'no burst').splitlines()[0]}"
    b = r.burst
    lat = latency_summary(b.latencies_ms)
    return (
        f"{b.ok} jobs in {fmt(b.seconds, '.2f')} s = {fmt(b.rate, '.0f')}/s "
        f"(p50 {fmt(lat['median_ms'], '.1f')} ms, p99 {fmt(lat['p99_ms'], '.1f')} ms, "
        f"server CPU {fmt(r.server_cpu_s, '.2f')} s, client CPU {fmt(b.client_cpu_s, '.2f')} s)"
    )


class ClusterFamily:
    """CLUSTER over all its series: ``--repeat`` rounds per series, each both parts."""

    name = "CLUSTER"

    def __init__(
        self, ctx: Context, w5: DownloadWorkload, jobs: int, warmup: int, stack: ExitStack
    ) -> None:
        self.ctx = ctx
        self.w5 = w5
        self.jobs = jobs
        self.warmup = warmup
        self.stack = stack  # the runner's: PostgreSQL stops with the bench, whatever ends it
        self.pg: Postgres | None = None
        self.pg_error: str | None = None
        self.warmed = False
        self.rounds_done = 0
        self.series: list[list[Round]] = []

    def postgres(self) -> Postgres:
        """The one PostgreSQL of this bench run, started at the first need."""
        if self.pg is None:
            if self.pg_error is not None:
                raise BenchError(self.pg_error)
            t0 = time.perf_counter()
            try:
                self.pg = self.stack.enter_context(
                    postgres_cluster(self.ctx.tmp / "postgres", self.ctx.ports)
                )
            except BenchError as exc:
                self.pg_error = f"PostgreSQL: {exc}"
                raise BenchError(self.pg_error) from None
            took = time.perf_counter() - t0
            print(f"PostgreSQL at 127.0.0.1:{self.pg.port} (started in {took:.1f} s)")
        return self.pg

    def run_series(self, repeat: int) -> None:
        if not self.warmed:  # as W5's family: the first pass over fresh files is slower
            self.warmed = True
            for i in range(self.warmup):
                warm = run_bare(self.w5, self.ctx, f"CLUSTER-warm{i}", 0, i)
                if warm.error:
                    print(f"CLUSTER warm-up: {warm.error}")
        s = len(self.series) + 1
        rounds: list[Round] = []
        for r in range(1, repeat + 1):
            k = self.rounds_done
            self.rounds_done += 1
            rnd = Round()
            for pos, side in enumerate(rotated(list(W5_SIDES), k)):
                rnd.w5[side] = self.run_w5(side, f"CLUSTER-s{s}r{r}-{side}", s, r, pos)
                print(f"CLUSTER series {s} round {r} W5 {side}: {w5_line(rnd.w5[side])}")
            for pos, side in enumerate(rotated(list(SUBMIT_SIDES), k)):
                run = self.run_submit(side, f"CLUSTER-s{s}r{r}-submit-{side}", s, r, pos)
                rnd.submit[side] = run
                print(f"CLUSTER series {s} round {r} submit {side}: {submit_run_line(run)}")
            rounds.append(rnd)
        self.series.append(rounds)

    def run_w5(self, side: str, tag: str, s: int, r: int, pos: int) -> W5Run:
        if side == "bare":
            return from_single(run_bare(self.w5, self.ctx, tag, s, r), side, r, pos)
        if side == "single":
            return from_single(run_draftdl(self.w5, self.ctx, tag, s, r), side, r, pos)
        out = W5Run(side, s, r, pos)
        try:
            pg = self.postgres()
        except BenchError as exc:
            out.error = str(exc)
            return out
        run_cluster_w5(self.w5, self.ctx, pg, tag, out, WORKERS[side])
        return out

    def run_submit(self, side: str, tag: str, s: int, r: int, pos: int) -> SubmitRun:
        out = SubmitRun(side, s, r, pos)
        pg: Postgres | None = None
        if side != "single":
            try:
                pg = self.postgres()
            except BenchError as exc:
                out.error = str(exc)
                return out
        run_submit_burst(self.ctx, pg, tag, out, API_NODES.get(side, 0), self.jobs)
        return out

    def profile(self, profile: Profile, repeat: int) -> None:
        profile.error = "CLUSTER runs several servers at once; it has no profile"
        print(f"CLUSTER: {profile.error}")

    # ------------------------------------------------------------------ summary

    def all_rounds(self) -> list[Round]:
        return [r for s in self.series for r in s]

    def errors(self) -> list[str]:
        out: list[str] = []
        for rnd in self.all_rounds():
            for w in rnd.w5.values():
                if w.error:
                    out.append(f"series {w.series} round {w.round} W5 {w.side}: {w.error}")
            for u in rnd.submit.values():
                if u.error:
                    out.append(f"series {u.series} round {u.round} submit {u.side}: {u.error}")
        return out

    def figures(self) -> dict[str, Figure]:
        def per_series(get: Callable[[Round], float | None]) -> Figure:
            values = [median(get(r) for r in s) for s in self.series]
            return figure_of_series(values, sum(1 for r in self.all_rounds() if get(r) is not None))

        def ratio(side: str, get: Callable[[W5Run], float | None]) -> Figure:
            return per_series(lambda r: r.ratio(side, get))

        def rate(side: str) -> Callable[[Round], float | None]:
            def get(r: Round) -> float | None:
                u = r.submit.get(side)
                return None if u is None or u.error or u.burst is None else u.burst.rate

            return get

        out: dict[str, Figure] = {}
        for side in W5_SIDES:
            if side == "bare":
                continue
            out[f"{side}_dl_ratio"] = ratio(side, lambda w: w.dl_s)
            out[f"{side}_e2e_ratio"] = ratio(side, lambda w: w.e2e_s)
            out[f"{side}_drafts"] = self.drafts(side)
        for side in SUBMIT_SIDES:
            out[f"{side}_submits_per_s"] = per_series(rate(side))
        return out

    def drafts(self, side: str) -> Figure:
        """The worst run's correct drafts, as the download families count them."""
        runs = [r.w5[side] for r in self.all_rounds() if side in r.w5]
        counted = [r for r in runs if r.drafts_total]
        if not runs:
            return Figure(None)
        if any(r.error for r in runs) or not counted:
            return Figure(0.0, n=len(runs), text="run failed")
        worst = min(counted, key=lambda r: (r.drafts_ok or 0) / (r.drafts_total or 1))
        return Figure(
            (worst.drafts_ok or 0) / (worst.drafts_total or 1),
            n=len(counted),
            text=f"{worst.drafts_ok}/{worst.drafts_total}",
        )

    def summary(self) -> Json:
        rounds = self.all_rounds()
        figures = self.figures()

        def w5_side(side: str) -> Json:
            runs = [r.w5[side] for r in rounds if side in r.w5]
            good = [w for w in runs if not w.error]
            cpu_keys = sorted({k for w in good for k in w.cpu_s})
            row: Json = {
                "label": W5_SIDES[side],
                "runs": len(good),
                "dl_s": median(w.dl_s for w in good),
                "e2e_s": median(w.e2e_s for w in good),
                "cpu_s": {k: median(w.cpu_s.get(k) for w in good) for k in cpu_keys},
                "claims": [w.claims for w in good if w.claims],
            }
            if side != "bare":
                row |= {
                    "dl_ratio": figures[f"{side}_dl_ratio"].as_json(),
                    "e2e_ratio": figures[f"{side}_e2e_ratio"].as_json(),
                    "drafts": figures[f"{side}_drafts"].as_json(),
                }
            return row

        def submit_side(side: str) -> Json:
            runs = [r.submit[side] for r in rounds if side in r.submit]
            bursts = [u.burst for u in runs if not u.error and u.burst is not None]
            return {
                "label": SUBMIT_SIDES[side],
                "bursts": len(bursts),
                "rate_per_s": figures[f"{side}_submits_per_s"].as_json(),
                "latency": latency_summary([v for b in bursts for v in b.latencies_ms]),
                "server_cpu_s": median(u.server_cpu_s for u in runs if not u.error),
                "client_cpu_s": median(b.client_cpu_s for b in bursts),
                "burst_s": median(b.seconds for b in bursts),
            }

        notes = sorted(
            {n for r in rounds for w in r.w5.values() for n in w.notes}
            | {n for r in rounds for u in r.submit.values() for n in u.notes}
        )
        return {
            "workload": self.name,
            "family": "cluster",
            "title": f"W5 ({self.w5.title}) and submit throughput, cluster roles on PostgreSQL",
            "series": len(self.series),
            "rounds": len(rounds),
            "w5_tasks": self.w5.tasks,
            "submit_jobs": self.jobs,
            "submit_clients": SUBMIT_CLIENTS,
            "w5": {side: w5_side(side) for side in W5_SIDES},
            "submit": {side: submit_side(side) for side in SUBMIT_SIDES},
            "figures": {k: f.as_json() for k, f in figures.items()},
            "errors": self.errors(),
            "notes": notes,
            "runs": [{"part": "W5", **asdict(w)} for r in rounds for w in r.w5.values()]
            + [
                {
                    "part": "submit",
                    **{k: v for k, v in asdict(u).items() if k != "burst"},
                    "burst": None
                    if u.burst is None
                    else {
                        "jobs": u.burst.jobs,
                        "ok": u.burst.ok,
                        "seconds": u.burst.seconds,
                        "rate_per_s": u.burst.rate,
                        "latency": latency_summary(u.burst.latencies_ms),
                        "client_cpu_s": u.burst.client_cpu_s,
                    },
                }
                for r in rounds
                for u in r.submit.values()
            ],
        }
