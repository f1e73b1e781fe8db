"""SSE: ``GET /api/tasks/{id}/progress/stream``: Socket.IO's event names and payloads, except
that the snapshot comes as ``task_subscribed`` (Socket.IO's answer is ``subscribed``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from draftdl.api.deps import ServicesDep
from draftdl.events.feed import TaskFeed

HEARTBEAT_SECONDS = 15

router = APIRouter(prefix="/api/tasks", tags=["events"])


def _encode(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


@router.get(
    "/{task_id}/progress/stream",
    summary="Live events of one task (Server-Sent Events); closes after the final event",
    response_class=EventSourceResponse,
)
async def progress_stream(
    task_id: str, request: Request, services: ServicesDep
) -> EventSourceResponse:
    feed = await TaskFeed.open(services.queue, task_id)  # 404 before the stream starts

    async def stream() -> AsyncIterator[ServerSentEvent]:
        try:
            yield ServerSentEvent(
                _encode({"task_id": task_id, "task": feed.snapshot}), event="task_subscribed"
            )
            async for event in feed.events():
                yield ServerSentEvent(_encode(event.data), event=event.name)
        finally:
            feed.close()

    return EventSourceResponse(
        stream(),
        ping=HEARTBEAT_SECONDS,
        background=BackgroundTask(feed.close),  # also when the stream never started
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
