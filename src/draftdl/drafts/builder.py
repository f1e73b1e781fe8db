"""The seam between downloading and drafting: the queue calls a DraftBuilder when files are down."""

from __future__ import annotations

from typing import Protocol

from draftdl.tasks.model import TaskState


class DraftBuilder(Protocol):
    async def build(self, task: TaskState) -> str | None:
        """Builds the task's draft from ``task.file_map()``; returns its folder, or None.

        Raises ``DraftBuildError`` with a message a person can act on.
        """
        ...


class NoDraftBuilder:
    """Until draft generation lands, a task whose files are all down completes without a draft."""

    async def build(self, task: TaskState) -> str | None:
        return None
