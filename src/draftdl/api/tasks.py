"""Task routes: submit, read, list, cancel."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from draftdl.api.deps import Services, ServicesDep, require_json
from draftdl.api.fastjson import ViewResponse
from draftdl.api.schemas import (
    JOB_SCHEMA,
    CancelResponse,
    SubmitResponse,
    TaskAnswer,
    TaskList,
    errors,
)
from draftdl.errors import FieldProblem, RequestRejected
from draftdl.model.states import TaskStatus
from draftdl.model.task import TaskState
from draftdl.tasks.fetch_job import fetch_job
from draftdl.tasks.waiting import MAX_WAIT, wait_until_final

router = APIRouter(prefix="/api/tasks", tags=["tasks"])

MAX_OFFSET = 10_000_000  # a bigger offset is a mistake (and 2**63 overflows SQLite)
MAX_QUERY = 200  # characters of a title search
Wait = Annotated[
    float,
    Query(
        ge=0,
        le=MAX_WAIT,
        description="seconds (at most 60) to wait for the task to end: the answer comes as "
        "soon as it is completed, failed or cancelled, or after the wait with its state then",
    ),
]
STATUSES = ", ".join(s.value for s in TaskStatus)
KNOWN_STATUSES = frozenset(s.value for s in TaskStatus)

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
async def submit(request: Request, services: ServicesDep, wait: Wait = 0) -> dict[str, Any]:
    raw = await read_limited(request, services.settings.max_request_bytes)
    task = await services.queue.create_task(raw)
    return await _accepted(services, task, wait)


async def _accepted(services: Services, task: TaskState, wait: float) -> dict[str, Any]:
    """The submit answer; with ``wait``, once the task ended or the wait ran out."""
    answer: dict[str, Any] = {
        "message": "task accepted",
        "total_files": len(task.files),
        "warnings": list(task.warnings),
    }
    if wait > 0:
        task = await wait_until_final(services.queue, task.id, wait)
        answer["task"] = task.view()
    return {"task_id": task.id, "status": task.status.value, **answer}


def _from_another_site(request: Request) -> bool:
    """Fetch Metadata where the browser sends it, else its Origin or Referer; clients that
    are not browsers send none of them."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    host = request.headers.get("host", "").lower()
    for name in ("origin", "referer"):
        if value := request.headers.get(name):
            return urlsplit(value).netloc.lower() != host
    return False


@router.get(
    "/submit_with_url",
    summary="Submit the job JSON found at an http(s) URL (the original server's route)",
    description="The URL is fetched by the server (at most max_request_bytes, 15 s, 3 "
    "redirects, never this service's own ports or a denied network), then submitted like a "
    "body. A browser may call it only from this server's own pages.",
    response_model=SubmitResponse,
    responses=errors(403, 409, 413, 422, 503),
)
async def submit_with_url(
    request: Request,
    services: ServicesDep,
    url: Annotated[str, Query(max_length=2048, description="where the job JSON is")],
    wait: Wait = 0,
) -> dict[str, Any]:
    if _from_another_site(request):  # a GET that stores a task: not from other sites' pages
        raise HTTPException(403, "submit_with_url may not be called from another site's page")
    raw = await fetch_job(url, services.queue.source_policy(), services.settings.max_request_bytes)
    task = await services.queue.create_task(raw)
    return await _accepted(services, task, wait)


@router.get(
    "/{task_id}",
    summary="A task with its progress and files",
    description="With files=false, without its files: what a client polling a task of "
    "thousands of files needs (progress counts them), at a fraction of the answer's size.",
    response_model=TaskAnswer,
    responses=errors(404, 422, 503),
)
async def get_task(
    task_id: str,
    services: ServicesDep,
    wait: Wait = 0,
    files: Annotated[bool, Query(description="false: the task without its files")] = True,
) -> Response:
    task = await wait_until_final(services.queue, task_id, wait)
    return ViewResponse(task.view(with_files=files))


def parse_statuses(values: list[str] | None) -> frozenset[TaskStatus]:
    """``status=failed,cancelled`` and ``status=failed&status=cancelled`` alike; an unknown
    status answers 422 naming it."""
    found: set[TaskStatus] = set()
    unknown: list[str] = []
    for value in values or ():
        for part in value.split(","):
            name = part.strip()
            if name.lower() in KNOWN_STATUSES:
                found.add(TaskStatus(name.lower()))
            elif name:
                unknown.append(repr(name[:100]))
    if unknown:
        raise RequestValidationError(
            [
                {
                    "type": "enum",
                    "loc": ("query", "status"),
                    "msg": f"unknown status {', '.join(unknown[:10])}; the states are {STATUSES}",
                    "input": values,
                }
            ]
        )
    return frozenset(found)


@router.get(
    "",
    summary="Tasks, newest first",
    response_model=TaskList,
    responses=errors(422, 503),
)
async def list_tasks(
    services: ServicesDep,
    status: Annotated[
        list[str] | None,
        Query(
            description=f"only tasks in these states ({STATUSES}): several comma-separated "
            "(status=failed,cancelled), or the parameter repeated",
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(max_length=MAX_QUERY, description="only tasks whose title contains this (any case)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    statuses = parse_statuses(status)
    search = (q or "").replace("\x00", "")  # titles are stored without NUL
    tasks, total = await services.db.list_tasks(statuses, limit, offset, q=search or None)
    live = services.queue.live  # a live task's state is ahead of its row
    return ViewResponse(
        {
            "tasks": [live.get(t.id, t).view(with_files=False) for t in tasks],
            "total": total,
            "limit": limit,
            "offset": offset,
        }
    )


@router.post(
    "/{task_id}/cancel",
    summary="Stop a task's downloads; the record is kept",
    response_model=CancelResponse,
    responses=errors(404, 409, 422, 503),
)
async def cancel_task(
    task_id: str,
    services: ServicesDep,
    keep_files: Annotated[
        bool, Query(description="keep its partial files, for a retry that resumes them")
    ] = False,
) -> dict[str, Any]:
    task = await services.queue.cancel_task(task_id, keep_files=keep_files)
    return {"success": True, "message": f"task {task.id} cancelled", "status": task.status.value}
