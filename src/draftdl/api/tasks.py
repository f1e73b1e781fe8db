"""Task routes: submit, read, list, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from draftdl.api.deps import ServicesDep
from draftdl.errors import FieldProblem, RequestRejected
from draftdl.tasks.states import TaskStatus

router = APIRouter(prefix="/api/tasks", tags=["tasks"])

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
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}, "example": JOB_EXAMPLE}},
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


@router.get("/{task_id}", summary="A task with its progress and files")
async def get_task(task_id: str, services: ServicesDep) -> dict[str, Any]:
    task = await services.queue.get_task(task_id)
    return task.view()


@router.get("", summary="Tasks, newest first")
async def list_tasks(
    services: ServicesDep,
    status: TaskStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    tasks, total = await services.queue.list_tasks(status, limit, offset)
    return {
        "tasks": [t.view(with_files=False) for t in tasks],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.post("/{task_id}/cancel", summary="Stop a task's downloads; the record is kept")
async def cancel_task(task_id: str, services: ServicesDep) -> dict[str, Any]:
    task = await services.queue.cancel_task(task_id)
    return {"success": True, "message": f"task {task.id} cancelled", "status": task.status.value}
