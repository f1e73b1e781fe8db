"""Routes that steer tasks: pause, resume, change (priority, speed cap), retry, regenerate,
delete; and the global speed cap."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from draftdl.api.deps import ServicesDep, require_json
from draftdl.api.schemas import (
    ControlResponse,
    DeleteResponse,
    Limits,
    RetryRequest,
    RetryResponse,
    TaskChange,
    TaskView,
    errors,
)
from draftdl.errors import FieldProblem, RequestRejected
from draftdl.model.task import TaskState
from draftdl.units import parse_speed

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/tasks", tags=["control"])
limits_router = APIRouter(prefix="/api/settings", tags=["settings"])


async def require_json_when_sent(request: Request) -> None:
    """An optional body: when there is one, it is JSON."""
    if request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers:
        await require_json(request)


def _speed(value: str | int | None, loc: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    try:
        parse_speed(text if isinstance(value, str) else int(value))
    except ValueError as exc:
        raise RequestRejected([FieldProblem(loc, str(exc))]) from exc
    return text


def _answer(task: TaskState, message: str) -> dict[str, Any]:
    return {"success": True, "task_id": task.id, "status": task.status.value, "message": message}


@router.post(
    "/{task_id}/pause",
    summary="Pause a pending or downloading task: bytes kept, its slot goes to the next",
    response_model=ControlResponse,
    responses=errors(404, 409, 422, 503),
)
async def pause_task(task_id: str, services: ServicesDep) -> dict[str, Any]:
    task = await services.queue.controls.pause(task_id)
    return _answer(task, f"task {task.id} paused")


@router.post(
    "/{task_id}/resume",
    summary="Put a paused task back in the queue; it goes on from the bytes on disk",
    response_model=ControlResponse,
    responses=errors(404, 409, 422, 503),
)
async def resume_task(task_id: str, services: ServicesDep) -> dict[str, Any]:
    task = await services.queue.controls.resume(task_id)
    return _answer(task, f"task {task.id} resumed: waiting for a free slot")


@router.patch(
    "/{task_id}",
    summary="Change an unfinished task's priority and/or speed cap",
    response_model=TaskView,
    responses=errors(404, 409, 415, 422, 503),
    dependencies=[Depends(require_json)],
)
async def change_task(task_id: str, change: TaskChange, services: ServicesDep) -> dict[str, Any]:
    given = change.model_fields_set
    limit: object = ...
    kwargs: dict[str, Any] = {}
    if "priority" in given and change.priority is not None:
        kwargs["priority"] = change.priority
    if "max_download_limit" in given:
        limit = _speed(change.max_download_limit, ("max_download_limit",))
        kwargs["limit"] = None if limit in (None, "0") else limit
    task = await services.queue.controls.change(task_id, **kwargs)
    return task.view()


@router.post(
    "/{task_id}/retry",
    summary="Download again what a failed or cancelled task lacks (optionally from new links)",
    response_model=RetryResponse,
    responses=errors(404, 409, 415, 422, 503),
    dependencies=[Depends(require_json_when_sent)],
)
async def retry_task(
    task_id: str, services: ServicesDep, body: RetryRequest | None = None
) -> dict[str, Any]:
    task, count = await services.queue.controls.retry(task_id, body.urls if body else None)
    files = "1 file" if count == 1 else f"{count} files"
    return {**_answer(task, f"task {task.id} retried: {files} to download"), "retried_files": count}


@router.post(
    "/{task_id}/regenerate",
    summary="Build a completed or failed task's draft again, into a new folder",
    response_model=ControlResponse,
    responses=errors(404, 409, 422, 503),
)
async def regenerate_task(task_id: str, services: ServicesDep) -> dict[str, Any]:
    task = await services.queue.controls.regenerate(task_id)
    return _answer(task, f"task {task.id}: the draft is built again")


@router.delete(
    "/{task_id}",
    summary="Stop a task and remove its record (its files and draft only when asked)",
    response_model=DeleteResponse,
    responses=errors(404, 422, 503),
)
async def delete_task(
    task_id: str,
    services: ServicesDep,
    files: Annotated[bool, Query(description="also its downloaded files")] = False,
    draft: Annotated[bool, Query(description="also its draft folder")] = False,
) -> dict[str, Any]:
    task = await services.queue.controls.delete(task_id, files=files, draft=draft)
    return {"success": True, "task_id": task.id, "message": f"task {task.id} deleted"}


@limits_router.get("/limits", summary="The global speed cap", response_model=Limits)
async def get_limits(services: ServicesDep) -> dict[str, Any]:
    return {"max_overall_download_limit": await services.queue.overall_limit()}


@limits_router.put(
    "/limits",
    summary="Set the global speed cap: applied at once and kept across restarts",
    response_model=Limits,
    responses=errors(415, 422, 503),
    dependencies=[Depends(require_json)],
)
async def put_limits(limits: Limits, services: ServicesDep) -> dict[str, Any]:
    value = _speed(limits.max_overall_download_limit, ("max_overall_download_limit",)) or "0"
    await services.queue.set_overall_limit(value)  # (in a cluster: on every worker)
    return {"max_overall_download_limit": value}
