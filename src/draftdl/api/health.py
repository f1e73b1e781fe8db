"""Health: whether aria2c runs, its version, and why not when it does not."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from draftdl import __version__
from draftdl.api.deps import ServicesDep

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", summary="Service and aria2c health")
async def health(services: ServicesDep) -> dict[str, Any]:
    aria2 = services.manager.health()
    queue = services.queue
    return {
        "status": "ok" if aria2["running"] else "degraded",
        "version": __version__,
        "aria2": aria2,
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
    }
