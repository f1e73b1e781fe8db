"""The seam between downloading and drafting: the queue calls a DraftBuilder when files are down."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from draftdl.drafts.jianying import build_draft
from draftdl.drafts.profiles import DEFAULT_PROFILE
from draftdl.drafts.spec import plan_draft
from draftdl.errors import DraftBuildError, FieldProblem
from draftdl.model.task import TaskState
from draftdl.sources import SourcePolicy


class DraftBuilder(Protocol):
    async def build(self, task: TaskState) -> str | None:
        """Builds the task's draft from ``task.file_map()``; returns its folder, or None.

        Raises ``DraftBuildError`` with a message a person can act on.
        """
        ...


class JianYingDraftBuilder:
    """Builds with pyJianYingDraft in a worker thread, one folder per task under ``root``,
    staged in ``staging`` (the data folder's) when that is on the root's file system."""

    def __init__(
        self,
        root: Path,
        local_roots: Sequence[Path] = (),
        profile: str = DEFAULT_PROFILE,
        staging: Path | None = None,
    ) -> None:
        self.root = root
        self.local = SourcePolicy.build(local_roots, (), ())
        self.profile = profile
        self.staging = staging

    async def build(self, task: TaskState) -> str | None:
        key = task.build_key or task.id.replace("-", "")[:8]
        folder = await asyncio.to_thread(self._build, task.request_json, task.file_map(), key)
        return str(folder)

    def _build(self, request_json: str, files: dict[str, str], key: str) -> Path:
        body = json.loads(request_json)
        problems: list[FieldProblem] = []
        plan = plan_draft(body, problems)
        if problems:  # the request was checked at submit; this guards older stored tasks
            raise DraftBuildError("; ".join(f"{p.path}: {p.msg}" for p in problems[:5]))
        return build_draft(
            plan, files, self.root, key, self.local, self.profile, staging_root=self.staging
        )
