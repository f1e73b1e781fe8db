"""Commands about the server itself: its health and its overall download limit."""

from __future__ import annotations

from typing import Any

import click

from draftdl.cli.client import ServerError
from draftdl.cli.options import connect, server_options
from draftdl.cli.render import human_speed
from draftdl.units import human_size, parse_amount

LIMITS = "/api/settings/limits"


@click.command()
@server_options
@click.pass_context
def health(ctx: click.Context, server: str, token: str | None) -> None:
    """Show the server's health; exit 0 when ok, 1 when degraded."""
    # A degraded server answers 503 with the same body: that is an answer, not a failure.
    body = connect(ctx, server, token).request("GET", "/api/health", ok=(503,))
    if not isinstance(body, dict) or body.get("status") not in ("ok", "degraded"):
        raise ServerError(f"{server} did not answer a health report")
    for line in health_lines(body):
        click.echo(line)
    ctx.exit(0 if body["status"] == "ok" else 1)


def health_lines(body: dict[str, Any]) -> list[str]:
    lines = [f"status: {body['status']}"]
    lines += [f"problem: {problem}" for problem in body.get("problems") or []]
    if body.get("version"):
        lines.append(f"version: {body['version']}")
    aria2 = body.get("aria2") or {}
    if aria2:
        if aria2.get("running"):
            what = f"running, version {aria2.get('version') or '?'}"
            if aria2.get("pid"):
                what += f", pid {aria2['pid']}"
        else:
            what = f"not running ({aria2.get('reason') or aria2.get('state') or 'no reason given'})"
        if aria2.get("restarts"):
            what += f", {aria2['restarts']} restarts"
        lines.append(f"aria2c: {what}")
    database = body.get("database") or {}
    if database:
        lines.append(f"database: {'ok' if database.get('ok') else database.get('error')}")
    disk = body.get("disk") or {}
    if disk:
        free = disk.get("free_bytes")
        lines.append(
            f"disk: {'?' if free is None else human_size(free)} free under {disk.get('path')} "
            f"(at least {human_size(disk.get('min_free_bytes') or 0)} needed)"
        )
    drafts = body.get("drafts") or {}
    if drafts:
        lines.append(f"drafts: {drafts.get('root')} ({drafts.get('reason')})")
    tasks = body.get("tasks") or {}
    if tasks:
        lines.append(
            f"tasks: {tasks.get('live', 0)} live, "
            f"{tasks.get('active', 0)} active of at most {tasks.get('max_active', '?')}"
        )
    return lines


def describe_limit(value: object) -> str:
    """'10M' → '10M (10.0 MiB/s)'; '0' → 'none'."""
    text = str(value if value is not None else "0")
    try:
        rate = parse_amount(text)
    except ValueError:
        return text
    if rate == 0:
        return "none"
    return text if text == str(rate) and rate < 1024 else f"{text} ({human_speed(rate)})"


@click.command()
@click.argument("rate", metavar="[RATE]", required=False)
@server_options
@click.pass_context
def limits(ctx: click.Context, rate: str | None, server: str, token: str | None) -> None:
    """Show the overall download limit, or set it.

    RATE is bytes per second, or aria2 style like 10M or 500K; 0 or none for no limit.
    """
    api = connect(ctx, server, token)
    if rate is None:
        answer = api.request("GET", LIMITS)
    else:
        value = "0" if rate.strip().lower() in ("none", "off", "unlimited") else rate.strip()
        answer = api.request("PUT", LIMITS, json={"max_overall_download_limit": value})
    click.echo(
        f"overall download limit: {describe_limit(answer.get('max_overall_download_limit'))}"
    )


COMMANDS = (health, limits)
