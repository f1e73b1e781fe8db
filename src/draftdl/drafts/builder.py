"""The seam between downloading and drafting: the queue calls a DraftBuilder when files are down."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from draftdl.drafts.jianying import build_draft
from draftdl.drafts.location import remove_builds_of
from draftdl.drafts.pool import BuildPool, WorkerLost
from draftdl.drafts.profiles import DEFAULT_PROFILE
from draftdl.drafts.spec import plan_draft
from draftdl.errors import DraftBuildError, FieldProblem
from draftdl.model.task import TaskState
from draftdl.sources import SourcePolicy

BUILD_MODULES = (__name__,)  # what a build worker imports when it starts
WORKER_LOST = (
    "the draft build's worker process ended before the draft was done (killed, out of "
    "memory or crashed); nothing of it was kept, and the next build gets a new process"
)


class DraftBuilder(Protocol):
    async def build(self, task: TaskState) -> str | None:
        """Builds the task's draft from ``task.file_map()``; returns its folder, or None.

        Raises ``DraftBuildError`` with a message a person can act on.
        """
        ...


@dataclass(frozen=True)
class BuildJob:
    """What a build needs, as plain data: it is pickled to a worker process."""

    request_json: str
    files: dict[str, str]
    root: Path
    key: str
    local_roots: tuple[Path, ...] = ()
    profile: str = DEFAULT_PROFILE
    staging: Path | None = None


def build_from_request(job: BuildJob) -> Path:
    """One draft from a stored request; runs in a build worker process."""
    body = json.loads(job.request_json)
    problems: list[FieldProblem] = []
    plan = plan_draft(body, problems)
    if problems:  # the request was checked at submit; this guards older stored tasks
        raise DraftBuildError("; ".join(f"{p.path}: {p.msg}" for p in problems[:5]))
    local = SourcePolicy.build(job.local_roots, (), ())
    return build_draft(
        plan, job.files, job.root, job.key, local, job.profile, staging_root=job.staging
    )


class JianYingDraftBuilder:
    """Builds with pyJianYingDraft in ``pool``'s worker processes (in a thread without one:
    for tools and tests), one folder per task under ``root``, staged in ``staging`` (the data
    folder's) when that is on the root's file system.

    A user's cancel does not stop a running build: it completes, and the queue removes the
    folder when the task's completion is refused (tasks/queue.py ``_build``)."""

    def __init__(
        self,
        root: Path,
        local_roots: Sequence[Path] = (),
        profile: str = DEFAULT_PROFILE,
        staging: Path | None = None,
        pool: BuildPool | None = None,
    ) -> None:
        self.root = root
        self.local_roots = tuple(local_roots)
        self.profile = profile
        self.staging = staging
        self.pool = pool

    async def build(self, task: TaskState) -> str | None:
        key = task.build_key or task.id.replace("-", "")[:8]
        job = self._job(task.request_json, task.file_map(), key)
        if self.pool is None:
            return str(await asyncio.to_thread(build_from_request, job))
        try:
            folder = await self.pool.run(build_from_request, job)
        except WorkerLost as exc:
            # Its staging folder is all a dead build can leave: it goes into place by rename.
            await asyncio.to_thread(remove_builds_of, self.root, key, self.staging)
            raise DraftBuildError(WORKER_LOST) from exc
        return str(folder)

    def _job(self, request_json: str, files: dict[str, str], key: str) -> BuildJob:
        return BuildJob(
            request_json, files, self.root, key, self.local_roots, self.profile, self.staging
        )

    def _build(self, request_json: str, files: dict[str, str], key: str) -> Path:
        """The build itself, in this process (tests, and builders that add to it)."""
        return build_from_request(self._job(request_json, files, key))
