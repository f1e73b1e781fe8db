"""The draft of a task as a zip, for users whose JianYing runs on another machine.

The zip is built again for every request, the same bytes each time (see
``drafts/package.py``), and sent with its SHA-256 twice: ``Repr-Digest: sha-256=:<base64>:``
(RFC 9530: the digest of the whole zip, on a 206 too) and a strong ``ETag`` holding the hex
digest. A ``Range: bytes=N-`` request (with ``If-Range: <that ETag>``) resumes a download
cut short: 206 with ``Content-Range``, or the whole zip (200) when the ETag no longer
matches; a start past the end answers 416 with ``Content-Range: bytes */<size>``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from draftdl.api.deps import ServicesDep
from draftdl.api.errors import error_response
from draftdl.api.schemas import ErrorBody, errors
from draftdl.drafts.package import PackedDraft, pack_draft
from draftdl.errors import InvalidTransition

router = APIRouter(prefix="/api/tasks", tags=["drafts"])

ZIP_CONTENT = {"application/zip": {"schema": {"type": "string", "format": "binary"}}}
ONE_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
DIGEST_HEADERS: dict[str, Any] = {
    "ETag": {
        "description": "The zip's SHA-256 in hex, quoted (a strong ETag): send it as If-Range "
        "to resume",
        "schema": {"type": "string"},
    },
    "Repr-Digest": {
        "description": "The SHA-256 of the whole zip (RFC 9530), `sha-256=:<base64>:`",
        "schema": {"type": "string"},
    },
    "Accept-Ranges": {"description": "`bytes`", "schema": {"type": "string"}},
}


def wanted_range(
    range_header: str | None, if_range: str | None, etag: str, size: int
) -> tuple[int, int] | bool | None:
    """The one range to send as (start, end exclusive); None for the whole zip (no Range,
    one the server ignores, or an If-Range that is not the current ETag); False when the
    range starts past the end (416). Several ranges are answered with the whole zip, which
    RFC 9110 allows."""
    if range_header is None:
        return None
    if if_range is not None and if_range.strip() != etag:  # also a date: not ours to judge
        return None
    match = ONE_RANGE.match(range_header)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # bytes=-N: the last N bytes
        suffix = int(last)
        if suffix == 0:
            return False
        return (max(size - suffix, 0), size) if size else False
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if last and int(last) < start:
        return None  # not a valid range: ignored
    if start >= size:
        return False
    return start, end


class DraftZipResponse(FileResponse):
    """The zip, whole or one range of it; the file goes once the answer is sent (or cut)."""

    def __init__(self, path: str, packed: PackedDraft, filename: str) -> None:
        self.etag = f'"{packed.sha256}"'
        self.size = packed.size
        digest = base64.b64encode(bytes.fromhex(packed.sha256)).decode()
        self.digests = {"ETag": self.etag, "Repr-Digest": f"sha-256=:{digest}:"}
        super().__init__(
            path,
            media_type="application/zip",
            filename=filename,
            headers=self.digests,
            background=BackgroundTask(self.remove),
        )

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            headers = Headers(scope=scope)
            wanted = wanted_range(
                headers.get("range"), headers.get("if-range"), self.etag, self.size
            )
            if wanted is False:
                refusal = error_response(
                    f"the range starts past the end of the zip ({self.size} bytes)",
                    416,
                    {**self.digests, "Content-Range": f"bytes */{self.size}"},
                )
                await refusal(scope, receive, send)
                return
            # Starlette serves one canonical range itself; anything else gets the whole zip.
            raw = [(k, v) for k, v in scope["headers"] if k.lower() not in (b"range", b"if-range")]
            if isinstance(wanted, tuple):
                raw.append((b"range", f"bytes={wanted[0]}-{wanted[1] - 1}".encode()))
            await super().__call__({**scope, "headers": raw}, receive, send)
        finally:
            self.remove()  # also when the client went away mid-body


@router.get(
    "/{task_id}/draft.zip",
    summary="The task's draft folder with its media, ready to unpack into JianYing's drafts",
    description="The zip holds one folder named like the draft; its last member, "
    "`<folder>/draftdl-manifest.json`, lists every other member with its size and SHA-256. "
    "The same draft gives the same bytes on every request: the answer carries the zip's "
    "SHA-256 as `Repr-Digest` and as the ETag, and `Range: bytes=N-` with `If-Range: "
    "<ETag>` resumes a cut download (206; the whole zip, 200, if the draft changed).",
    response_class=FileResponse,
    responses={
        200: {
            "description": "A zip holding one folder named like the draft",
            "content": ZIP_CONTENT,
            "headers": DIGEST_HEADERS,
        },
        206: {
            "description": "The range asked for (Range, with an If-Range that matches)",
            "content": ZIP_CONTENT,
            "headers": {
                **DIGEST_HEADERS,
                "Content-Range": {
                    "description": "`bytes <first>-<last>/<size>`",
                    "schema": {"type": "string"},
                },
            },
        },
        **errors(404, 409, 422),
        416: {
            "model": ErrorBody,
            "description": "The range starts past the end of the zip",
            "headers": {
                "Content-Range": {
                    "description": "`bytes */<size>`",
                    "schema": {"type": "string"},
                }
            },
        },
        **errors(503),
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

    def build() -> tuple[str, PackedDraft]:
        if not folder.is_dir():
            raise InvalidTransition(f"the draft of task {task_id} is no longer at {folder}")
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(suffix=".zip", dir=tmp_dir)
        os.close(fd)
        try:
            packed = pack_draft(folder, Path(name), root)
        except BaseException:
            os.unlink(name)
            raise
        return name, packed

    archive, packed = await asyncio.to_thread(build)
    return DraftZipResponse(archive, packed, f"{folder.name}.zip")
