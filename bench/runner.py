"""The command line: which workloads, how many series, the series loop, clean-up, the report.

Series run one after another over all chosen workloads (series 1 of W1, W2, ..., LAT, then
series 2 of each, ...), so each series of a workload is taken minutes apart from the next
and a burst of other work on the machine lands in one series, not in all of them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from types import FrameType
from typing import Protocol

from bench import report
from bench.api_load import TINY_PATH, TINY_SIZE, ApiLoadFamily, SubmitFamily
from bench.cluster import CLUSTER_SUBMIT_JOBS, ClusterFamily
from bench.common import (
    ARIA2C,
    MIB,
    NGINX,
    RESULTS_DIR,
    Context,
    Json,
    free_port,
    machine,
    pick_tmp_root,
)
from bench.downloads import DownloadFamily, DownloadWorkload, download_workloads
from bench.host_memory import page_reporting_held, touch_memory
from bench.latency import LatencyFamily
from bench.listing import ListingFamily
from bench.nginx import PHOTO, nginx_server, write_padded_photo, write_random_file
from bench.postgres import missing_tools
from bench.profiling import Profile, summarize
from bench.service import inherited_env
from bench.stats import Figure
from bench.targets import evaluate

DOWNLOADS = ("W1", "W2", "W3", "W4", "W5", "W5K")
ALL = (*DOWNLOADS, "API", "SUBMIT", "LIST", "LAT")
ON_REQUEST = ("CLUSTER",)  # run only when named: several servers and a PostgreSQL
KNOWN = (*ALL, *ON_REQUEST)
DEFAULT_SERIES = 3
REPEAT = {"API": 8, "SUBMIT": 1, "LIST": 1, "LAT": 20}  # downloads: 1 pair per series
REPEAT_QUICK = {"API": 3, "LAT": 8}
SUBMIT_JOBS, SUBMIT_JOBS_QUICK = 2000, 600
LIST_REQUESTS, LIST_REQUESTS_QUICK = 500, 200


class Family(Protocol):
    def run_series(self, repeat: int) -> None: ...

    def profile(self, profile: Profile, repeat: int) -> None: ...

    def figures(self) -> dict[str, Figure]: ...

    def summary(self) -> Json: ...


class ProfiledDownloads:
    """A download workload's family as the runner drives it (its profile takes no repeat)."""

    def __init__(self, family: DownloadFamily, warmup: int) -> None:
        self.family = family
        self.warmup = warmup
        self.warmed = False

    def run_series(self, repeat: int) -> None:
        self.warm()
        self.family.run_series(repeat)

    def profile(self, profile: Profile, repeat: int) -> None:
        self.warm()
        self.family.profile(profile)

    def warm(self) -> None:
        if not self.warmed:
            self.warmed = True
            self.family.warm_up(self.warmup)

    def figures(self) -> dict[str, Figure]:
        return self.family.figures()

    def summary(self) -> Json:
        return self.family.summary()


def names_list(values: list[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        out += [n.strip().upper() for n in v.split(",") if n.strip()]
    return list(dict.fromkeys(out))


def per_workload(values: list[str], default: dict[str, int], option: str) -> dict[str, int]:
    """``N`` for every workload, ``NAME=N`` for one; later ones win."""
    out = dict(default)
    for v in values:
        for part in v.split(","):
            name, eq, num = part.strip().rpartition("=")
            if not num.isdigit():
                raise SystemExit(f"{option}: {part!r} is not N or NAME=N")
            if eq:
                if name.upper() not in KNOWN:
                    raise SystemExit(f"{option}: unknown workload {name!r}")
                out[name.upper()] = int(num)
            else:
                out = dict.fromkeys(out, int(num))
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/run.py",
        description="draftdl against bare aria2c on loopback (issue 13's figures); "
        "see bench/README.md",
    )
    p.add_argument(
        "--workload",
        "--workloads",
        action="append",
        default=[],
        metavar="NAMES",
        help=f"comma list, repeatable: {', '.join(KNOWN)} (default: all but "
        f"{', '.join(ON_REQUEST)}, which runs only when named)",
    )
    p.add_argument(
        "--series",
        action="append",
        default=[],
        metavar="N|NAME=N",
        help=f"series per workload (default {DEFAULT_SERIES}, 1 with --quick); "
        "NAME=N for one workload, e.g. --series 5 --series W3=2",
    )
    p.add_argument(
        "--repeat",
        action="append",
        default=[],
        metavar="N|NAME=N",
        help="measurements per series: pairs for W1-W5K (1), W2 rounds for API (8; 3 with "
        "--quick), bursts for SUBMIT (1), request batches for LIST (1), rounds for LAT "
        "(20; 8 with --quick), rounds for CLUSTER (1)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="1 series; W3 256 MiB instead of 1 GiB; API 3 rounds, SUBMIT 600 jobs, LIST 200 "
        "requests, LAT 8 rounds",
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed bare aria2c passes per download workload before its first series "
        "(default 1): the first pass on a fresh data set is markedly slower",
    )
    p.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="NAMES",
        help="after the series, one more run of these workloads with py-spy on the server "
        "(not counted in the figures); --series 0 for the profile alone",
    )
    p.add_argument("--profile-rate", type=int, default=100, help="py-spy samples/s (100)")
    p.add_argument(
        "--submit-jobs",
        type=int,
        help="jobs per SUBMIT burst (2000; 600 quick) and per CLUSTER burst (600)",
    )
    p.add_argument("--list-requests", type=int, help="timed LIST requests (500; 200 quick)")
    p.add_argument("--lat-rounds", type=int, help="same as --repeat LAT=N")
    p.add_argument(
        "--src",
        type=Path,
        help="run the server from this source tree (its src/, or the folder holding draftdl/) "
        "instead of the installed draftdl, e.g. a `git archive` of another commit",
    )
    p.add_argument("--only-bare", action="store_true", help="bare aria2c only, W1-W5K")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per measurement")
    p.add_argument(
        "--aria2-opt",
        action="append",
        default=[],
        metavar="OPT",
        help="extra option for bare aria2c, e.g. --aria2-opt=--split=5 (repeatable)",
    )
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs) at exit")
    p.add_argument(
        "--keep-page-reporting",
        action="store_true",
        help="leave a VM guest's free page reporting on (held off for the run by default, "
        "when root can: bench/host_memory.py says why)",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=RESULTS_DIR / "latest.json",
        help="JSON path (default bench/results/latest.json; the .md table beside it)",
    )
    args = p.parse_args(argv)
    if args.warmup < 0 or args.profile_rate < 1:
        p.error("--warmup must be >= 0 and --profile-rate >= 1")
    if args.src is not None:
        src = args.src.resolve()
        src = src / "src" if (src / "src" / "draftdl").is_dir() else src
        if not (src / "draftdl" / "__init__.py").is_file():
            p.error(f"--src: no draftdl package in {args.src} or {args.src}/src")
        args.src = src
    for opt in ("submit_jobs", "list_requests", "lat_rounds"):
        value = getattr(args, opt)
        if value is not None and value < 1:
            p.error(f"--{opt.replace('_', '-')} must be >= 1")
    return args


def raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM takes the same cleanup path as Ctrl-C."""
    raise KeyboardInterrupt


def write_data(root: Path, workloads: list[DownloadWorkload], tiny: bool) -> int:
    """The files nginx serves; returns their bytes."""
    photo = PHOTO.read_bytes() if any(w.pictures for w in workloads) else b""
    total = 0
    for wl in workloads:
        for paths in wl.rel_paths():
            for rel in paths:
                if wl.pictures:
                    write_padded_photo(root / rel, wl.file_size, photo)
                else:
                    write_random_file(root / rel, wl.file_size)
        total += wl.total_bytes
    if tiny:
        write_random_file(root / TINY_PATH, TINY_SIZE)
        total += TINY_SIZE
    return total


@contextmanager
def temp_dir(need: int, keep: bool) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="draftdl-bench-", dir=pick_tmp_root(need)))
    print(f"temp dir: {tmp}")
    try:
        yield tmp
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = names_list(args.workload) or list(ALL)
    profiled = names_list(args.profile)
    unknown = [n for n in names + profiled if n not in KNOWN]
    if unknown:
        print(f"unknown workloads {unknown}; choose from {', '.join(KNOWN)}", file=sys.stderr)
        return 2
    series = per_workload(
        args.series, dict.fromkeys(KNOWN, 1 if args.quick else DEFAULT_SERIES), "--series"
    )
    repeat = per_workload(
        args.repeat,
        {n: (REPEAT_QUICK if args.quick else {}).get(n, REPEAT.get(n, 1)) for n in KNOWN},
        "--repeat",
    )
    if args.lat_rounds:
        repeat["LAT"] = args.lat_rounds
    if any(v < 1 for v in repeat.values()):
        print("--repeat must be >= 1", file=sys.stderr)
        return 2
    if args.only_bare:
        dropped = [n for n in names if n not in DOWNLOADS]
        if dropped:
            print(f"--only-bare: {', '.join(dropped)} have no bare side; skipped", file=sys.stderr)
        names = [n for n in names if n in DOWNLOADS]
        profiled = []
    used = list(dict.fromkeys(names + profiled))
    tools = (NGINX, ARIA2C) if any(n != "LAT" for n in used) else (ARIA2C,)
    for tool in tools:
        if not os.access(tool, os.X_OK):
            print(f"{tool} not found", file=sys.stderr)
            return 2
    why = missing_tools() if "CLUSTER" in used else None
    if why is not None:
        print(f"CLUSTER: {why}", file=sys.stderr)
        return 2

    # Explicit handlers: an inherited SIG_IGN (e.g. started with `&` from a script) would
    # otherwise make Ctrl-C a no-op here and be passed on to the service, which then cannot
    # be stopped with SIGINT either.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, raise_interrupt)

    if args.src is not None:
        sys.path.insert(0, str(args.src))  # LIST seeds its database with that tree's db layer
    dl_defs = download_workloads(args.quick)
    also = {"W2": "API", "W5": "CLUSTER"}  # served for another workload's runs too
    served = [dl_defs[n] for n in DOWNLOADS if n in used or also.get(n) in used]
    data_bytes = sum(w.total_bytes for w in served)
    need = data_bytes + 2 * max((w.total_bytes for w in served), default=0) + 512 * MIB
    started = time.perf_counter()
    load_before = os.getloadavg()
    families: dict[str, Family] = {}
    profiles: list[Profile] = []
    output: Path = args.output
    stamp = time.strftime("%Y%m%d-%H%M%S")
    host: Json = {}
    try:
        with (
            page_reporting_held(args.keep_page_reporting) as host,
            temp_dir(need, args.keep_tmp) as tmp,
        ):
            print(f"free page reporting: {report.page_reporting_text(host) or 'none'}")
            root = tmp / "www"
            t0 = time.perf_counter()
            written = write_data(root, served, bool({"SUBMIT", "LIST", "CLUSTER"} & set(used)))
            if written:
                print(f"wrote {written / MIB:.0f} MiB of data in {time.perf_counter() - t0:.1f} s")
            if host["off"] and tmp.is_relative_to("/dev/shm"):
                touch_memory(tmp, need - data_bytes)
            needs_nginx = any(n != "LAT" for n in used)
            server = nginx_server(tmp, root, free_port(set())) if needs_nginx else nullcontext("")
            # The stack holds what a family starts for the whole run (CLUSTER's PostgreSQL),
            # so it is stopped before the temp dir goes, whatever ends the run.
            with server as base_url, ExitStack() as stack:
                if base_url:
                    print(f"nginx at {base_url}")
                ctx = Context(
                    tmp=tmp,
                    base_url=base_url,
                    ports=set(),
                    timeout=args.timeout,
                    aria2_opts=args.aria2_opt,
                    only_bare=args.only_bare,
                    quick=args.quick,
                    src=args.src,
                )
                for n in used:
                    families[n] = make_family(n, ctx, dl_defs, args, stack)
                rounds = max((series[n] for n in names), default=0)
                for s in range(1, rounds + 1):
                    print(f"\n== series {s}/{rounds} ==")
                    for n in names:
                        if s <= series[n]:
                            families[n].run_series(repeat[n])
                for n in profiled:
                    profile = Profile(
                        workload=n,
                        speedscope=output.parent / f"profile-{n}-{stamp}.speedscope.json",
                        summary=output.parent / f"profile-{n}-{stamp}-top.txt",
                        rate=args.profile_rate,
                    )
                    print(f"\n== profile {n} (py-spy at {args.profile_rate} Hz) ==")
                    families[n].profile(profile, repeat[n])
                    if profile.speedscope.is_file():
                        summarize(profile)
                    elif profile.error is None:
                        profile.error = "no profile written"
                    profiles.append(profile)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaned up", file=sys.stderr)
        return 130

    measured = [n for n in names if series[n] > 0]
    summaries = [families[n].summary() for n in measured]
    # Targets compare draftdl with bare aria2c: with --only-bare there is nothing to check.
    figures = {} if args.only_bare else {n: families[n].figures() for n in measured}
    targets = evaluate(figures)
    failed = any(s.get("errors") for s in summaries) or any(p.error for p in profiles)
    result: Json = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": shlex.join(["bench/run.py", *(sys.argv[1:] if argv is None else argv)]),
        "duration_s": time.perf_counter() - started,
        "machine": machine(args.src) | {"free_page_reporting": host},
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "options": {
            "workloads": names,
            "series": {n: series[n] for n in names},
            "repeat": {n: repeat[n] for n in names},
            "quick": args.quick,
            "warmup": args.warmup,
            "only_bare": args.only_bare,
            "bare_aria2c_extra_opts": args.aria2_opt,
            "profile": profiled,
            "server_src": str(args.src) if args.src else "installed draftdl (editable: src/)",
        },
        "inherited_draftdl_env": inherited_env(),
        "targets": targets,
        "workloads": summaries,
        "profiles": [p.as_json() for p in profiles],
    }
    print()
    dl_rows = [s for s in summaries if s["family"] == "downloads"]
    if dl_rows:
        report.print_downloads(dl_rows)
        print()
    by_name = {s["workload"]: s for s in summaries}
    if any(n in by_name for n in ("API", "SUBMIT", "LIST")):
        report.print_api(by_name.get("API"), by_name.get("SUBMIT"), by_name.get("LIST"))
        print()
    if "LAT" in by_name:
        report.print_lat(by_name["LAT"])
        print()
    if "CLUSTER" in by_name:
        report.print_cluster(by_name["CLUSTER"])
        print()
    if any(n in ALL for n in measured) and not args.only_bare:  # CLUSTER alone has none
        report.print_targets(targets)
    report.print_problems(summaries)
    if profiles:
        print()
        report.print_profiles([p.as_json() for p in profiles])
    md = report.write(result, output)
    print(f"\nwrote {output} and {md} in {result['duration_s'] / 60:.1f} min")
    return 1 if failed else 0


def make_family(
    name: str,
    ctx: Context,
    dl_defs: dict[str, DownloadWorkload],
    args: argparse.Namespace,
    stack: ExitStack,
) -> Family:
    if name in DOWNLOADS:
        return ProfiledDownloads(DownloadFamily(dl_defs[name], ctx), args.warmup)
    if name == "API":
        return ApiLoadFamily(ctx, dl_defs["W2"])
    if name == "SUBMIT":
        jobs = args.submit_jobs or (SUBMIT_JOBS_QUICK if args.quick else SUBMIT_JOBS)
        return SubmitFamily(ctx, jobs)
    if name == "LIST":
        requests = args.list_requests or (LIST_REQUESTS_QUICK if args.quick else LIST_REQUESTS)
        return ListingFamily(ctx, requests)
    if name == "CLUSTER":
        jobs = args.submit_jobs or CLUSTER_SUBMIT_JOBS
        return ClusterFamily(ctx, dl_defs["W5"], jobs, args.warmup, stack)
    return LatencyFamily(ctx)
