"""Health: whether aria2c runs, the database answers and the disk has room, and why not.

Anything short of that answers 503 with the same body, so a container health check needs only
the status code, and a person reads ``problems``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Response

from draftdl import __version__
from draftdl.api.deps import Services, ServicesDep
from draftdl.api.schemas import Health
from draftdl.disk import free_space
from draftdl.units import parse_amount

router = APIRouter(prefix="/api", tags=["health"])
# The original server's clients (n8n's credential test) ask /health: the same answer, outside
# the one /api prefix of the document.
bare_router = APIRouter(include_in_schema=False)

DATABASE_TIMEOUT = 2.0  # seconds; a database slower than this is not healthy
MiB = 1024 * 1024


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


async def _database(services: Services) -> dict[str, Any]:
    try:
        await asyncio.wait_for(services.db.ping(), DATABASE_TIMEOUT)
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {DATABASE_TIMEOUT:g} s"}
    except Exception as exc:  # whatever the driver raises, health reports it
        return {"ok": False, "error": _one_line(exc)}
    return {"ok": True, "error": None}


def _measure(data_dir: Path) -> tuple[Path, int | None]:
    path = data_dir.resolve()
    try:
        return path, free_space(path)
    except OSError:
        return path, None


async def _disk(services: Services) -> dict[str, Any]:
    data_dir = services.settings.downloads_dir  # where the scheduler looks too
    try:
        minimum = parse_amount(services.settings.min_free_space)
    except ValueError:
        minimum = 0  # the setting is checked where it is read; health must still answer
    path, free = await asyncio.to_thread(_measure, data_dir)
    return {
        "path": str(path),
        "free_bytes": free,
        "min_free_bytes": minimum,
        "ok": free is not None and free >= minimum,
    }


@router.get(
    "/health",
    summary="Service health: aria2c, database, disk space (503 when degraded)",
    response_model=Health,
    responses={503: {"model": Health, "description": "Degraded: see problems"}},
)
@bare_router.get("/health", response_model=Health)
async def health(services: ServicesDep, response: Response) -> dict[str, Any]:
    aria2 = services.manager.health()
    database, disk = await asyncio.gather(_database(services), _disk(services))
    problems: list[str] = []
    settings = services.settings
    if not aria2["running"] and settings.role != "api":  # (an api node runs no aria2c)
        problems.append(f"aria2c is not running: {aria2['reason'] or aria2['state']}")
    if not database["ok"]:
        problems.append(f"the database does not answer: {database['error']}")
    if disk["free_bytes"] is None:
        problems.append(f"the free space under {disk['path']} cannot be read")
    elif not disk["ok"]:
        problems.append(
            f"{disk['free_bytes'] / MiB:.0f} MiB free under {disk['path']}, "
            f"less than min_free_space ({services.settings.min_free_space})"
        )
    if problems:
        response.status_code = 503
    queue = services.queue
    return {
        "status": "degraded" if problems else "ok",
        "problems": problems,
        "version": __version__,
        "aria2": aria2,
        "database": database,
        "disk": disk,
        "drafts": {"root": str(services.drafts.path), "reason": services.drafts.reason},
        "tasks": {
            "live": len(queue.live),
            "active": queue.active_count(),
            "max_active": services.settings.max_active_tasks,
        },
        "monitor": {
            "ticks": queue.monitor.ticks,
            "rpc_requests": services.manager.client.work_requests,
            "tracked_files": len(queue.monitor.by_gid),
        },
        "role": settings.role,
        "node": settings.node if settings.cluster else None,
    }
