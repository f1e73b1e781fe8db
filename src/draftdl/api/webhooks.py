"""``GET /api/tasks/{id}/webhooks``: every delivery of a task's status events, each attempt."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from draftdl.api.deps import ServicesDep
from draftdl.api.schemas import WebhookDeliveries, errors
from draftdl.model.delivery import Delivery
from draftdl.webhooks.spec import shown_url

router = APIRouter(prefix="/api/tasks", tags=["webhooks"])


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.replace(tzinfo=UTC).isoformat()


def _view(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "url": shown_url(d.url),
        "event": d.event,
        "state": d.state.value,
        "attempts": d.attempts,
        "created_at": _iso(d.created_at),
        "next_attempt_at": _iso(d.next_attempt_at),
        "delivered_at": _iso(d.delivered_at),
        "last_status": d.last_status,
        "last_error": d.last_error,
        "tries": [
            {
                "n": a.n,
                "at": _iso(a.at),
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in d.tries
        ],
    }


@router.get(
    "/{task_id}/webhooks",
    summary="The task's webhook deliveries and each attempt (also after the task is deleted)",
    response_model=WebhookDeliveries,
    responses=errors(404, 422, 503),
)
async def task_webhooks(task_id: str, services: ServicesDep) -> dict[str, Any]:
    deliveries = await services.db.outbox.of_task(task_id)
    if not deliveries:
        await services.queue.get_task(task_id)  # 404 for a task never seen
    return {"task_id": task_id, "deliveries": [_view(d) for d in deliveries]}
