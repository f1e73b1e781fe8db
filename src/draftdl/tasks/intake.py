"""Intake: a submitted body becomes a checked job and its planned files, off the event loop."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from draftdl.errors import FieldProblem, RequestRejected
from draftdl.model.task import FileState, new_gid
from draftdl.sources import SourcePolicy
from draftdl.tasks.planner import name_inside, plan_files
from draftdl.tasks.validation import ValidatedJob, validate_job

log = logging.getLogger(__name__)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number (a draft cannot hold it)")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is too large a number (a draft cannot hold it)")
    return value


def parse_job(
    raw: bytes, max_files: int, policy: SourcePolicy | None = None
) -> tuple[str, ValidatedJob]:
    """Decodes and checks a body; run in a thread (a 10 MiB body takes a while)."""
    try:
        text = raw.decode("utf-8")
        body = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
        # "\ud800" escapes decode to text that cannot be stored or used as a name.
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise RequestRejected(
            [FieldProblem((), f"not valid JSON: {reason}", "json_invalid")]
        ) from exc
    try:
        return text, validate_job(body, max_files=max_files, policy=policy)
    except RequestRejected:
        raise
    except Exception as exc:  # a check we did not foresee must still answer 422, not 500
        log.exception("unexpected error while checking a job")
        raise RequestRejected(
            [FieldProblem((), f"could not read the job: {exc!r}", "value_error")]
        ) from exc


def plan_task_files(job: ValidatedJob, folder: Path) -> list[FileState]:
    """``folder`` is the new task's: the resolved downloads folder plus its id, so it is not
    resolved again (a realpath walk per submit was an eighth of the submit path's time)."""
    if not folder.is_absolute():
        raise ValueError(f"the task folder {folder} is not an absolute path")
    return [
        FileState(
            idx=i,
            url=planned.url,
            file_name=planned.file_name,
            file_path=str(name_inside(folder, planned.file_name)),
            gid=new_gid(),
        )
        for i, planned in enumerate(plan_files(job.urls))
    ]


def read_job(
    raw: bytes, max_files: int, folder: Path, policy: SourcePolicy | None = None
) -> tuple[str, ValidatedJob, list[FileState]]:
    text, job = parse_job(raw, max_files, policy)
    return text, job, plan_task_files(job, folder)
