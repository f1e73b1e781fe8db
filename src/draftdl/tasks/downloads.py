"""The downloads folder of a task: what to remove when it fails or ages out.

Only names the planner gave (and aria2's ``.aria2`` control files beside them) are touched,
and only inside ``downloads/<task_id>/``: nothing else on disk can be removed through a task.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterable
from pathlib import Path

from draftdl.model.states import FileStatus
from draftdl.model.task import TaskState


def remove_partial_files(root: Path, task: TaskState) -> int:
    """Removes the files of ``task`` that did not complete; complete ones stay for a retry.
    Returns how many files were removed. Run in a thread."""
    folder = root / task.id
    removed = 0
    for f in task.files:
        if f.status is FileStatus.COMPLETE:
            continue
        for path in (folder / f.file_name, folder / f"{f.file_name}.aria2"):
            if path.parent == folder and path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
    with contextlib.suppress(OSError):
        folder.rmdir()  # only when nothing is left in it
    return removed


def remove_task_folders(root: Path, task_ids: Iterable[str]) -> None:
    """The whole download folder of each task (clean-up of old finished tasks)."""
    for task_id in task_ids:
        folder = root / task_id
        if folder.parent == root and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
