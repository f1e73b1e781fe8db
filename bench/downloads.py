"""W1-W5K: draftdl against bare aria2c on the same files, in interleaved pairs.

Each pair is one bare aria2c run and one draftdl run back to back, the order alternating
from pair to pair so neither side always goes first; a series is ``--repeat`` pairs. Per pair
the ratio is draftdl's time over bare's (so noise that hits both halves of a pair cancels);
a series' figure is the median of its pairs', the headline the median over series, with
their min-max as the spread. W3's throughput is pooled instead: all bare seconds over all
draftdl seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

import httpx

from bench.bare import run_bare_aria2c
from bench.common import GIB, KIB, MIB, BenchError, Context, Json, fmt, log_tail, proc_cpu_s
from bench.profiling import Profile, py_spy
from bench.service import (
    Service,
    is_completed,
    is_downloaded,
    poll_until,
    rpc_per_tick,
    submit_all,
    task_body,
)
from bench.stats import Figure, figure_of_series, median
from bench.verify import check_draft, verify_dir


@dataclass(frozen=True)
class DownloadWorkload:
    """Tasks x files x size, submitted at once; pictures are laid out in a draft, other
    files (random bytes) get an empty draft."""

    name: str
    tasks: int
    files_per_task: int
    file_size: int
    pictures: bool

    @property
    def total_bytes(self) -> int:
        return self.tasks * self.files_per_task * self.file_size

    @property
    def files(self) -> int:
        return self.tasks * self.files_per_task

    @property
    def title(self) -> str:
        size = (
            f"{self.file_size // GIB} GiB"
            if self.file_size >= GIB and self.file_size % GIB == 0
            else f"{self.file_size // MIB} MiB"
            if self.file_size >= MIB
            else f"{self.file_size // KIB} KiB"
        )
        tasks = "1 task" if self.tasks == 1 else f"{self.tasks} tasks"
        return f"{tasks} x {self.files_per_task:,} x {size}"

    def rel_paths(self) -> list[list[str]]:
        """Per task, the URL paths of its files; every file is distinct across tasks."""
        prefix = self.name.lower()
        ext = "jpg" if self.pictures else "bin"
        out: list[list[str]] = []
        for t in range(self.tasks):
            base = t * self.files_per_task
            out.append([f"{prefix}/f{base + i:04d}.{ext}" for i in range(self.files_per_task)])
        return out


def download_workloads(quick: bool) -> dict[str, DownloadWorkload]:
    """Only W3 shrinks with --quick (256 MiB); the others are small or count files."""
    return {
        "W1": DownloadWorkload("W1", 1, 100, MIB, True),
        "W2": DownloadWorkload("W2", 10, 20, MIB, True),
        "W3": DownloadWorkload("W3", 1, 1, 256 * MIB if quick else GIB, False),
        "W4": DownloadWorkload("W4", 1, 1000, 100 * KIB, True),
        "W5": DownloadWorkload("W5", 100, 10, MIB, True),
        "W5K": DownloadWorkload("W5K", 100, 10, 100 * KIB, True),
    }


@dataclass
class Run:
    """One measurement of one side; the None fields are the ones that side cannot observe.

    ``dl_s`` runs until every file is down (all bare aria2c does); ``e2e_s`` until every task
    is completed with its draft. Server CPU is split at the moment the downloads were seen done.
    """

    side: str
    series: int
    pair: int
    dl_s: float | None = None
    e2e_s: float | None = None
    server_cpu_s: float | None = None
    draft_cpu_s: float | None = None
    aria2_cpu_s: float | None = None
    rpc_per_tick: float | None = None
    drafts_ok: int | None = None
    drafts_total: int | None = None
    draft_step_max_s: float | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Pair:
    bare: Run
    draftdl: Run | None
    bare_first: bool

    def ratio(self, get: Callable[[Run], float | None]) -> float | None:
        """draftdl's ``get`` over bare's time, when both runs succeeded."""
        if self.draftdl is None or self.bare.error or self.draftdl.error or not self.bare.dl_s:
            return None
        v = get(self.draftdl)
        return None if v is None else v / self.bare.dl_s


def run_bare(wl: DownloadWorkload, ctx: Context, tag: str, series: int, pair: int) -> Run:
    run = Run("bare", series, pair)
    try:
        run.dl_s, run.aria2_cpu_s = run_bare_aria2c(
            wl.rel_paths(), wl.file_size, ctx.base_url, ctx.tmp, tag, ctx.aria2_opts, ctx.timeout
        )
    except BenchError as exc:
        run.error = str(exc)
    return run


def run_draftdl(
    wl: DownloadWorkload,
    ctx: Context,
    tag: str,
    series: int,
    pair: int,
    profile: Profile | None = None,
) -> Run:
    """Submit every task at once; time until all files are down, then until all drafts are.

    Only that span is timed (and profiled). The files and drafts are checked afterwards.
    """
    svc = Service(ctx.tmp, tag, ctx.ports, src=ctx.src)
    run = Run("draftdl", series, pair)
    try:
        with httpx.Client(timeout=30) as client:
            svc.start(client)
            bodies = [task_body(wl.pictures, p, ctx.base_url) for p in wl.rel_paths()]
            spy = nullcontext() if profile is None else py_spy(svc.pid, profile)
            with spy:
                h0 = svc.health(client)
                aria_pid = svc.aria2_pid
                srv0, aria0 = proc_cpu_s(svc.pid), proc_cpu_s(aria_pid)
                t0 = time.perf_counter()
                ids = submit_all(svc.url, bodies)
                poll_until(client, svc.url, ids, is_downloaded, t0, ctx.timeout)
                run.dl_s = time.perf_counter() - t0
                srv1 = proc_cpu_s(svc.pid)
                aria_after = svc.current_aria2()
                aria1 = proc_cpu_s(aria_after)
                h1 = svc.health(client)
                views = poll_until(client, svc.url, ids, is_completed, t0, ctx.timeout)
                run.e2e_s = time.perf_counter() - t0
                srv2 = proc_cpu_s(svc.pid)
            if srv0 is not None and srv1 is not None:
                run.server_cpu_s = srv1 - srv0
            if srv1 is not None and srv2 is not None:
                run.draft_cpu_s = srv2 - srv1
            if aria_after != aria_pid:
                run.notes.append(f"aria2c pid changed {aria_pid} -> {aria_after}")
            elif aria0 is not None and aria1 is not None:
                run.aria2_cpu_s = aria1 - aria0
            else:
                run.notes.append("aria2c process not found")
            run.rpc_per_tick = rpc_per_tick(h0, h1)
            downloads = svc.data_dir / "downloads"
            for tid, paths in zip(ids, wl.rel_paths(), strict=True):
                verify_dir(downloads / tid, [wl.file_size] * len(paths))
            run.drafts_total = len(ids)
            run.drafts_ok = 0
            for tid in ids:
                problem = check_draft(wl.pictures, wl.files_per_task, views[tid], downloads / tid)
                if problem is None:
                    run.drafts_ok += 1
                else:
                    run.notes.append(f"draft of task {tid}: {problem}")
            run.draft_step_max_s = svc.draft_step_max(ids)
    except (BenchError, httpx.HTTPError, ValueError) as exc:
        run.error = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, BenchError):
            run.error += f"\n{log_tail(svc.log_path)}"
    finally:
        run.notes += svc.stop()
    return run


def run_line(r: Run) -> str:
    """One run as printed while the bench runs."""
    if r.error:
        return f"ERROR {r.error.splitlines()[0]}"
    if r.side == "bare":
        return f"{fmt(r.dl_s)} s"
    return (
        f"downloads {fmt(r.dl_s)} s, end to end {fmt(r.e2e_s)} s, "
        f"drafts {r.drafts_ok}/{r.drafts_total}, server CPU {fmt(r.server_cpu_s, '.2f')} s, "
        f"RPC/tick {fmt(r.rpc_per_tick, '.2f')}"
    )


class DownloadFamily:
    """One download workload over all its series: runs pairs, then sums them up."""

    def __init__(self, wl: DownloadWorkload, ctx: Context) -> None:
        self.wl = wl
        self.ctx = ctx
        self.series: list[list[Pair]] = []
        self.pairs_done = 0

    def warm_up(self, n: int) -> None:
        """Untimed bare passes: the first pass over freshly written data is markedly slower
        and would otherwise count against whichever side goes first."""
        for i in range(n):
            run = run_bare(self.wl, self.ctx, f"{self.wl.name}-warm{i}", 0, i)
            if run.error:
                print(f"{self.wl.name} warm-up: {run.error}")

    def run_series(self, repeat: int) -> None:
        s = len(self.series) + 1
        pairs: list[Pair] = []
        for p in range(1, repeat + 1):
            bare_first = self.pairs_done % 2 == 0
            self.pairs_done += 1
            tag = f"{self.wl.name}-s{s}p{p}"
            bare: Run | None = None
            dl: Run | None = None
            for side in ("bare", "draftdl") if bare_first else ("draftdl", "bare"):
                if side == "bare":
                    bare = run_bare(self.wl, self.ctx, tag, s, p)
                    print(f"{self.wl.name} series {s} pair {p} bare: {run_line(bare)}")
                elif not self.ctx.only_bare:
                    dl = run_draftdl(self.wl, self.ctx, tag, s, p)
                    print(f"{self.wl.name} series {s} pair {p} draftdl: {run_line(dl)}")
            assert bare is not None
            pairs.append(Pair(bare, dl, bare_first))
        self.series.append(pairs)

    def profile(self, profile: Profile) -> None:
        """One more draftdl run with py-spy attached; its figures are kept apart."""
        run = run_draftdl(self.wl, self.ctx, f"{self.wl.name}-profile", 0, 0, profile)
        profile.run = asdict(run)
        if run.error:
            profile.error = run.error
        print(f"{self.wl.name} profiled draftdl run: {run_line(run)}")

    # ------------------------------------------------------------------ summary

    def all_pairs(self) -> list[Pair]:
        return [p for s in self.series for p in s]

    def errors(self) -> list[str]:
        out = []
        for p in self.all_pairs():
            for r in (p.bare, p.draftdl):
                if r is not None and r.error:
                    out.append(f"series {r.series} pair {r.pair} {r.side}: {r.error}")
        return out

    def figures(self) -> dict[str, Figure]:
        def per_series(get: Callable[[Pair], float | None]) -> Figure:
            values = [median(get(p) for p in s) for s in self.series]
            n = sum(1 for p in self.all_pairs() if get(p) is not None)
            return figure_of_series(values, n)

        def pooled(pairs: list[Pair]) -> float | None:
            good = [p for p in pairs if p.ratio(lambda r: r.dl_s) is not None]
            if not good:
                return None
            dl = sum(p.draftdl.dl_s or 0.0 for p in good if p.draftdl is not None)
            return sum(p.bare.dl_s or 0.0 for p in good) / dl if dl else None

        def cpu_ratio(p: Pair) -> float | None:
            d = p.draftdl
            if d is None or d.error or d.server_cpu_s is None or not p.bare.aria2_cpu_s:
                return None
            return d.server_cpu_s / p.bare.aria2_cpu_s

        def rpc(p: Pair) -> float | None:
            return None if p.draftdl is None or p.draftdl.error else p.draftdl.rpc_per_tick

        thr_values = [pooled(s) for s in self.series]
        thr = figure_of_series(
            thr_values,
            sum(1 for p in self.all_pairs() if p.ratio(lambda r: r.dl_s) is not None),
            pooled=pooled(self.all_pairs()),
        )
        runs = [p.draftdl for p in self.all_pairs() if p.draftdl is not None]
        counted = [r for r in runs if r.drafts_total]
        drafts: Figure
        if not runs:
            drafts = Figure(None)
        elif any(r.error for r in runs) or not counted:
            drafts = Figure(0.0, n=len(runs), text="run failed")
        else:
            worst = min(counted, key=lambda r: (r.drafts_ok or 0) / (r.drafts_total or 1))
            drafts = Figure(
                (worst.drafts_ok or 0) / (worst.drafts_total or 1),
                n=len(counted),
                text=f"{worst.drafts_ok}/{worst.drafts_total}",
            )
        return {
            "dl_ratio": per_series(lambda p: p.ratio(lambda r: r.dl_s)),
            "e2e_ratio": per_series(lambda p: p.ratio(lambda r: r.e2e_s)),
            "throughput_ratio": thr,
            "server_cpu_vs_bare_aria2c": per_series(cpu_ratio),
            "rpc_per_tick": per_series(rpc),
            "drafts": drafts,
        }

    def summary(self) -> Json:
        pairs = self.all_pairs()
        bare = [p.bare for p in pairs if not p.bare.error]
        dl = [p.draftdl for p in pairs if p.draftdl is not None and not p.draftdl.error]

        def med(runs: list[Run], get: Callable[[Run], float | None]) -> float | None:
            return median(get(r) for r in runs)

        def mibps(seconds: float | None) -> float | None:
            return self.wl.total_bytes / MIB / seconds if seconds else None

        def span(runs: list[Run], get: Callable[[Run], float | None]) -> list[float | None]:
            vals = [v for v in map(get, runs) if v is not None]
            return [min(vals), max(vals)] if vals else [None, None]

        steps = [r.draft_step_max_s for r in dl if r.draft_step_max_s is not None]
        notes = sorted({n for p in pairs for r in (p.bare, p.draftdl) if r for n in r.notes})
        return {
            "workload": self.wl.name,
            "family": "downloads",
            "title": self.wl.title,
            "tasks": self.wl.tasks,
            "files_per_task": self.wl.files_per_task,
            "file_size": self.wl.file_size,
            "files": "padded 320x240 JPEG" if self.wl.pictures else "random bytes",
            "total_bytes": self.wl.total_bytes,
            "series": len(self.series),
            "pairs": len(pairs),
            "bare_s": med(bare, lambda r: r.dl_s),
            "bare_s_range": span(bare, lambda r: r.dl_s),
            "dl_s": med(dl, lambda r: r.dl_s),
            "dl_s_range": span(dl, lambda r: r.dl_s),
            "e2e_s": med(dl, lambda r: r.e2e_s),
            "bare_mib_per_s": mibps(med(bare, lambda r: r.dl_s)),
            "dl_mib_per_s": mibps(med(dl, lambda r: r.dl_s)),
            "server_cpu_s": med(dl, lambda r: r.server_cpu_s),
            "draft_cpu_s": med(dl, lambda r: r.draft_cpu_s),
            "aria2_cpu_s": med(dl, lambda r: r.aria2_cpu_s),
            "bare_aria2_cpu_s": med(bare, lambda r: r.aria2_cpu_s),
            "rpc_per_tick": med(dl, lambda r: r.rpc_per_tick),
            "draft_step_max_s": max(steps) if steps else None,
            "figures": {k: f.as_json() for k, f in self.figures().items()},
            "errors": self.errors(),
            "notes": notes,
            "runs": [
                asdict(r) | {"first": (r.side == "bare") == p.bare_first}
                for p in pairs
                for r in (p.bare, p.draftdl)
                if r is not None
            ],
        }
