"""SSE: ``GET /api/tasks/{id}/progress/stream``: Socket.IO's event names and payloads, except
that the snapshot comes as ``task_subscribed`` (Socket.IO's answer is ``subscribed``).

``GET /api/tasks/stream``: every task's events, for dashboards. It starts with
``tasks_subscribed`` and carries no snapshot: a client (re)reads ``GET /api/tasks`` after it,
so nothing falls between the list and the stream."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from draftdl.api.deps import ServicesDep
from draftdl.api.schemas import ALL_EVENTS_STREAM, EVENT_STREAM
from draftdl.events.bus import ALL_TASKS, Overflowed
from draftdl.events.feed import TaskFeed

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15
ALL_TASKS_BACKLOG = 1024  # events kept for a slow all-tasks reader (oldest progress drops first)
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}

router = APIRouter(prefix="/api/tasks", tags=["events"])


def _encode(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


@router.get(
    "/stream",
    summary="Live events of every task (Server-Sent Events): progress, status and results",
    response_class=EventSourceResponse,
    responses=ALL_EVENTS_STREAM,
)
async def all_tasks_stream(services: ServicesDep) -> EventSourceResponse:
    queue = services.queue
    sub = queue.subscribe(ALL_TASKS, ALL_TASKS_BACKLOG, progress=True)
    release = functools.partial(queue.unsubscribe, sub)  # idempotent

    async def stream() -> AsyncIterator[ServerSentEvent]:
        try:
            yield ServerSentEvent(_encode({"task_id": ALL_TASKS}), event="tasks_subscribed")
            while True:
                event = await sub.get()
                yield ServerSentEvent(_encode(event.data), event=event.name)
        except Overflowed:
            log.warning("an all-tasks stream fell too far behind: closed (the client reconnects)")
        finally:
            release()

    return EventSourceResponse(
        stream(), ping=HEARTBEAT_SECONDS, background=BackgroundTask(release), headers=HEADERS
    )


@router.get(
    "/{task_id}/progress/stream",
    summary="Live events of one task (Server-Sent Events); closes after the final event",
    response_class=EventSourceResponse,
    responses=EVENT_STREAM,
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
        headers=HEADERS,
    )
