"""The tools: each one request to draftdl's API, its JSON answer as the structured result.

Arguments are checked here only as far as their schema tells an agent what to send (the
wait bounds, an id that stays one path segment); everything else is the API's to judge, and
its refusal comes back as the tool error.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from draftdl.mcp.backend import Backend
from draftdl.model.states import TaskStatus

MAX_WAIT = 60  # seconds: the API's bound on ?wait= (tasks/waiting.py; not imported, for
# that module pulls in the whole queue, which `draftdl mcp` never runs)

Ctx = Context[Backend, Any]
TaskId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="the task_id that submit_job answered",
    ),
]
Wait = Annotated[
    float,
    Field(
        ge=0,
        le=MAX_WAIT,
        description="seconds (at most 60) to wait for the task to end: the answer comes as "
        "soon as it is completed, failed or cancelled, or after the wait with its state then",
    ),
]
Result = dict[str, Any]


def _backend(ctx: Ctx) -> Backend:
    return ctx.request_context.lifespan_context


def _task(task_id: str, action: str = "") -> str:
    return f"/api/tasks/{task_id}" + (f"/{action}" if action else "")


async def submit_job(
    job: Annotated[
        dict[str, Any],
        Field(description="the job: see the resource draftdl://job-format and its examples"),
    ],
    ctx: Ctx,
    wait_seconds: Wait = 0,
) -> Result:
    """Submit a JianYing draft job: draftdl downloads its media and builds the draft.

    Answers {task_id, status, message, total_files} at once, or with wait_seconds after up to
    that long, adding the task as it then is under "task". A bad field is refused before
    anything is stored, naming its JSON path (materials[0].path) and why. Then call get_task
    with wait_seconds until status is completed (draft_path is the draft folder), failed
    (error_message says why) or cancelled.
    """
    # Sent as the API receives any client's body: our own encoding, so what the API refuses
    # (NaN, Infinity) it refuses in its own words.
    body = json.dumps(job, ensure_ascii=False).encode()
    return await _backend(ctx).call(
        ctx,
        "POST",
        "/api/tasks/submit",
        params={"wait": wait_seconds} if wait_seconds else None,
        content=body,
        headers={"Content-Type": "application/json"},
        wait=wait_seconds,
    )


async def get_task(task_id: TaskId, ctx: Ctx, wait_seconds: Wait = 0) -> Result:
    """A task: status (pending, downloading, paused, processing, completed, failed,
    cancelled), message, progress (files, bytes, speed, ETA), files (URL, local path, tries,
    errors), draft_path once built, error_message when it failed.

    With wait_seconds it answers as soon as the task ends, or after the wait: call it again
    until status is completed, failed or cancelled.
    """
    return await _backend(ctx).call(
        ctx,
        "GET",
        _task(task_id),
        params={"wait": wait_seconds} if wait_seconds else None,
        wait=wait_seconds,
    )


async def list_tasks(
    ctx: Ctx,
    status: Annotated[
        list[TaskStatus] | None,
        Field(description="only tasks in these states"),
    ] = None,
    q: Annotated[
        str | None,
        Field(max_length=200, description="only tasks whose title contains this (any case)"),
    ] = None,
    limit: Annotated[int, Field(ge=1, le=100)] = 20,
    offset: Annotated[int, Field(ge=0)] = 0,
) -> Result:
    """Tasks, newest first, without their files: {tasks, total, limit, offset}; total counts
    every match, over all pages."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if status:
        params["status"] = ",".join(s.value for s in status)
    if q:
        params["q"] = q
    return await _backend(ctx).call(ctx, "GET", "/api/tasks", params=params)


async def cancel_task(
    task_id: TaskId,
    ctx: Ctx,
    keep_files: Annotated[
        bool, Field(description="keep its partial files, for a retry that resumes them")
    ] = False,
) -> Result:
    """Cancel a task: its downloads stop, its record stays (retry_task can take it up
    again)."""
    params = {"keep_files": "true"} if keep_files else None
    return await _backend(ctx).call(ctx, "POST", _task(task_id, "cancel"), params=params)


async def pause_task(task_id: TaskId, ctx: Ctx) -> Result:
    """Pause a pending or downloading task: its bytes are kept and its slot goes to the next
    task; resume_task goes on from there."""
    return await _backend(ctx).call(ctx, "POST", _task(task_id, "pause"))


async def resume_task(task_id: TaskId, ctx: Ctx) -> Result:
    """Put a paused task back in the queue (status pending); it goes on from the bytes on
    disk."""
    return await _backend(ctx).call(ctx, "POST", _task(task_id, "resume"))


async def retry_task(
    task_id: TaskId,
    ctx: Ctx,
    urls: Annotated[
        dict[str, str] | None,
        Field(
            description="replacement links, old URL → new URL, for expired ones: only URLs "
            "the task has (as get_task lists them under files[].url)"
        ),
    ] = None,
) -> Result:
    """Retry a failed or cancelled task: only the files not yet complete are downloaded again
    (from the new links given in urls), then the draft is built. Answers {task_id, status,
    message, retried_files}."""
    kwargs: dict[str, Any] = {"json": {"urls": urls}} if urls else {}
    return await _backend(ctx).call(ctx, "POST", _task(task_id, "retry"), **kwargs)


async def health(ctx: Ctx) -> Result:
    """The server's health: status "ok" or "degraded" with the problems listed (aria2c, the
    database, free disk space), where drafts are written, how many tasks run."""
    # A degraded server answers 503 with the same body: an answer, not a failure.
    return await _backend(ctx).call(ctx, "GET", "/api/health", ok=(503,))


READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
CHANGES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
TOOLS = (
    (submit_job, "Submit a draft job", ToolAnnotations(read_only_hint=False, open_world_hint=True)),
    (get_task, "Get a task (optionally wait for it to end)", READ_ONLY),
    (list_tasks, "List tasks", READ_ONLY),
    (cancel_task, "Cancel a task", ToolAnnotations(read_only_hint=False, destructive_hint=True)),
    (pause_task, "Pause a task", CHANGES),
    (resume_task, "Resume a paused task", CHANGES),
    (retry_task, "Retry a failed or cancelled task", CHANGES),
    (health, "Server health", READ_ONLY),
)


def register_tools(server: MCPServer[Backend]) -> None:
    for fn, title, hints in TOOLS:
        server.add_tool(fn, title=title, annotations=hints, structured_output=True)
