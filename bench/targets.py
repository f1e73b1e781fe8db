"""Issue 13's targets (and the design's LAT target), each a figure of one workload.

A target names the workload, the figure (see each family's ``figures()``), the comparison
and the limit. It is met when the figure's value compares true; a workload that did not
run, or a figure that could not be measured (a failed run), is "not run" / "NO".
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

from bench.common import Json
from bench.stats import Figure

OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Target:
    label: str
    workload: str
    figure: str
    op: str
    limit: float
    unit: str
    how: str
    source: str = "issue 13"

    @property
    def text(self) -> str:
        if self.unit == "drafts":
            return "all drafts correct"
        sign = {"<=": "≤", "<": "<", ">=": "≥"}[self.op]
        sep = "" if self.unit == "x" else " "
        return f"{sign} {self.limit:g}{sep}{self.unit}"

    def met(self, fig: Figure | None) -> bool | None:
        if fig is None:
            return None
        if fig.value is None:
            return False
        return OPS[self.op](fig.value, self.limit)


TARGETS: list[Target] = [
    Target(
        "W1 1 task x 100 x 1 MiB, downloads", "W1", "dl_ratio", "<=", 1.1, "x",
        "submit → all files down, over bare aria2c's time; median of series",
    ),
    Target(
        "W1 end to end with the draft", "W1", "e2e_ratio", "<=", 1.4, "x",
        "submit → completed with its draft, over bare's time; median of series",
    ),
    Target(
        "W2 10 tasks x 20 x 1 MiB, downloads", "W2", "dl_ratio", "<=", 1.15, "x",
        "as W1",
    ),
    Target(
        "W2 drafts", "W2", "drafts", ">=", 1.0, "drafts",
        "10/10 correct drafts in every run (worst run shown)",
    ),
    Target(
        "W3 1 x 1 GiB, throughput", "W3", "throughput_ratio", ">=", 0.95, "x",
        "pooled: all bare seconds / all draftdl seconds",
    ),
    Target(
        "W4 1 x 1,000 x 100 KiB, downloads", "W4", "dl_ratio", "<=", 1.25, "x", "as W1",
    ),
    Target("W4 end to end", "W4", "e2e_ratio", "<=", 2.0, "x", "as W1"),
    Target(
        "W5 100 tasks x 10 x 1 MiB, downloads", "W5", "dl_ratio", "<=", 1.2, "x", "as W1",
    ),
    Target(
        "W5 server CPU", "W5", "server_cpu_vs_bare_aria2c", "<=", 0.5, "x",
        "server CPU while downloading / bare aria2c's CPU in the same pair",
    ),
    Target(
        "W5 RPC per tick", "W5", "rpc_per_tick", "<=", 3.0, "RPC/tick",
        "aria2 requests / monitor ticks while downloading (/api/health counters)",
    ),
    Target(
        "W5 with 100 KiB files, downloads", "W5K", "dl_ratio", "<=", 3.0, "x", "as W1",
    ),
    Target(
        "GET /api/tasks/{id} during W2 with 10 concurrent submits", "API", "get_p99_ms",
        "<=", 50.0, "ms", "p99 pooled over every read of every round",
    ),
    Target(
        "those submits (20 files each)", "API", "submit_p99_ms", "<=", 150.0, "ms",
        "p99 pooled over every submit",
    ),
    Target(
        "submit throughput, 20 clients, 1-file jobs", "SUBMIT", "submits_per_s", ">=", 500.0,
        "/s", "jobs answered / wall time; median of series",
    ),
    Target(
        "GET /api/tasks?status=completed with 10,000 tasks", "LIST", "completed_p95_ms",
        "<=", 20.0, "ms", "p95 pooled over every request",
    ),
    Target(
        "memory of the single-process default, 10,000 tasks stored", "LIST", "rss_mib",
        "<", 200.0, "MiB", "server VmRSS after listing; the largest of the series",
    ),
    Target(
        "completion pushed to Socket.IO / SSE after the last byte", "LAT", "push_median_ms",
        "<=", 100.0, "ms", "the largest of the four medians (2 transports x 2 events)",
        source="DESIGN §9",
    ),
]  # fmt: skip


def evaluate(figures: dict[str, dict[str, Figure]]) -> list[Json]:
    """One row per target: its figure (None when the workload did not run) and whether met."""
    rows: list[Json] = []
    for t in TARGETS:
        fig = figures.get(t.workload, {}).get(t.figure)
        rows.append(
            {
                "target": t.label,
                "workload": t.workload,
                "figure": t.figure,
                "op": t.op,
                "limit": t.limit,
                "unit": t.unit,
                "target_text": t.text,
                "how": t.how,
                "source": t.source,
                "value": None if fig is None else fig.value,
                "text": None if fig is None else fig.text,
                "min": None if fig is None else fig.lo,
                "max": None if fig is None else fig.hi,
                "per_series": None if fig is None else fig.per_series,
                "n": None if fig is None else fig.n,
                "met": t.met(fig),
                "ran": fig is not None,
            }
        )
    return rows
