"""Task routes: submit, read, list, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from draftdl.api.deps import ServicesDep, require_json
from draftdl.api.schemas import (
    JOB_SCHEMA,
    CancelResponse,
    SubmitResponse,
    TaskList,
    TaskView,
    errors,
)
from draftdl.errors import FieldProblem, RequestRejected
from draftdl.model.states import TaskStatus

router = APIRouter(prefix="/api/tasks", tags=["tasks"])

MAX_OFFSET = 10_000_000  # a bigger offset is a mistake (and 2**63 overflows SQLite)

JOB_EXAMPLE = {
    "ruleGroup": {
        "id": "g",
        "title": "demo",
        "rules": [{"type": "clip", "title": "c", "material_ids": ["m1"]}],
    },
    "materials": [{"id": "m1", "type": "video", "path": "http://127.0.0.1:9000/clip.mp4"}],
    "testData": {
        "tracks": [{"id": "v", "type": "video"}],
        "items": [{"type": "clip", "data": {"track": "v", "start": 0, "duration": 2}}],
    },
    "draft_config": {},
}


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refusing (413) anything over ``limit`` without reading it all."""
    declared = request.headers.get("content-length")
    too_big = RequestRejected(
        [FieldProblem((), f"the body is larger than {limit} bytes", "too_large")], 413
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/submit",
    summary="Submit a draft job; answers at once with its task_id",
    description="Checked before anything is stored: a bad field answers 422 with its JSON "
    "path, a body over max_request_bytes 413, a body not sent as application/json 415.",
    response_model=SubmitResponse,
    responses=errors(409, 413, 415, 422, 503),
    dependencies=[Depends(require_json)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": JOB_SCHEMA, "example": JOB_EXAMPLE}},
        }
    },
)
async def submit(request: Request, services: ServicesDep) -> dict[str, Any]:
    raw = await read_limited(request, services.settings.max_request_bytes)
    task = await services.queue.create_task(raw)
    return {
        "task_id": task.id,
        "status": task.status.value,
        "message": "task accepted",
        "total_files": len(task.files),
    }


@router.get(
    "/{task_id}",
    summary="A task with its progress and files",
    response_model=TaskView,
    responses=errors(404, 422, 503),
)
async def get_task(task_id: str, services: ServicesDep) -> dict[str, Any]:
    task = await services.queue.get_task(task_id)
    return task.view()


@router.get(
    "",
    summary="Tasks, newest first",
    response_model=TaskList,
    responses=errors(422, 503),
)
async def list_tasks(
    services: ServicesDep,
    status: TaskStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    tasks, total = await services.queue.list_tasks(status, limit, offset)
    return {
        "tasks": [t.view(with_files=False) for t in tasks],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.post(
    "/{task_id}/cancel",
    summary="Stop a task's downloads; the record is kept",
    response_model=CancelResponse,
    responses=errors(404, 409, 422, 503),
)
async def cancel_task(task_id: str, services: ServicesDep) -> dict[str, Any]:
    task = await services.queue.cancel_task(task_id)
    return {"success": True, "message": f"task {task.id} cancelled", "status": task.status.value}
