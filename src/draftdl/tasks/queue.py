"""TaskQueue: accepts jobs, runs at most ``max_active_tasks`` in priority then arrival order,
and takes each through pending → downloading → processing → completed (or failed, cancelled).

Every transition is saved before it is announced, under the task's own lock so two
transitions of a task never cross; other tasks' changes go on meanwhile and share the
database's transaction (db/batch.py). A step whose write fails is put back or left for
``Upkeep``'s reconciliation, so no task stays in a state nothing works on. Background work
(scheduler, monitor, draft builds, upkeep) is owned here and stopped by ``stop``: the monitor
first (it starts builds), then the builds get ``shutdown_grace`` to finish and be recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import logging
import shutil
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from draftdl.aria2.process import Aria2Manager
from draftdl.aria2.rpc import Aria2Client
from draftdl.db.repo import Database
from draftdl.disk import free_space
from draftdl.drafts.builder import DraftBuilder
from draftdl.egress import EgressGuard
from draftdl.errors import (
    Aria2Error,
    ClaimChanged,
    DraftBuildError,
    InvalidTransition,
    TaskNotFound,
)
from draftdl.events.bus import FINAL_EVENT_OF, PROGRESS, STATUS_CHANGED, EventBus, Subscription
from draftdl.limits import save_overall_limit
from draftdl.model.states import FileStatus, TaskStatus, can_move
from draftdl.model.task import FileState, TaskState, utcnow
from draftdl.settings import Settings
from draftdl.sources import SourcePolicy, policy_from
from draftdl.tasks.control import Controls, Elsewhere
from draftdl.tasks.downloads import remove_partial_files
from draftdl.tasks.intake import read_job
from draftdl.tasks.monitor import Monitor
from draftdl.tasks.upkeep import Upkeep
from draftdl.units import human_size, parse_amount
from draftdl.webhooks.outbox import Outbox

log = logging.getLogger(__name__)

# What holds one of the max_active_tasks slots: downloading. A task whose files are down gives
# its slot to the next while its draft is built; builds have their own bound (build_workers).
ACTIVE = (TaskStatus.DOWNLOADING,)
RETRY_START = 2.0  # seconds before a start whose write failed is tried again
SPACE_RECHECK = 5.0  # seconds between looks at the disk while tasks wait for space
OVERALL_LIMIT = "max_overall_download_limit"  # its name among a cluster's shared settings


class TaskQueue:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        client: Aria2Client,
        manager: Aria2Manager,
        bus: EventBus,
        builder: DraftBuilder,
        egress: EgressGuard | None = None,
        drafts_root: Path | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox or Outbox(settings.webhooks)
        self.db = db
        self.manager = manager
        self.bus = bus
        self.builder = builder
        self.monitor = Monitor(settings, client, bus, db, self, egress)
        self._policy = policy_from(settings)  # roots resolved once; ports added as they come
        self._policy_ports: tuple[int | None, ...] = ()
        self._policy_now = self._policy
        if egress is not None:
            egress.policy = self.source_policy
        self.downloads = settings.downloads_dir.resolve()
        self.live: dict[str, TaskState] = {}
        self._pending: list[tuple[int, int, str]] = []
        self._seq = 0
        # One lock per task, alive while someone holds or waits for it.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._build_slots = asyncio.Semaphore(settings.build_workers)
        self._wake_scheduler = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()
        self._moves: set[asyncio.Future[Any]] = set()  # transitions (and losses) being saved
        self._holding: set[str] = set()  # popped by the scheduler, to be put back
        self._active: set[str] = set()  # live tasks in an ACTIVE state: counted in O(1)
        self.working: dict[str, asyncio.Task[Any]] = {}  # task id → the step running for it
        self.in_flight: set[str] = set()  # being stored or started: not stranded
        self.built: dict[str, str | None] = {}  # drafts built whose completion is not saved yet
        self.lost: set[str] = set()  # (a cluster) tasks another node took from this one
        self._loops: list[asyncio.Task[None]] = []
        self._recheck: asyncio.TimerHandle | None = None
        self._accepting = False
        self._stopping = False
        self.upkeep = Upkeep(settings, db, self)
        self.controls = Controls(self, drafts_root)
        # In a cluster (settings.role api or worker) a task runs where it is claimed
        # (cluster/worker.py): a submit is stored and enqueued for the workers, and a worker
        # holds only the tasks it claimed, letting go of those it finishes, pauses or loses.
        self.cluster = settings.cluster
        self.runs_tasks = settings.role != "api"
        self.on_slot_freed: Callable[[], None] | None = None
        self.channel: Elsewhere | None = None  # controls of tasks other nodes hold

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Recovers every unfinished task, then starts the scheduler, monitor and clean-up."""
        self._seq = await self.db.next_seq()
        self._accepting = True
        if not self.runs_tasks:
            return  # an api node: submits are stored and enqueued; workers run them
        if not self.cluster:
            await self._recover()  # (a worker holds what it claims)
        self.manager.on_ready(self._aria2_ready)
        self.start_progress_monitor()
        self._loops.append(asyncio.create_task(self._schedule_loop(), name="scheduler"))
        self._loops += self.upkeep.start()
        self._wake_scheduler.set()

    async def stop(self) -> None:
        """Stops taking work, lets running builds finish, saves progress.

        A build stopped half-way is lost work, so builds get ``shutdown_grace`` seconds to
        finish and record themselves; one still running then is cancelled (the app ends its
        worker process after this) and built again at the next start.
        """
        grace = self.settings.shutdown_grace
        self._accepting = False
        self._stopping = True  # from now on nothing new is spawned; a restart resumes it
        if self._recheck is not None:
            self._recheck.cancel()
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        self._loops.clear()
        await self.stop_progress_monitor()  # it hands finished downloads to builds
        if self._background:
            _, still = await asyncio.wait(self._background, timeout=grace)
            for task in still:
                log.warning(
                    "%s did not finish within shutdown_grace; resumed at start", task.get_name()
                )
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        await asyncio.gather(*self._moves, return_exceptions=True)  # before the database goes
        await self.monitor.flush()

    def start_progress_monitor(self) -> None:
        self.monitor.start()

    async def stop_progress_monitor(self) -> None:
        await self.monitor.stop()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str, owner: TaskState) -> None:
        """Runs one step of a task in the background; ``working`` tells upkeep it is taken."""
        if self._stopping:
            coro.close()  # its task is saved in a state the next start carries on from
            log.info("not starting %s: shutting down", name)
            return
        step = asyncio.create_task(coro, name=name)
        self._background.add(step)
        self.working[owner.id] = step
        step.add_done_callback(lambda done: self._reap(done, owner.id))

    def _reap(self, step: asyncio.Task[Any], task_id: str) -> None:
        self._background.discard(step)
        if self.working.get(task_id) is step:
            del self.working[task_id]
        if not step.cancelled() and step.exception() is not None:
            log.error(
                "%s failed; upkeep takes the task up again",
                step.get_name(),
                exc_info=step.exception(),
            )

    def _aria2_ready(self) -> None:
        self._wake_scheduler.set()
        self.monitor.wake()

    async def _recover(self) -> None:
        for task in await self.db.load_unfinished():
            self.adopt(task)
            log.info("recovered task %s (%s)", task.id, task.status.value)

    def adopt(self, task: TaskState) -> None:
        """Takes up a stored unfinished task: each state says what carries it on."""
        task.deadline = None if task.deadline_dropped else deadline_of(task)
        self._hold(task)
        self.resume(task)
        if task.deadline is not None:
            self.upkeep.wake()

    def resume(self, task: TaskState) -> None:
        """Puts a live task back where its state says it belongs; every state is named."""
        match task.status:
            case TaskStatus.PENDING:
                self.requeue(task)
            case TaskStatus.PAUSED:
                pass  # held until the user resumes it; aria2 holds nothing of it after a start
            case TaskStatus.DOWNLOADING:
                if any(f.status is FileStatus.ERROR for f in task.files):
                    self.on_download_failed(task)
                elif all(f.status is FileStatus.COMPLETE for f in task.files):
                    self.on_downloaded(task)
                else:
                    for f in task.files:  # an earlier aria2c may have had them: re-add
                        if f.next_retry_at is None:  # (a retry that waits keeps its time)
                            f.handed_at = -1
                    self.monitor.track(task)
            case TaskStatus.PROCESSING:
                self._spawn(self._build(task), f"build-{task.id}", task)
            case TaskStatus.COMPLETED | TaskStatus.FAILED | TaskStatus.CANCELLED:
                raise InvalidTransition(f"task {task.id} is {task.status.value}: nothing to resume")

    def requeue(self, task: TaskState) -> None:
        """Into the pending queue by priority, then arrival (an older entry is skipped); in
        a cluster only a task this worker holds (the others went to the workers' queue with
        their move)."""
        if self.cluster and task.id not in self.live:
            return
        heapq.heappush(self._pending, (-task.priority, task.seq, task.id))
        self._wake_scheduler.set()

    def queued_ids(self) -> set[str]:
        return {entry[2] for entry in self._pending} | self._holding

    # -- claims (a worker of a cluster) ----------------------------------------------------

    def free_slots(self) -> int:
        """Tasks this worker can take on now: free download slots, less the claimed tasks
        that wait for one."""
        waiting = sum(1 for t in self.live.values() if t.status is TaskStatus.PENDING)
        return self.settings.max_active_tasks - self.active_count() - waiting

    def take(self, task: TaskState) -> None:
        """A task this worker has just claimed (``task.attempt`` is the claim's number)."""
        self.lost.discard(task.id)
        held = self.live.get(task.id)
        if held is not None:  # claimed again by this node (its own claim had run out)
            held.attempt = task.attempt
            return
        self.adopt(task)
        log.info("claimed task %s (%s, attempt %d)", task.id, task.status.value, task.attempt)

    async def lose(self, task_id: str) -> None:
        """Another node holds the task now (this one was away past its lease): its downloads
        here stop, its files stay (the new holder goes on from them), nothing is announced."""
        task = self.live.get(task_id)
        if task is None:
            return
        log.warning("task %s: another node has claimed it; letting it go here", task_id)
        self.lost.add(task_id)
        self._drop(task_id)
        step = self.working.get(task_id)
        if step is not None and step is not asyncio.current_task():
            step.cancel()
        self.built.pop(task_id, None)
        task.status = TaskStatus.CANCELLED  # for what still looks at this copy: not ours
        await self.stop_downloads(task)
        self._slot_freed()

    async def run_control(
        self, task_id: str, action: str, args: dict[str, Any]
    ) -> dict[str, Any] | None:
        """A control of a task this node holds, asked on another node."""
        return await self.controls.run(task_id, action, args)

    async def overall_limit(self) -> str:
        """The global speed cap (in a cluster, as the last node to change it left it)."""
        if self.channel is not None:
            shared = await self.channel.shared(OVERALL_LIMIT)
            if shared is not None:
                self.settings.max_overall_download_limit = shared
        return self.settings.max_overall_download_limit

    async def set_overall_limit(self, value: str, *, here_only: bool = False) -> None:
        """The global speed cap: in this node's aria2c at once and kept across restarts; in
        a cluster also stored for every node and sent to every worker (``here_only``: the
        node that set it did that)."""
        if self.manager.running:
            try:
                await self.manager.client.set_overall_limit(value)
            except Aria2Error as exc:  # kept all the same: aria2c starts with it
                log.warning("aria2 did not take the global speed cap (%s): at restart", exc)
        self.settings.max_overall_download_limit = value
        await asyncio.to_thread(save_overall_limit, self.settings.data_dir, value)
        if self.channel is not None and not here_only:
            await self.channel.everywhere(OVERALL_LIMIT, value, "limits")

    def _slot_freed(self) -> None:
        self._wake_scheduler.set()
        if self.on_slot_freed is not None:
            self.on_slot_freed()

    # -- submit, read, cancel -------------------------------------------------------------

    async def create_task(self, raw: bytes) -> TaskState:
        """Validates and stores a job; nothing is stored when it is rejected."""
        if not self._accepting:
            raise InvalidTransition("the server is shutting down; submit again shortly")
        task_id = str(uuid.uuid4())
        folder = self.downloads / task_id
        text, job, files = await asyncio.to_thread(
            read_job, raw, self.settings.max_files_per_task, folder, self.source_policy()
        )
        now = utcnow()
        self._seq += 1
        task = TaskState(
            id=task_id,
            seq=self._seq,
            status=TaskStatus.PENDING,
            priority=job.priority,
            request_json=text,
            created_at=now,
            updated_at=now,
            files=files,
            message="waiting for a free slot",
            max_download_limit=job.max_download_limit,
            deadline=job.deadline,
            title=job.title,
            webhook=job.webhook.to_json() if job.webhook else None,
            warnings=job.warnings,
        )
        # One step that a client hanging up cannot split: stored means queued.
        self.in_flight.add(task.id)
        try:
            await asyncio.shield(self._accept(task))
        finally:
            self.in_flight.discard(task.id)
        return task

    def source_policy(self) -> SourcePolicy:
        """What a job may name: local folders, and never this service's own ports (aria2's
        RPC port may change when it restarts)."""
        ports = (self.manager.port, self.monitor.egress_port)
        if ports != self._policy_ports:
            self._policy_ports = ports
            self._policy_now = self._policy.with_ports(*ports)
        return self._policy_now

    async def _accept(self, task: TaskState) -> None:
        deliveries = self.outbox.deliveries_for(task, task.status.value)
        await self._write(self.db.save_task, task, deliveries)
        self.outbox.stored(deliveries)
        if self.cluster:  # enqueued with the row: the worker that claims it runs it
            log.info("accepted task %s: %d files, enqueued", task.id, len(task.files))
            self.bus.publish(STATUS_CHANGED, task.id, task.event())
            return
        self._hold(task)
        heapq.heappush(self._pending, (-task.priority, task.seq, task.id))
        self._wake_scheduler.set()
        log.info("accepted task %s: %d files, priority %d", task.id, len(task.files), task.priority)
        self.bus.publish(STATUS_CHANGED, task.id, task.event())
        if task.deadline is not None:
            self.upkeep.wake()

    @staticmethod
    async def _write(write: Callable[..., Awaitable[object]], *args: Any, **kwargs: Any) -> None:
        """A database write, retried a few times: SQLite may be busy for a moment. The first
        try goes without the retrier (setting one up was 2 % of the server's time)."""
        try:
            await write(*args, **kwargs)
            return
        except OperationalError:
            await asyncio.sleep(0.1)
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(OperationalError),
            stop=stop_after_attempt(3),
            wait=wait_exponential(multiplier=0.2, max=2),
            reraise=True,
        ):
            with attempt:
                await write(*args, **kwargs)

    async def get_task(self, task_id: str) -> TaskState:
        task = self.live.get(task_id)
        if task is not None:
            return task
        stored = await self.db.load_task(task_id)
        if stored is None:
            raise TaskNotFound(task_id)
        return stored

    async def cancel_task(self, task_id: str, keep_files: bool = False) -> TaskState:
        """Records the cancel first; then nothing can start or keep its downloads, and its
        partial files go (unless ``keep_files``: a retry may resume them)."""
        try:
            return await self._cancel_task(task_id, keep_files)
        except ClaimChanged:  # claimed meanwhile (a cluster): cancelled where it runs now
            return await self._cancel_task(task_id, keep_files)

    async def _cancel_task(self, task_id: str, keep_files: bool) -> TaskState:
        args = {"keep_files": keep_files}
        if await self.controls.elsewhere(task_id, "cancel", args) is not None:
            return await self.get_task(task_id)  # cancelled where it ran
        task = await self.get_task(task_id)
        if not await self._transition(task, TaskStatus.CANCELLED, message="cancelled by the user"):
            raise InvalidTransition(f"task {task_id} is already {task.status.value}")
        await self.stop_downloads(task)
        if not keep_files:
            await asyncio.to_thread(remove_partial_files, self.downloads, task)
        return task

    async def stop_downloads(self, task: TaskState) -> bool:
        """Takes a task that just ended out of aria2; False when aria2 did not confirm it,
        and then the monitor removes them as soon as aria2 answers (they have no owner)."""
        if not self.runs_tasks or (self.cluster and task.id not in self.monitor.tasks):
            return True  # not in this node's aria2c
        self.monitor.untrack(task)
        try:
            await self.monitor.remove_downloads(task)
        except Aria2Error as exc:
            log.warning("task %s: aria2 did not confirm the removal yet (%s)", task.id, exc)
            return False
        return True

    def subscribe(self, task_id: str, maxsize: int = 256, progress: bool = False) -> Subscription:
        return self.bus.subscribe(task_id, maxsize, progress)

    def unsubscribe(self, sub: Subscription) -> None:
        self.bus.unsubscribe(sub)

    # -- scheduling -----------------------------------------------------------------------

    def active_count(self) -> int:
        return len(self._active)

    def _hold(self, task: TaskState) -> None:
        """Keeps a live task and the active set in step; every change of ``live`` goes here."""
        self.live[task.id] = task
        if task.status in ACTIVE:
            self._active.add(task.id)
        else:
            self._active.discard(task.id)

    def _drop(self, task_id: str) -> None:
        self.live.pop(task_id, None)
        self._active.discard(task_id)

    async def _schedule_loop(self) -> None:
        while True:
            await self._wake_scheduler.wait()
            self._wake_scheduler.clear()
            try:
                await self._schedule()
            except Exception:
                log.exception("scheduler failed; retrying on the next wake-up")

    async def _schedule(self) -> None:
        """Starts pending tasks in order while slots are free; tasks that need aria2c while
        it is down keep their place, and tasks without downloads go ahead of them.

        The tasks a round can start are started together, so their status changes share one
        transaction and a burst of free slots fills at once."""
        held: list[tuple[int, int, str]] = []
        checked, problem = False, None

        async def no_space() -> str | None:  # asked once per call, and only if needed
            nonlocal checked, problem
            if not checked:
                checked, problem = True, await self._space_problem()
            return problem

        try:
            while self._pending and self.active_count() < self.settings.max_active_tasks:
                free = self.settings.max_active_tasks - self.active_count()
                round_ = await self._take_round(free, held, no_space)
                if not round_:
                    break
                failed = await self._start_round(round_)
                if failed:
                    # (the round's later tasks did start: a failed start keeps its place in
                    # line, not its slot)
                    held += failed
                    self._schedule_again(RETRY_START)
                    break
        finally:
            for entry in held:
                heapq.heappush(self._pending, entry)
            self._holding.clear()

    async def _take_round(
        self,
        free: int,
        held: list[tuple[int, int, str]],
        no_space: Callable[[], Awaitable[str | None]],
    ) -> list[tuple[tuple[int, int, str], TaskState]]:
        """Takes out of the queue what fills ``free`` slots (each task ``in_flight`` from
        then on); tasks that must wait go to ``held``."""
        round_: list[tuple[tuple[int, int, str], TaskState]] = []
        try:
            while self._pending and free > 0:
                entry = heapq.heappop(self._pending)
                task = self.live.get(entry[2])
                if task is None or task.status is not TaskStatus.PENDING:
                    continue
                if -entry[0] != task.priority:
                    continue  # its priority changed: a newer entry stands in the queue
                if task.files:
                    if not self.manager.running:
                        reason = self.manager.reason or f"aria2c is {self.manager.state.value}"
                        self._hold_back(task, entry, held, f"waiting for aria2c: {reason}")
                        continue
                    if (problem := await no_space()) is not None:
                        self._hold_back(task, entry, held, problem)
                        self._schedule_again(SPACE_RECHECK)
                        continue
                    free -= 1  # (one without downloads goes to its draft: no slot)
                round_.append((entry, task))
                self.in_flight.add(task.id)  # out of the queue: not stranded
        except BaseException:
            for entry, task in round_:  # taken out but never started: back in line
                self.in_flight.discard(task.id)
                held.append(entry)
            raise
        return round_

    def _hold_back(
        self,
        task: TaskState,
        entry: tuple[int, int, str],
        held: list[tuple[int, int, str]],
        why: str,
    ) -> None:
        self._tell(task, why)
        held.append(entry)
        self._holding.add(task.id)

    async def _start_round(
        self, round_: list[tuple[tuple[int, int, str], TaskState]]
    ) -> list[tuple[int, int, str]]:
        """Starts the tasks together (each is in ``in_flight``), then hands all their files
        to aria2 in one call; the queue entries of those that could not start."""
        try:
            results = await asyncio.gather(
                *(self._start(task) for _, task in round_), return_exceptions=True
            )
        finally:
            for _, task in round_:
                self.in_flight.discard(task.id)
        failed: list[tuple[int, int, str]] = []
        started: list[tuple[TaskState, list[FileState]]] = []
        for (entry, task), result in zip(round_, results, strict=True):
            if isinstance(result, BaseException):
                log.error(
                    "task %s could not be started; trying again shortly",
                    task.id,
                    exc_info=result,
                )
                failed.append(entry)
                self._holding.add(task.id)
            elif result is not None:
                started.append((task, result))
        if started:
            self.monitor.wake()  # files aria2 holds paused are let go by the next read
            try:
                await self.monitor.add_files(started)
            except Aria2Error as exc:
                # The monitor re-adds what aria2 does not hold once it answers again.
                log.warning("aria2 did not take the files of %d tasks yet: %s", len(started), exc)
            except Exception:
                log.exception("handing the files of %d tasks to aria2 failed", len(started))
        return failed

    async def _space_problem(self) -> str | None:
        floor = parse_amount(self.settings.min_free_space)
        free = await asyncio.to_thread(free_space, self.downloads)
        if free >= floor:
            return None
        return (
            f"waiting for disk space: {human_size(free)} free where downloads go, "
            f"min_free_space is {human_size(floor)}"
        )

    def _schedule_again(self, delay: float) -> None:
        if self._recheck is None or self._recheck.when() <= asyncio.get_running_loop().time():
            self._recheck = asyncio.get_running_loop().call_later(delay, self._wake_scheduler.set)

    async def _start(self, task: TaskState) -> list[FileState] | None:
        """Moves a task on from pending; the files to hand to aria2 when it now downloads."""
        if task.files:
            return await self._start_downloads(task)
        # Without downloads, straight to the draft (which waits for a builder, not a slot).
        if await self._transition(task, TaskStatus.PROCESSING, message="building the draft"):
            self._spawn(self._build(task), f"build-{task.id}", task)
        return None

    def _tell(self, task: TaskState, message: str) -> None:
        """A new message on a waiting task reaches its watchers as a progress event."""
        if task.message == message:
            return
        task.message = message
        task.updated_at = utcnow()
        self.bus.publish(PROGRESS, task.id, task.event())

    async def _start_downloads(self, task: TaskState) -> list[FileState] | None:
        if not await self._transition(task, TaskStatus.DOWNLOADING, message="downloading"):
            return None
        if task.status is not TaskStatus.DOWNLOADING:  # cancelled while it was being saved
            return None
        self.monitor.track(task)  # (a resumed task may be tracked already: aria2 holds it)
        return [
            f
            for f in task.files
            if f.status not in (FileStatus.COMPLETE, FileStatus.ERROR)
            and f.handed_at is None
            and not f.next_retry_at
        ]

    async def update(self, task: TaskState, **changes: Any) -> None:
        """A change by the user that is no transition (priority, speed cap): saved, then
        announced, like a transition, under the same lock."""
        async with self._lock_of(task.id):
            saved = dataclasses.replace(task, **changes, updated_at=utcnow())
            # (in a cluster a waiting task's job gets the new priority)
            enqueue = self._enqueues(task, task.status)
            fence = self._fence(task, saved)
            try:
                await self._write(
                    self.db.save_transition,
                    saved,
                    with_files=False,
                    enqueue=enqueue,
                    fence=fence,
                )
            except TaskNotFound as exc:
                if fence is None:
                    raise
                raise ClaimChanged(f"task {task.id} changed hands meanwhile") from exc
            task.attempt = saved.attempt
            for key, value in changes.items():
                setattr(task, key, value)
            task.updated_at = saved.updated_at
            self.bus.publish(STATUS_CHANGED, task.id, task.event())

    async def forget(self, task: TaskState) -> None:
        """Deletes a finished task's record; then it is unknown (404)."""
        async with self._lock_of(task.id):
            self.monitor.untrack(task)
            await self._write(self.db.delete_task, task.id)
            self._drop(task.id)

    def start_build(self, task: TaskState) -> None:
        if self.cluster and task.id not in self.live:
            return  # a worker builds it (it went to their queue with its move)
        self._spawn(self._build(task), f"build-{task.id}", task)

    # -- outcomes (called by the monitor) --------------------------------------------------

    def on_downloaded(self, task: TaskState) -> None:
        self._spawn(self._build(task), f"build-{task.id}", task)

    def on_download_failed(self, task: TaskState) -> None:
        self._spawn(self._fail_download(task), f"fail-{task.id}", task)

    async def _fail_download(self, task: TaskState) -> None:
        bad = [f for f in task.files if f.status is FileStatus.ERROR]
        reasons = "; ".join(f"{f.url}: {f.error_message or 'download failed'}" for f in bad)
        await self.fail(
            task,
            f"{len(bad)} of {len(task.files)} files failed to download: {reasons}",
            "download failed",
        )

    async def fail(self, task: TaskState, error: str, message: str) -> bool:
        """Fails a task in any unfinished state; its downloads stop and partial files go
        (complete ones stay, for a retry)."""
        if not await self._transition(
            task, TaskStatus.FAILED, error_message=error, message=message
        ):
            return False
        await self.stop_downloads(task)
        removed = await asyncio.to_thread(remove_partial_files, self.downloads, task)
        if removed:
            log.info("task %s: removed %d partial files", task.id, removed)
        return True

    async def _build(self, task: TaskState) -> None:
        """Runs the draft step; a task recovered in processing runs it again."""
        if task.status is not TaskStatus.PROCESSING and not await self._transition(
            task, TaskStatus.PROCESSING, message="building the draft"
        ):
            return
        if task.id in self.built:  # built before; only its completion was not saved
            draft_path = self.built[task.id]
        else:
            if self._build_slots.locked():
                self._tell(task, "waiting for a free draft builder")
            try:
                async with self._build_slots:
                    if task.status is not TaskStatus.PROCESSING:
                        return  # cancelled (or deleted) while it waited for a builder
                    if not self._accepting:
                        return  # stopping: built at the next start (it stays processing)
                    self._tell(task, "building the draft")
                    started = time.monotonic()
                    draft_path = await self.builder.build(task)
            except DraftBuildError as exc:
                await self.fail(task, str(exc), "draft build failed")
                return
            except Exception as exc:
                log.exception("task %s: draft build crashed", task.id)
                await self.fail(
                    task, f"internal error while building the draft: {exc!r}", "draft build failed"
                )
                return
            log.info("task %s: draft step took %.2fs", task.id, time.monotonic() - started)
            self.built[task.id] = draft_path
        done = await self._transition(
            task, TaskStatus.COMPLETED, draft_path=draft_path, message="completed"
        )
        self.built.pop(task.id, None)
        if not done and task.id in self.lost:
            return  # another node holds the task now: the draft folder is its
        if not done and draft_path:  # cancelled while building: leave no orphan draft
            await asyncio.to_thread(shutil.rmtree, draft_path, True)

    # -- transitions ----------------------------------------------------------------------

    async def transition(self, task: TaskState, dst: TaskStatus, **changes: Any) -> bool:
        """For the user's controls (tasks/control.py): the same one path of every change."""
        return await self._transition(task, dst, **changes)

    async def _transition(self, task: TaskState, dst: TaskStatus, **changes: Any) -> bool:
        """Saves, then announces. False when the task can no longer move there.

        Shielded as one step: a caller cancelled half-way never leaves memory behind the
        database (or the other way round).
        """
        move = asyncio.ensure_future(self._move(task, dst, changes))
        self._moves.add(move)  # stop() waits for it even when its caller was cancelled
        move.add_done_callback(self._moves.discard)
        return await asyncio.shield(move)

    def _lock_of(self, task_id: str) -> asyncio.Lock:
        lock = self._locks.get(task_id)
        if lock is None:
            lock = self._locks[task_id] = asyncio.Lock()
        return lock

    async def _move(self, task: TaskState, dst: TaskStatus, changes: dict[str, Any]) -> bool:
        async with self._lock_of(task.id):
            src = task.status
            if not can_move(src, dst):
                return False
            held = self.live.get(task.id)
            if held is not None and held is not task:
                return False  # a copy of a finished task, taken up meanwhile by another call
            now = utcnow()
            changes.update(status=dst, updated_at=now)
            if dst.final:
                changes["completed_at"] = now
            elif src.final:  # retried or regenerated: live again
                changes.update(completed_at=None)
            # Saved first, from a copy: readers never see a state the database lacks.
            saved = dataclasses.replace(task, **changes)
            ended = dst in (TaskStatus.CANCELLED, TaskStatus.FAILED) and bool(task.files)
            if ended:  # copies for the write; the live files (others hold them) change after
                saved.files = [_stopped(dataclasses.replace(f)) for f in task.files]
            if dst.final:
                saved.progress()
            with_files = src is TaskStatus.DOWNLOADING or ended or src.final
            deliveries = self.outbox.deliveries_for(saved, dst.value)
            # A worker lets go of a task that ended or is paused (any worker resumes it).
            release = self.cluster and (dst.final or dst is TaskStatus.PAUSED)
            holds = not self.cluster or task.id in self.live
            fence = self._fence(task, saved)
            try:
                await self._write(
                    self.db.save_transition,
                    saved,
                    with_files=with_files,
                    deliveries=deliveries,
                    release=release,
                    enqueue=self._enqueues(task, dst),
                    fence=fence,
                )
            except TaskNotFound as exc:
                if not self.cluster:
                    raise
                if not holds:
                    raise ClaimChanged(f"task {task.id} changed hands meanwhile") from exc
                if task.id in self.live:
                    self._spawn_loss(task.id)  # its claim went to another node
                return False
            task.attempt = saved.attempt
            self.outbox.stored(deliveries)
            if dst.final:
                self.outbox.forget(task.id)  # parsed again if it comes back (a retry)
            for key, value in changes.items():
                setattr(task, key, value)
            if ended:  # their rows hold what the copies wrote (db/rows.py)
                for f, written in zip(task.files, saved.files, strict=True):
                    _stopped(f).saved = written.saved
            task.progress_percent = saved.progress_percent
            elapsed = (task.updated_at - task.created_at).total_seconds()
            log.info("%8.2fs → task %s %s → %s", elapsed, task.id, src.value, dst.value)
            payload = task.event()
            self.bus.publish(STATUS_CHANGED, task.id, payload)
            final = FINAL_EVENT_OF.get(dst.value)
            if final is not None:
                self.bus.publish(final, task.id, payload)
            if not holds:
                pass  # a task no node holds, moved by this one (a worker takes it up)
            elif dst.final or release:
                self._drop(task.id)
                self._slot_freed()
                if dst is TaskStatus.PAUSED:  # resumed by any worker: out of this aria2c
                    self._spawn_loss(task.id, stop_only=task)
            else:
                self._hold(task)  # (a retried task comes back)
                if src in ACTIVE and dst not in ACTIVE:
                    self._slot_freed()
                elif dst in ACTIVE:
                    self._wake_scheduler.set()
            return True

    def _fence(self, task: TaskState, saved: TaskState) -> int | None:
        """In a cluster, a node that holds no claim on the task writes it with a new claim
        number (``saved.attempt``), fenced by the one it read (see save_transition)."""
        if not self.cluster or task.id in self.live:
            return None
        saved.attempt = task.attempt + 1
        return task.attempt

    def _enqueues(self, task: TaskState, status: TaskStatus) -> bool:
        """In a cluster, a task no node holds that (still) waits for a worker or a build."""
        waits = status in (TaskStatus.PENDING, TaskStatus.PROCESSING)
        return self.cluster and waits and task.id not in self.live

    def _spawn_loss(self, task_id: str, stop_only: TaskState | None = None) -> None:
        """``lose`` in the background (``stop_only``: only take it out of aria2)."""
        work = self.stop_downloads(stop_only) if stop_only else self.lose(task_id)
        loss = asyncio.ensure_future(work)
        loss.add_done_callback(_log_failure)
        self._moves.add(loss)
        loss.add_done_callback(self._moves.discard)

    async def cleanup_old_tasks(self, days: int) -> list[str]:
        """Removes finished tasks older than ``days`` and their downloads."""
        return await self.upkeep.cleanup_old_tasks(days)


def _log_failure(done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("letting a task go failed", exc_info=done.exception())


def _stopped(f: FileState) -> FileState:
    """A file of a task that ended: what did not complete or fail was removed from aria2."""
    f.download_speed = 0
    if f.status not in (FileStatus.COMPLETE, FileStatus.ERROR):
        f.status = FileStatus.REMOVED
    return f


def deadline_of(task: TaskState) -> float | None:
    """A stored task's ``deadline`` (seconds after submit), from its request as received."""
    value = task.request.get("deadline")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
