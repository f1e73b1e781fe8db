"""Upkeep: the queue's periodic work, so that nothing accepted is stranded or outstays its time.

- reconciliation: a task in a non-final state that nothing works on (a start, failure or build
  whose database write failed, a task stored while its client got an error) is put back where
  its state says it belongs, and logged;
- deadlines: a task with ``deadline`` seconds fails when they have passed;
- clean-up: finished tasks older than ``cleanup_days`` go, with their downloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from draftdl.db.repo import Database
from draftdl.model.states import FileStatus, TaskStatus
from draftdl.model.task import TaskState, utcnow
from draftdl.settings import Settings
from draftdl.tasks.downloads import remove_task_folders

if TYPE_CHECKING:
    from draftdl.tasks.queue import TaskQueue

log = logging.getLogger(__name__)

CLEANUP_EVERY = 24 * 3600.0  # and once at start
MAX_DEADLINE_SLEEP = 60.0


class Upkeep:
    def __init__(self, settings: Settings, db: Database, queue: TaskQueue) -> None:
        self.settings = settings
        self.db = db
        self.queue = queue
        self._deadline_wake = asyncio.Event()
        self.revived = 0  # for health and tests

    def start(self) -> list[asyncio.Task[None]]:
        """The loops, for the queue to own and stop."""
        loops = [
            self._every(self.settings.reconcile_interval, self.reconcile, "reconcile"),
            asyncio.create_task(self._deadline_loop(), name="deadlines"),
        ]
        if self.settings.cleanup_days > 0:
            days = self.settings.cleanup_days
            loops.append(
                self._every(
                    CLEANUP_EVERY, lambda: self.cleanup_old_tasks(days), "cleanup", at_once=True
                )
            )
        return loops

    def wake(self) -> None:
        """A task with a deadline arrived: the deadline loop looks again."""
        self._deadline_wake.set()

    def _every(
        self, seconds: float, job: Callable[[], Awaitable[Any]], name: str, at_once: bool = False
    ) -> asyncio.Task[None]:
        async def loop() -> None:
            first = at_once
            while True:
                if not first:
                    await asyncio.sleep(seconds)
                first = False
                try:
                    await job()
                except Exception:
                    log.exception("%s failed; trying again in %.0f s", name, seconds)

        return asyncio.create_task(loop(), name=name)

    # -- reconciliation -------------------------------------------------------------------

    async def reconcile(self) -> list[str]:
        """Finds tasks that nothing works on and puts them back; returns their ids."""
        q = self.queue
        q.monitor.suspect_orphans()  # a look at aria2 too: what it holds, a task owns
        queued = q.queued_ids()
        revived: list[tuple[TaskState, str]] = []
        for task in list(q.live.values()):
            if task.id in q.working or task.id in q.in_flight or task.status.final:
                continue
            if task.status is TaskStatus.PENDING and task.id not in queued:
                revived.append((task, "pending but not queued"))
            elif task.status is TaskStatus.DOWNLOADING and task.id not in q.monitor.tasks:
                revived.append((task, "downloading but not followed"))
            elif task.status is TaskStatus.PROCESSING:
                built = task.id in q.built
                revived.append((task, "built, completion not saved" if built else "not building"))
        for task, why in revived:
            log.warning("reconcile: task %s was stranded (%s, %s); taking it up again",
                        task.id, task.status.value, why)  # fmt: skip
            q.resume(task)
        ids = [t.id for t, _ in revived]
        if q.cluster:  # a worker holds what it claims; the sweeper finds unheld tasks
            self.revived += len(ids)
            return ids
        for task_id in await self.db.unfinished_ids():
            if task_id in q.live or task_id in q.in_flight:
                continue
            stored = await self.db.load_task(task_id)
            if stored is None or stored.status.final or task_id in q.live:
                continue
            log.warning("reconcile: task %s is stored %s but was not held; taking it up",
                        task_id, stored.status.value)  # fmt: skip
            q.adopt(stored)
            ids.append(task_id)
        self.revived += len(ids)
        return ids

    # -- deadlines ------------------------------------------------------------------------

    async def _deadline_loop(self) -> None:
        while True:
            self._deadline_wake.clear()
            try:
                wait = await self.enforce_deadlines()
            except Exception:
                log.exception("deadline check failed")
                wait = MAX_DEADLINE_SLEEP
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._deadline_wake.wait(), wait)

    async def enforce_deadlines(self) -> float:
        """Fails the tasks whose deadline passed; returns seconds until the next one."""
        now = utcnow()
        upcoming = MAX_DEADLINE_SLEEP
        for task in list(self.queue.live.values()):
            due = task.deadline_at
            if due is None or task.status.final:
                continue
            left = (due - now).total_seconds()
            if left > 0:
                upcoming = min(upcoming, left)
                continue
            done = sum(1 for f in task.files if f.status is FileStatus.COMPLETE)
            await self.queue.fail(
                task,
                f"the task's deadline of {task.deadline:g} s after submission passed while it "
                f"was {task.status.value} ({done} of {len(task.files)} files downloaded)",
                "deadline passed",
            )
        return max(upcoming, 0.05)

    # -- clean-up -------------------------------------------------------------------------

    async def cleanup_old_tasks(self, days: int) -> list[str]:
        """Removes finished tasks older than ``days`` and their downloads."""
        removed = await self.db.cleanup_old_tasks(days)
        await asyncio.to_thread(remove_task_folders, self.queue.downloads, removed)
        log.info(
            "clean-up: removed %d finished tasks older than %d days, with their downloads%s",
            len(removed), days, f": {', '.join(removed)}" if removed else "",
        )  # fmt: skip
        return removed
