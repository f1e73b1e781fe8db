"""Tables on stdout, the JSON in bench/results/, and the Markdown target table for README."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from bench.common import MIB, Json, fmt, yes_no
from bench.latency import LAT_EVENTS, LAT_TARGET_MS, TRANSPORTS, fmt_load


def print_table(head: list[str], rows: list[list[str]]) -> None:
    table = [head, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for n, r in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def value_text(unit: str, value: float | None, text: str | None = None) -> str:
    if text is not None:
        return text
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "/s":
        return f"{value:.0f}/s"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    return f"{value:.2f}"


def spread_text(row: Json) -> str:
    lo, hi = row.get("min"), row.get("max")
    if lo is None or hi is None or row.get("text") is not None:
        return "-"
    unit = row["unit"]
    return f"{value_text(unit, lo)} - {value_text(unit, hi)}"


def ratio_cell(fig: Json) -> str:
    if fig["value"] is None:
        return "-"
    if fig["min"] is None or fig["min"] == fig["max"]:
        return f"{fig['value']:.2f}"
    return f"{fig['value']:.2f} ({fig['min']:.2f}-{fig['max']:.2f})"


def print_downloads(rows: list[Json]) -> None:
    head = [
        "workload",
        "pairs",
        "bare s",
        "dl s",
        "e2e s",
        "bare MiB/s",
        "dl MiB/s",
        "dl ratio (series)",
        "e2e ratio",
        "thrpt ratio",
        "drafts",
        "srv CPU s",
        "draft CPU s",
        "aria2 CPU s",
        "bare aria2 CPU s",
        "RPC/tick",
    ]
    table = []
    for r in rows:
        f = r["figures"]
        thr = f["throughput_ratio"]
        table.append(
            [
                f"{r['workload']} {r['title']}",
                str(r["pairs"]),
                fmt(r["bare_s"]),
                fmt(r["dl_s"]),
                fmt(r["e2e_s"]),
                fmt(r["bare_mib_per_s"], ".0f"),
                fmt(r["dl_mib_per_s"], ".0f"),
                ratio_cell(f["dl_ratio"]),
                ratio_cell(f["e2e_ratio"]),
                fmt(thr["value"], ".2f"),
                f["drafts"]["text"] or "-",
                fmt(r["server_cpu_s"], ".2f"),
                fmt(r["draft_cpu_s"], ".2f"),
                fmt(r["aria2_cpu_s"], ".2f"),
                fmt(r["bare_aria2_cpu_s"], ".2f"),
                fmt(r["rpc_per_tick"], ".2f"),
            ]
        )
    print("Downloads: medians over every pair; ratios are per pair, median of the series' medians")
    print_table(head, table)
    for r in rows:
        if r["draft_step_max_s"] is not None:
            step = r["draft_step_max_s"]
            print(f"{r['workload']} slowest draft step in the service log: {step:.2f} s")


def print_api(api: Json | None, submit: Json | None, listing: Json | None) -> None:
    head = ["workload", "what", "n", "p50", "p95", "p99", "max", "other"]
    table: list[list[str]] = []

    def lat_row(name: str, what: str, s: Json, other: str = "") -> list[str]:
        return [
            name,
            what,
            str(s["n"]),
            fmt(s["median_ms"], ".1f"),
            fmt(s["p95_ms"], ".1f"),
            fmt(s["p99_ms"], ".1f"),
            fmt(s["max_ms"], ".1f"),
            other,
        ]

    if api is not None:
        other = (
            f"{api['rounds']} rounds; W2 downloads {fmt(api['round_dl_s'], '.2f')} s, "
            f"end to end {fmt(api['round_e2e_s'], '.2f')} s; drafts {api['drafts']}"
        )
        table.append(lat_row("API", "GET /api/tasks/{id} ms", api["get"], other))
        table.append(lat_row("API", "its submits ms", api["submit"]))
    if submit is not None:
        other = (
            f"{fmt(submit['rate_per_s'], '.0f')} submits/s; client CPU "
            f"{fmt(submit['client_cpu_s'], '.2f')} s of {fmt(submit['burst_s'], '.2f')} s"
        )
        table.append(lat_row("SUBMIT", "submit ms", submit["latency"], other))
    if listing is not None:
        other = (
            f"RSS {fmt(listing['rss_mib'], '.0f')} MiB after listing (peak "
            f"{fmt(listing['hwm_mib'], '.0f')}, start {fmt(listing['rss_start_mib'], '.0f')}); "
            f"unfiltered p95 {fmt(listing['unfiltered_p95_ms'], '.1f')} ms, offset 5000 p95 "
            f"{fmt(listing['deep_page_p95_ms'], '.1f')} ms"
        )
        table.append(lat_row("LIST", "?status=completed ms", listing["completed"], other))
    if table:
        print("API: latencies in ms, pooled over every series")
        print_table(head, table)


def print_lat(lat: Json) -> None:
    head = ["transport", "event", "n", "median ms", "p90 ms", "max ms", "min ms", "target", "ok"]
    table = []
    for tr, name in TRANSPORTS.items():
        for ev, label in LAT_EVENTS.items():
            st = lat["stats"][tr][ev]
            table.append(
                [
                    name,
                    label,
                    str(st["n"]),
                    fmt(st["median_ms"], ".1f"),
                    fmt(st["p90_ms"], ".1f"),
                    fmt(st["max_ms"], ".1f"),
                    fmt(st["min_ms"], ".1f"),
                    lat["target"],
                    yes_no(st["meets_target"]),
                ]
            )
    a = lat["aria2_notified_ms"]
    table.append(
        [
            "aria2 WS",
            "onDownloadComplete (reference)",
            str(a["n"]),
            fmt(a["median_ms"], ".1f"),
            fmt(a["p90_ms"], ".1f"),
            fmt(a["max_ms"], ".1f"),
            fmt(a["min_ms"], ".1f"),
            "-",
            "-",
        ]
    )
    print(
        f"LAT: {lat['rounds']} rounds in {lat['series']} series, one file of "
        f"{lat['file_sizes'][0] / MIB:g}-{lat['file_sizes'][1] / MIB:g} MiB at "
        f"{lat['rate_bytes_per_s'] / MIB:g} MiB/s each; latency from its last byte "
        f"(progress_interval {lat['settings']['progress_interval']}, "
        f"poll_interval {lat['settings']['poll_interval']})"
    )
    print_table(head, table)
    gap = lat["processing_to_completed_ms"]
    loads = "; ".join(f"{fmt_load(b)} -> {fmt_load(a)}" for b, a in lat["loadavg"])
    print(
        f"LAT target (all four medians <= {LAT_TARGET_MS:g} ms); processing -> completed "
        f"(empty draft) median {fmt(gap['median_ms'], '.1f')} ms; load avg {loads}"
    )


def cluster_rows(c: Json) -> tuple[list[str], list[list[str]], list[str], list[list[str]]]:
    """CLUSTER's two tables (W5 by side, submit throughput by side) as text cells."""
    w5_head = ["W5 by", "runs", "dl s", "e2e s", "dl ratio", "e2e ratio", "drafts", "tasks/worker"]
    w5 = []
    for side, r in c["w5"].items():
        claims = "; ".join("/".join(str(v) for v in run.values()) for run in r["claims"])
        w5.append(
            [
                r["label"],
                str(r["runs"]),
                fmt(r["dl_s"]),
                fmt(r["e2e_s"]),
                "1 (the floor)" if side == "bare" else ratio_cell(r["dl_ratio"]),
                "-" if side == "bare" else ratio_cell(r["e2e_ratio"]),
                "-" if side == "bare" else (r["drafts"]["text"] or "-"),
                claims or "-",
            ]
        )
    sub_head = ["submits to", "bursts", "jobs/s", "p50 ms", "p99 ms", "server CPU s"]
    sub_head.append("client CPU s")
    sub = []
    for r in c["submit"].values():
        rate = r["rate_per_s"]
        spread = (
            ""
            if rate["min"] is None or rate["value"] is None
            else f" ({rate['min']:.0f}-{rate['max']:.0f})"
        )
        sub.append(
            [
                r["label"],
                str(r["bursts"]),
                fmt(rate["value"], ".0f") + spread,
                fmt(r["latency"]["median_ms"], ".1f"),
                fmt(r["latency"]["p99_ms"], ".1f"),
                fmt(r["server_cpu_s"], ".2f"),
                fmt(r["client_cpu_s"], ".2f"),
            ]
        )
    return w5_head, w5, sub_head, sub


def print_cluster(c: Json) -> None:
    w5_head, w5, sub_head, sub = cluster_rows(c)
    print(
        f"CLUSTER (no targets): {c['rounds']} rounds in {c['series']} series; W5 "
        f"{c['w5_tasks']} tasks, ratios over bare aria2c of the same round (median of series); "
        f"tasks/worker from the workers' logs"
    )
    print_table(w5_head, w5)
    print(
        f"CLUSTER submit throughput: {c['submit_clients']} clients, {c['submit_jobs']} 1-file "
        "jobs per burst, no worker running (the single process downloads them meanwhile)"
    )
    print_table(sub_head, sub)


def markdown_table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def print_targets(rows: list[Json]) -> None:
    head = ["target", "value", "spread over series", "n", "target", "met"]
    table = []
    for r in rows:
        met = "not run" if not r["ran"] else yes_no(r["met"])
        table.append(
            [
                f"{r['target']} [{r['workload']}]",
                value_text(r["unit"], r["value"], r["text"]),
                spread_text(r),
                "-" if r["n"] is None else str(r["n"]),
                r["target_text"],
                met,
            ]
        )
    print("Targets")
    print_table(head, table)


def print_problems(workloads: list[Json]) -> None:
    for w in workloads:
        for e in w.get("errors", []):
            print(f"{w['workload']} ERROR: {e}")
        notes = w.get("notes", [])
        if notes:
            shown = "; ".join(notes[:3]) + (f"; (+{len(notes) - 3} more)" if len(notes) > 3 else "")
            print(f"{w['workload']} notes: {shown}")


def print_profiles(profiles: list[Json]) -> None:
    for p in profiles:
        print(
            f"profile {p['workload']}: {p['samples']} samples over {p['seconds']:.1f} s -> "
            f"{p['speedscope']} (summary {p['summary']})"
        )
        if p["error"]:
            print(f"  ERROR: {p['error'].splitlines()[0]}")
        for n, r in enumerate(p["top_own"][:5], 1):
            print(f"  {n}. {r['own_pct']:5.1f}% own {r['total_pct']:5.1f}% total  {r['function']}")


def page_reporting_text(host: Json) -> str:
    """The VM's free page reporting during the run, when it had any (bench/host_memory.py)."""
    if host.get("page_reporting_order") is None:
        return ""
    if host.get("held_off"):
        state = "held off for the run" if host.get("off") else "only partly held off"
    elif host.get("off"):
        state = "off"
    else:
        state = "on"
    note = host.get("note")
    return f"the guest's free page reporting {state}" + (f" ({note})" if note else "")


def markdown(result: Json) -> str:
    """The target table as README carries it, with the date and the machine; CLUSTER's
    tables after it."""
    m = result["machine"]
    pages = page_reporting_text(m.get("free_page_reporting") or {})
    head = (
        f"Measured {result['created'][:10]} on {m['cpus']} cores ({m['cpu']}), "
        f"{m['memory_gib']} GiB, Linux {m['kernel']}, Python {m['python']}, "
        f"{m['aria2c'].replace(' version', '')}, {m['nginx'].replace('nginx version: ', '')}; "
        f"commit {m['commit']}; `{result['command']}` ({result['duration_s'] / 60:.1f} min)"
        f"{'; ' + pages if pages else ''}."
    )
    lines = [textwrap.fill(head, 96, break_on_hyphens=False, break_long_words=False)]
    # No target table when nothing with a target ran (CLUSTER alone has none).
    targets = result["targets"] if any(r["ran"] for r in result["targets"]) else []
    if targets:
        lines += [
            "",
            "| target | measured | spread over series | n | target | met |",
            "|---|---|---|---|---|---|",
        ]
    for r in targets:
        met = "not run" if not r["ran"] else ("yes" if r["met"] else "**no**")
        lines.append(
            f"| {r['target']} | {value_text(r['unit'], r['value'], r['text'])} | "
            f"{spread_text(r)} | {'-' if r['n'] is None else r['n']} | "
            f"{r['target_text']} | {met} |"
        )
    for w in result["workloads"]:
        if w.get("family") == "cluster":  # no targets: its own tables after the target table
            w5_head, w5, sub_head, sub = cluster_rows(w)
            lines += [
                "",
                f"CLUSTER (no targets; {w['rounds']} rounds in {w['series']} series): W5 by "
                "each side, ratios over bare aria2c of the same round.",
                "",
                *markdown_table(w5_head, w5),
                "",
                f"Submit throughput, {w['submit_clients']} clients, {w['submit_jobs']} 1-file "
                "jobs, no worker running.",
                "",
                *markdown_table(sub_head, sub),
            ]
    return "\n".join(lines) + "\n"


def write(result: Json, path: Path) -> Path:
    """The JSON at ``path`` and the Markdown table beside it (same name, .md)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=_default) + "\n")
    md = path.with_suffix(".md")
    md.write_text(markdown(result))
    return md


def _default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON")
