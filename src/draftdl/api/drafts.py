"""The draft of a task as a zip, for users whose JianYing runs on another machine."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from draftdl.api.deps import ServicesDep
from draftdl.api.schemas import errors
from draftdl.drafts.package import pack_draft
from draftdl.errors import InvalidTransition

router = APIRouter(prefix="/api/tasks", tags=["drafts"])


@router.get(
    "/{task_id}/draft.zip",
    summary="The task's draft folder with its media, ready to unpack into JianYing's drafts",
    response_class=FileResponse,
    responses={
        200: {
            "description": "A zip holding one folder named like the draft",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        },
        **errors(404, 409, 422, 503),
    },
)
async def draft_zip(
    task_id: str,
    services: ServicesDep,
    root: Annotated[
        str | None,
        Query(
            max_length=1024,
            description="The client's JianYing draft folder: media paths become absolute "
            "paths under it. Without it, JianYing's relative placeholder form is used.",
        ),
    ] = None,
) -> FileResponse:
    task = await services.queue.get_task(task_id)
    if not task.draft_path:
        raise InvalidTransition(f"task {task_id} has no draft (it is {task.status.value})")
    folder = Path(task.draft_path)
    tmp_dir = services.settings.data_dir / "tmp"

    def build() -> str:
        if not folder.is_dir():
            raise InvalidTransition(f"the draft of task {task_id} is no longer at {folder}")
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(suffix=".zip", dir=tmp_dir)
        os.close(fd)
        try:
            pack_draft(folder, Path(name), root)
        except BaseException:
            os.unlink(name)
            raise
        return name

    archive = await asyncio.to_thread(build)
    return FileResponse(
        archive,
        media_type="application/zip",
        filename=f"{folder.name}.zip",
        background=BackgroundTask(os.unlink, archive),
    )
