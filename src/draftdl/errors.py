"""The one exception tree of draftdl; the API maps it to HTTP in ``api/errors.py``.

DraftdlError
├── Aria2Error
│   ├── Aria2Unavailable        aria2c is not running or cannot be reached
│   └── Aria2RPCError           aria2 answered with an error (code, message)
├── TaskError
│   ├── TaskNotFound
│   └── InvalidTransition       e.g. cancelling a finished task
├── RequestRejected             a submitted job is invalid (422) or too large (413)
├── DraftBuildError             the draft could not be built from the files
├── SettingsError               settings are invalid (each problem names its setting and source)
└── DataDirLocked               another server holds the data folder
"""

from __future__ import annotations

from dataclasses import dataclass


class DraftdlError(Exception):
    """Base of everything draftdl raises on purpose."""


class Aria2Error(DraftdlError):
    pass


class Aria2Unavailable(Aria2Error):
    pass


class Aria2RPCError(Aria2Error):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"aria2 error {code}: {message}")
        self.code = code
        self.message = message


class TaskError(DraftdlError):
    pass


class TaskNotFound(TaskError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id!r} not found")
        self.task_id = task_id


class InvalidTransition(TaskError):
    pass


class ClaimChanged(InvalidTransition):
    """In a cluster: a task this node changed on the database (no node held it) was claimed,
    or deleted, meanwhile; nothing of the change was written (409 if asking again fails)."""


class NodeUnavailable(TaskError):
    """The cluster node that holds a task did not answer a control in time (503)."""


@dataclass(frozen=True)
class FieldProblem:
    """One rejected field: where it is in the submitted JSON and why."""

    loc: tuple[str | int, ...]
    msg: str
    type: str = "value_error"

    @property
    def path(self) -> str:
        """The JSON path as people write it: ``materials[0].path``."""
        out = ""
        for part in self.loc:
            if isinstance(part, int):
                out += f"[{part}]"
            else:
                out += f".{part}" if out else part
        return out or "body"


class RequestRejected(DraftdlError):
    def __init__(self, problems: list[FieldProblem], status_code: int = 422) -> None:
        super().__init__("; ".join(f"{p.path}: {p.msg}" for p in problems))
        self.problems = problems
        self.status_code = status_code


class DraftBuildError(DraftdlError):
    pass


class SettingsError(DraftdlError):
    """Raised by ``load_settings`` when settings are invalid: one line per problem, each
    naming the setting and where its value came from."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class DataDirLocked(DraftdlError):
    """Raised at start when another draftdl server holds the data folder's lock."""

    def __init__(self, data_dir: str, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(
            f"the data folder {data_dir} is in use by another draftdl server ({holder})"
        )
        self.data_dir = data_dir
        self.pid = pid
