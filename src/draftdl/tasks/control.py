"""The user's controls over a task: pause, resume, priority, speed cap, retry (with replacement
links), regenerate, delete.

Each goes through the queue's one transition path (saved, then announced), checks the state it
starts from (``InvalidTransition`` names the current one: 409), and leaves aria2 to the monitor,
which makes aria2 hold exactly what the task's state says: a paused task's downloads paused, a
running task's let go.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import shutil
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx

from draftdl.errors import ClaimChanged, FieldProblem, InvalidTransition, RequestRejected
from draftdl.events.bus import TASK_DELETED
from draftdl.model.states import FileStatus, TaskStatus
from draftdl.model.task import FileState, TaskState, new_gid
from draftdl.tasks.downloads import remove_task_folders
from draftdl.tasks.validation import DEFAULT_PORT

if TYPE_CHECKING:
    from draftdl.tasks.queue import TaskQueue

log = logging.getLogger(__name__)

UNSET = object()
HEAD_TIMEOUT = 10.0


P = ParamSpec("P")
T = TypeVar("T")


def asked_again_if_claimed(
    control: Callable[Concatenate[Controls, str, P], Awaitable[T]],
) -> Callable[Concatenate[Controls, str, P], Awaitable[T]]:
    """In a cluster, a control done on the database (no node held the task) whose write was
    refused because a worker claimed the task meanwhile runs once more: on that worker."""

    async def run(self: Controls, task_id: str, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await control(self, task_id, *args, **kwargs)
        except ClaimChanged:
            return await control(self, task_id, *args, **kwargs)

    return functools.update_wrapper(run, control)


class Elsewhere(Protocol):
    """In a cluster (cluster/control.py): the node whose live claim covers a task, and the
    way to have it run a control there."""

    async def holder(self, task_id: str) -> str | None: ...

    async def ask(
        self, node: str, task_id: str, action: str, args: dict[str, Any]
    ) -> dict[str, Any]: ...

    async def everywhere(self, name: str, value: str, action: str) -> None: ...

    async def shared(self, name: str) -> str | None: ...


class Controls:
    def __init__(self, queue: TaskQueue, drafts_root: Path | None) -> None:
        self.queue = queue
        self.drafts_root = drafts_root.resolve() if drafts_root else None

    async def elsewhere(
        self, task_id: str, action: str, args: dict[str, Any]
    ) -> dict[str, Any] | None:
        """In a cluster, a task another node holds is controlled there: that node's answer
        (it raises what the node raised); None when the control runs here."""
        channel = self.queue.channel
        if channel is None or task_id in self.queue.live:
            return None
        node = await channel.holder(task_id)
        if node is None:
            return None
        return await channel.ask(node, task_id, action, args)

    async def run(self, task_id: str, action: str, args: dict[str, Any]) -> dict[str, Any] | None:
        """A control another node was asked for, run here (cluster/control.py)."""
        match action:
            case "pause":
                await self.pause(task_id)
            case "resume":
                await self.resume(task_id)
            case "change":
                limit = args.get("limit", UNSET)
                await self.change(task_id, priority=args.get("priority"), limit=limit)
            case "retry":
                _, count = await self.retry(task_id, args.get("urls"))
                return {"count": count}
            case "regenerate":
                await self.regenerate(task_id)
            case "delete":
                await self.delete(
                    task_id, files=bool(args.get("files")), draft=bool(args.get("draft"))
                )
            case "limits":  # the global speed cap, set on another node
                await self.queue.set_overall_limit(str(args["value"]), here_only=True)
            case "cancel":
                await self.queue.cancel_task(task_id, keep_files=bool(args.get("keep_files")))
            case _:
                raise InvalidTransition(f"unknown control {action!r}")
        return None

    def _refuse(self, task: TaskState, what: str, allowed: str) -> InvalidTransition:
        return InvalidTransition(
            f"task {task.id} is {task.status.value}: only {allowed} task can be {what}"
        )

    # -- pause, resume --------------------------------------------------------------------

    @asked_again_if_claimed
    async def pause(self, task_id: str) -> TaskState:
        """Holds a task back: its downloads stop where they are and its slot goes to the next."""
        q = self.queue
        if await self.elsewhere(task_id, "pause", {}) is not None:
            return await q.get_task(task_id)
        task = await q.get_task(task_id)
        if task.status not in (TaskStatus.PENDING, TaskStatus.DOWNLOADING):
            raise self._refuse(task, "paused", "a pending or downloading")
        if not await q.transition(task, TaskStatus.PAUSED, message="paused by the user"):
            raise self._refuse(task, "paused", "a pending or downloading")
        for f in task.files:
            f.download_speed = 0
        q.monitor.wake()  # the next read pauses what aria2 still runs
        return task

    @asked_again_if_claimed
    async def resume(self, task_id: str) -> TaskState:
        """Back in the queue by its priority; it goes on from the bytes on disk."""
        q = self.queue
        if await self.elsewhere(task_id, "resume", {}) is not None:
            return await q.get_task(task_id)
        task = await q.get_task(task_id)
        if task.status is not TaskStatus.PAUSED or not await q.transition(
            task, TaskStatus.PENDING, message="waiting for a free slot"
        ):
            raise self._refuse(task, "resumed", "a paused")
        q.requeue(task)
        return task

    # -- priority, speed cap --------------------------------------------------------------

    @asked_again_if_claimed
    async def change(
        self, task_id: str, *, priority: int | None = None, limit: object = UNSET
    ) -> TaskState:
        """A new priority (it overtakes in the queue; a running task's waiting downloads move
        in aria2's) and/or speed cap (``None`` removes it) for an unfinished task."""
        q = self.queue
        args: dict[str, Any] = {} if priority is None else {"priority": priority}
        if limit is not UNSET:
            args["limit"] = limit
        if await self.elsewhere(task_id, "change", args) is not None:
            return await q.get_task(task_id)
        task = await q.get_task(task_id)
        if task.status.final:
            raise self._refuse(task, "changed", "an unfinished")
        raised = priority is not None and priority > task.priority
        changes: dict[str, object] = {}
        if priority is not None:
            changes["priority"] = priority
        if limit is not UNSET:
            changes["max_download_limit"] = limit
        if not changes:
            return task
        await q.update(task, **changes)
        if priority is not None:
            if task.status is TaskStatus.PENDING:
                q.requeue(task)
            q.monitor.reposition(task, first=raised)
        if limit is not UNSET:
            q.monitor.limit_changed(task)
        return task

    # -- retry, regenerate ----------------------------------------------------------------

    @asked_again_if_claimed
    async def retry(
        self, task_id: str, urls: Mapping[str, str] | None = None
    ) -> tuple[TaskState, int]:
        """Downloads again the files of a failed or cancelled task that are not complete
        (``urls`` replaces expired links: only URLs the task has), then builds the draft.
        Returns the task and how many files go again."""
        q = self.queue
        done = await self.elsewhere(task_id, "retry", {"urls": dict(urls) if urls else None})
        if done is not None:
            return await q.get_task(task_id), int(done.get("count", 0))
        task = await q.get_task(task_id)
        if task.status not in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            raise self._refuse(task, "retried", "a failed or cancelled")
        replace = self._check_replacements(task, urls or {})
        todo = [f for f in task.files if f.status is not FileStatus.COMPLETE]
        for f in todo:
            new = replace.get(f.url) or replace.get(f.source_url or "")
            if new is not None and new != f.url:
                f.source_url = f.source_url or f.url
                f.url = new
                await self._forget_bytes_unless_same_length(task, f)
            if not await asyncio.to_thread(Path(f.file_path).exists):
                f.completed_length = f.total_length = 0  # its partial bytes were removed
            _again(f)
        task.build_key = None
        task.deadline = None  # counted from the first submission: a retry has none
        task.deadline_dropped = True
        await self._restart(task, todo, "retried: waiting for a free slot")
        return task, len(todo)

    @asked_again_if_claimed
    async def regenerate(self, task_id: str) -> TaskState:
        """A new draft folder from the stored request and the files (downloading again only
        what is missing); ``draft_path`` moves there when it is built, the old one stays."""
        q = self.queue
        if await self.elsewhere(task_id, "regenerate", {}) is not None:
            return await q.get_task(task_id)
        task = await q.get_task(task_id)
        if task.status not in (TaskStatus.COMPLETED, TaskStatus.FAILED):
            raise self._refuse(task, "regenerated", "a completed or failed")
        missing = await asyncio.to_thread(_missing_files, task)
        task.build_key = f"{task.id.replace('-', '')[:8]}-{secrets.token_hex(2)}"
        task.deadline, task.deadline_dropped = None, True
        if missing:
            for f in missing:
                _again(f)
            await self._restart(task, missing, "regenerating: downloading what is missing")
        elif await q.transition(task, TaskStatus.PROCESSING, message="building the draft"):
            q.start_build(task)
        else:
            raise self._refuse(task, "regenerated", "a completed or failed")
        return task

    async def _restart(self, task: TaskState, files: list[FileState], message: str) -> None:
        q = self.queue
        if not await q.transition(task, TaskStatus.PENDING, message=message, error_message=None):
            raise self._refuse(task, "started again", "a finished")
        q.requeue(task)
        log.info("task %s: %d files to download again", task.id, len(files))

    def _check_replacements(self, task: TaskState, urls: Mapping[str, str]) -> dict[str, str]:
        known = {f.url for f in task.files} | {f.source_url for f in task.files if f.source_url}
        problems: list[FieldProblem] = []
        policy = self.queue.source_policy()
        for old, new in urls.items():
            loc = ("urls", old)
            if old not in known:
                problems.append(FieldProblem(loc, "the task has no file with this URL"))
                continue
            parts = urlsplit(new) if isinstance(new, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
                problems.append(FieldProblem(loc, "the replacement must be an http(s) URL"))
                continue
            try:
                port = parts.port or DEFAULT_PORT[parts.scheme]
            except ValueError as exc:
                problems.append(FieldProblem(loc, f"not a valid URL: {exc}"))
                continue
            denied = policy.url_problems({(parts.hostname, port)})
            if denied:
                problems.append(FieldProblem(loc, next(iter(denied.values()))))
        if problems:
            raise RequestRejected(problems)
        return dict(urls)

    async def _forget_bytes_unless_same_length(self, task: TaskState, f: FileState) -> None:
        """A replaced link resumes the partial file only if the new server has the same
        length; otherwise the partial bytes (and aria2's control file) go."""
        partial = Path(f.file_path)
        if not await asyncio.to_thread(partial.exists):
            return
        length = None
        try:
            # No redirects: only the host the policy checked is asked (else: start over).
            async with httpx.AsyncClient(timeout=HEAD_TIMEOUT, follow_redirects=False) as http:
                resp = await http.head(f.url)
                if resp.status_code < 400 and resp.headers.get("content-length", "").isdigit():
                    length = int(resp.headers["content-length"])
        except httpx.HTTPError as exc:
            log.info("task %s: could not ask %s for its length: %r", task.id, f.url, exc)
        if length is not None and length == f.total_length > 0:
            return
        await asyncio.to_thread(_remove_partial, partial)
        f.completed_length = 0
        f.total_length = 0

    # -- delete ---------------------------------------------------------------------------

    @asked_again_if_claimed
    async def delete(self, task_id: str, *, files: bool, draft: bool) -> TaskState:
        """Stops the task if it runs, removes its downloads from aria2 and its record; its
        downloaded files with ``files``, its draft folder with ``draft``."""
        q = self.queue
        task = await q.get_task(task_id)
        if await self.elsewhere(task_id, "delete", {"files": files, "draft": draft}) is not None:
            return task  # (as it was before: its record is gone)
        if not task.status.final:
            await q.transition(task, TaskStatus.CANCELLED, message="deleted by the user")
            await q.stop_downloads(task)
        await q.forget(task)
        if files:
            await asyncio.to_thread(remove_task_folders, q.downloads, [task.id])
        if draft and task.draft_path:
            await asyncio.to_thread(self._remove_draft, Path(task.draft_path))
        q.bus.publish(TASK_DELETED, task.id, {"task_id": task.id, "status": "deleted"})
        log.info("task %s deleted (files: %s, draft: %s)", task.id, files, draft)
        return task

    def _remove_draft(self, folder: Path) -> None:
        """Only a folder of our drafts root: a task's stored path is never trusted further."""
        if self.drafts_root is None or folder.resolve().parent != self.drafts_root:
            log.warning("not removing %s: it is not in the drafts folder", folder)
            return
        shutil.rmtree(folder, ignore_errors=True)


def _again(f: FileState) -> None:
    """A file to download again: a fresh gid (aria2 may still hold the old result)."""
    f.status = FileStatus.WAITING
    f.gid = new_gid()
    f.handed_at = None
    f.attempts = 0
    f.next_retry_at = None
    f.error_code = None
    f.error_message = None
    f.download_speed = 0


def _missing_files(task: TaskState) -> list[FileState]:
    return [
        f
        for f in task.files
        if f.status is not FileStatus.COMPLETE or not Path(f.file_path).is_file()
    ]


def _remove_partial(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".aria2")):
        p.unlink(missing_ok=True)
