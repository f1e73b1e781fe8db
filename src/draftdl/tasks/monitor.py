"""Monitor: one loop follows every downloading task with one aria2 round trip per tick.

A tick reads tellActive + tellWaiting + tellStopped in a single ``system.multicall`` (with
only the keys each list needs); whatever else aria2 must do rides along in the same request:
the number of aria2 round trips does not grow with tasks or files. The tick's work follows
what changed: an entry equal to the last read's is not parsed or applied again, stopped
results are read once (our own aria2c drops them in the same request that reads them), and
a task's speed cap is spread again only when its active downloads or its cap change, to the
downloads whose share moved. aria2's WebSocket notifications wake the loop at once when a
task's last file ends, so completion is noticed without waiting for the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from draftdl.aria2.models import (
    FETCH_MARKER,
    AddRequest,
    DownloadStatus,
    Notice,
    Reason,
    StatusBook,
    classify,
    describe_error,
)
from draftdl.aria2.rpc import Aria2Client, Call
from draftdl.db.repo import Database
from draftdl.egress import EgressGuard
from draftdl.errors import Aria2Error, Aria2RPCError
from draftdl.events.bus import PROGRESS, EventBus
from draftdl.model.states import FileStatus, TaskStatus
from draftdl.model.task import FileState, TaskState, new_gid, utcnow
from draftdl.settings import Settings
from draftdl.tasks.options import lower_limit, options_for
from draftdl.tasks.retry import next_retry
from draftdl.units import human_size, parse_speed, speed_bytes

log = logging.getLogger(__name__)

# aria2c may be restarted under a download many times; past this many hand-overs the file
# fails rather than loop for ever.
MAX_HANDOVERS = 20
EVENT_FILES = 100  # progress events list the files of tasks up to this size
HELD = frozenset({TaskStatus.PAUSED, TaskStatus.PENDING})
STALLED = Reason("stalled", True)
UNKNOWN_CAP = "unknown"  # what a download not added by this process was given: never a real cap


class Outcomes(Protocol):
    """What the queue does when a task's downloads end."""

    def on_downloaded(self, task: TaskState) -> None: ...

    def on_download_failed(self, task: TaskState) -> None: ...


class Monitor:
    def __init__(
        self,
        settings: Settings,
        client: Aria2Client,
        bus: EventBus,
        db: Database,
        outcomes: Outcomes,
        egress: EgressGuard | None = None,
    ) -> None:
        self.settings = settings
        self.egress = egress
        self.client = client
        self.bus = bus
        self.db = db
        self.outcomes = outcomes
        self.downloads = settings.downloads_dir.resolve()
        self.tasks: dict[str, TaskState] = {}
        self.by_gid: dict[str, tuple[TaskState, FileState]] = {}
        # Adds, removals and the status read never interleave: a download added before a read
        # is always in it, so "missing" really means aria2 lost it (a restart).
        self.rpc_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._reads = 0
        self._book = StatusBook()  # the last read, so that only what changed is parsed
        self._applied: dict[str, DownloadStatus] = {}  # gid → the status its file took last
        # A remote aria2c's results are ours to forget one by one, once saved (it outlives us):
        self._forget: list[str] = []  # results saved to the database: aria2 may forget them
        self._ended: list[str] = []  # results not saved yet: aria2 must keep them
        self._riders: list[Call] = []  # calls for the next tick's request
        # task → (its cap, the active gids it is spread on); gid → the cap aria2 has for it
        self._spread: dict[str, tuple[str | None, frozenset[str]]] = {}
        self._sent: dict[str, str | None] = {}
        self._dirty: dict[str, tuple[TaskState, set[int]]] = {}  # changed files, by task
        self._published: dict[str, tuple[float, tuple[object, ...]]] = {}
        self._moved: set[str] = set()  # tasks with a changed file since their last event
        self._counted: set[str] = set()
        self._remaining: dict[str, int] = {}
        self._failing: set[str] = set()  # tasks with a file in error
        # Our own aria2c (not a remote one, which is shared) holds nothing but our downloads:
        # one no task owns (a cancel whose removal failed, a metalink's offspring) is removed
        # as soon as a read shows it, and every read drops the stopped results it read: they
        # live in memory from then on, and our aria2c exits with this process and starts
        # empty, so no later run could ask it for them. (A read whose answer is lost after
        # aria2 ran it costs a re-add of those files: a complete one is found whole on disk.)
        self.owns_aria2 = settings.aria2_rpc_url is None
        self._orphans_suspected = False
        self.orphans_removed = 0
        self._removing: set[str] = set()  # orphans told to stop, not yet seen stopped
        self._unremoved: set[str] = set()  # gids of ended tasks whose removal failed
        self._lowest = max(1, parse_speed(settings.lowest_speed))
        self._last_flush = time.monotonic()
        self._last_tick_cost = 0.0
        self._runner: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self.ticks = 0
        self.unavailable: str | None = None

    # -- tracking -------------------------------------------------------------------------

    def track(self, task: TaskState) -> None:
        self.tasks[task.id] = task
        remaining = 0
        for f in task.files:
            self.by_gid[f.gid] = (task, f)
            if f.status is FileStatus.COMPLETE:
                self._counted.add(f.gid)
            else:
                remaining += 1
            if f.status is FileStatus.ERROR:  # failed for good before (a pause, a restart)
                self._failing.add(task.id)
        self._remaining[task.id] = remaining
        self.wake()

    def untrack(self, task: TaskState) -> None:
        if self.egress is not None:
            self.egress.forget(f.gid for f in task.files)
        self.tasks.pop(task.id, None)
        self._dirty.pop(task.id, None)  # its end is saved with its files (or it is deleted)
        self._published.pop(task.id, None)
        self._moved.discard(task.id)
        self._remaining.pop(task.id, None)
        self._spread.pop(task.id, None)
        self._failing.discard(task.id)
        for f in task.files:
            self.by_gid.pop(f.gid, None)
            self._counted.discard(f.gid)
            self._sent.pop(f.gid, None)

    def reposition(self, task: TaskState, first: bool) -> None:
        """A new priority: the task's waiting downloads go to the front (or the back)."""
        if task.id in self.tasks:
            self._riders += [
                self.client.position_call(f.gid, first)
                for f in task.files
                if f.status is FileStatus.WAITING and f.handed_at is not None
            ]
            self.wake()

    def limit_changed(self, task: TaskState) -> None:
        """A new speed cap: spread again when the task next downloads (none: each download
        keeps only its own cap)."""
        self._spread.pop(task.id, None)
        self.wake()

    def _count_done(self, task: TaskState, gid: str) -> None:
        """A task's last file done wakes the loop at once; the others wait for the tick."""
        if gid in self._counted or task.id not in self._remaining:
            return
        self._counted.add(gid)
        self._remaining[task.id] -= 1
        if self._remaining[task.id] <= 0:
            self.wake()

    def wake(self) -> None:
        self._wake.set()

    def _touch(self, task: TaskState, f: FileState) -> None:
        """Marks a file's row for the next flush, and its task for the next event."""
        self._dirty.setdefault(task.id, (task, set()))[1].add(f.idx)
        self._moved.add(task.id)
        task.updated_at = utcnow()

    @property
    def egress_port(self) -> int | None:
        return self.egress.port if self.egress else None

    def _request(self, task: TaskState, f: FileState) -> AddRequest:
        guarded = self.egress is not None and self.egress.port is not None
        # Worked out from the stored request for a new or recovered task, kept on its files.
        opts = options_for(task, f, self.settings.download_rules)
        # The guard is the proxy when it runs (a job naming its own was refused at submit).
        own_user = None if guarded else opts.proxy_user
        return AddRequest(
            gid=f.gid,
            url=f.url,
            dir=str(self.downloads / task.id),
            out=f.file_name,
            max_download_limit=lower_limit(
                self._share(task, len(task.files)), opts.max_download_limit
            ),
            proxy=self.egress.url if self.egress and guarded else opts.proxy,
            proxy_user=f.gid if guarded else own_user,  # the gid names the download to the guard
            proxy_passwd=None if own_user is None else opts.proxy_password or "",
            headers=(f"{FETCH_MARKER[0]}: {FETCH_MARKER[1]}", *opts.header_lines()),
            paused=task.status is not TaskStatus.DOWNLOADING,  # held until its task runs
        )

    def _share(self, task: TaskState, active: int) -> str | None:
        """A task's cap spread over its active downloads (aria2 caps each download)."""
        if not task.max_download_limit:
            return None
        limit = speed_bytes(task.max_download_limit)
        if limit == 0:
            return None
        active = max(1, min(active, self.settings.max_concurrent_downloads))
        return str(max(1024, limit // active))

    async def add_files(self, batch: Sequence[tuple[TaskState, Sequence[FileState]]]) -> None:
        """Hands the files of one or more tasks to aria2 in one call. Raises
        ``Aria2Unavailable``; a tick retries."""
        async with self.rpc_lock:
            pairs = [
                (task, f)
                for task, files in batch
                # (not cancelled or failed while waiting for the lock)
                if task.status is TaskStatus.DOWNLOADING and task.id in self.tasks
                for f in files
            ]
            if pairs:
                await self._add_locked(pairs)

    async def _add_locked(
        self, pairs: Sequence[tuple[TaskState, FileState]], handover: bool = False
    ) -> None:
        """A fresh try of each file (an attempt), or, with ``handover``, the same try given
        again to an aria2c that lost it."""
        for _, f in pairs:  # from now on a read that lacks it means "add again" (even when
            f.handed_at = self._reads  # this call fails half-way: aria2 may have it)
            f.stall_mark = None
            f.next_retry_at = None
        requests = [self._request(t, f) for t, f in pairs]
        for (task, _), req in zip(pairs, requests, strict=True):
            self._sent[req.gid] = req.max_download_limit
            self._spread.pop(task.id, None)  # spread again over what aria2 now holds
        results = await self.client.add_batch_downloads(requests)
        for (task, f), result in zip(pairs, results, strict=True):
            if task.id not in self.tasks or task.status.final:
                continue  # it ended while the add was on the wire; its removal is queued
            if handover:
                f.handovers += 1
            else:
                f.attempts += 1
            f.download_speed = 0
            if isinstance(result, Aria2RPCError):
                f.status = FileStatus.ERROR
                f.error_code = result.code
                f.error_message = f"aria2 refused the download: {result.message}"
                self._failing.add(task.id)
            else:
                f.status = FileStatus.WAITING
            self._touch(task, f)

    async def remove_downloads(self, task: TaskState) -> None:
        """Stops and forgets a task's downloads in aria2 (cancel, failure).

        The stop is sent under the lock, so an add already on its way lands first and is
        stopped too; waiting for aria2 to let go of them happens outside it.
        """
        gids = [
            f.gid
            for f in task.files
            if f.status is not FileStatus.COMPLETE and f.handed_at is not None  # aria2 saw it
        ]
        if not gids:
            return
        try:
            async with self.rpc_lock:
                await self.client.force_remove(gids)
            await self.client.forget(gids)
        except Aria2Error:
            self._unremoved.update(gids)  # every read from now on removes them
            self.wake()
            raise

    def suspect_orphans(self) -> None:
        """Has the next read look for downloads no task owns (managed aria2c only)."""
        if self.owns_aria2:
            self._orphans_suspected = True
            self.wake()

    @property
    def _looking(self) -> bool:
        """Something to read for even without tasks: orphans, removals still owed, or
        results a remote aria2c is still to forget."""
        return self._orphans_suspected or bool(self._unremoved or self._forget or self._ended)

    # -- the loop -------------------------------------------------------------------------

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="monitor")
            self._listener = asyncio.create_task(self.client.listen(self._on_aria2_event))

    async def stop(self) -> None:
        for task in (self._runner, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._runner = self._listener = None

    def _on_aria2_event(self, method: str, gid: str) -> None:
        """Bytes are always polled; events only decide when to poll without waiting.

        Waking on every file's end would, in a burst of small files, read aria2's whole
        state dozens of times a second and slow the downloads themselves.
        """
        entry = self.by_gid.get(gid)
        if entry is None:
            return
        notice = Notice.of(method)
        if notice is Notice.DONE:
            self._count_done(entry[0], gid)
        elif notice is Notice.STOPPED:
            self.wake()

    async def _run(self) -> None:
        last = 0.0
        while True:
            if not self.tasks and not self._looking:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval)
            # Coalesce bursts of notifications: at most one tick per twice its own cost.
            gap = max(0.01, 2 * self._last_tick_cost) - (time.monotonic() - last)
            if gap > 0:
                await asyncio.sleep(gap)
            self._wake.clear()
            last = time.monotonic()
            try:
                await self.tick()
            except Exception:
                log.exception("monitor tick failed")
            self._last_tick_cost = time.monotonic() - last

    async def tick(self) -> None:
        if not self.tasks and not self._looking:
            return
        self.ticks += 1
        forget, riders = self._forget, self._riders
        extra: list[Call] = [self.client.forget_call(g) for g in forget] + riders
        async with self.rpc_lock:
            self._reads += 1
            try:
                owed = len(self._removing) + len(self._unremoved)
                limit = len(self.by_gid) + len(forget) + len(self._ended) + owed + 64
                statuses = await self.client.read_statuses(
                    self._book,
                    waiting=limit,
                    stopped=limit,
                    purge=self.owns_aria2,
                    extra=extra,
                )
            except Aria2Error as exc:
                self._mark_unavailable(str(exc))
                self._settle()  # tell watchers why nothing moves
                return
            self._forget, self._riders = [], []
            self._mark_unavailable(None)
            self._sweep(statuses, set(forget))
            missing = self._apply_all(statuses, self._reads)
            due = self._due_retries(statuses)
            try:
                if missing:
                    await self._add_locked(missing, handover=True)
                if due:
                    await self._add_locked(due)
            except Aria2Error as exc:
                self._mark_unavailable(str(exc))
        self._settle()
        await self._maybe_flush()

    def _sweep(self, statuses: dict[str, DownloadStatus], forgotten: set[str]) -> None:
        """Every download a managed aria2c holds belongs to a task we track, or is removed
        (its result went with the read); a removal that failed is sent again on every read
        until aria2 holds nothing of it (in remote mode too: those gids are ours)."""
        if self.owns_aria2:
            self._unremoved.clear()  # running, it is an orphan below; stopped, it is gone
            orphans = [st for gid, st in statuses.items() if st.running and gid not in self.by_gid]
        else:
            self._unremoved = {g for g in self._unremoved if g in statuses and g not in self.by_gid}
            orphans = [statuses[g] for g in self._unremoved if g not in forgotten]
        self._orphans_suspected = bool(orphans) and self.owns_aria2
        running = [st.gid for st in orphans if st.running]
        self._riders += [self.client.remove_call(g) for g in running]
        self._riders += [self.client.forget_call(st.gid) for st in orphans if not st.running]
        new = set(running) - self._removing
        self._removing = set(running)
        if new:
            self.orphans_removed += len(new)
            log.warning("removing %d aria2 downloads that no task owns", len(new))

    def _apply_all(
        self, statuses: dict[str, DownloadStatus], read: int
    ) -> list[tuple[TaskState, FileState]]:
        missing: list[tuple[TaskState, FileState]] = []
        now = time.monotonic()
        running = sum(1 for st in statuses.values() if st.active)
        retrying: list[tuple[TaskState, FileState, Reason]] = []
        applied, self._applied = self._applied, {}
        for gid, (task, f) in self.by_gid.items():
            if f.status is FileStatus.COMPLETE or f.handed_at is None:
                continue  # done, or not handed over (yet, or again: a retry waits)
            st = statuses.get(gid)
            if st is None:
                if f.status is FileStatus.ERROR:
                    continue  # failed for good: its result was read and purged, not lost
                # Only files handed over before this read began: one added while the read
                # was in flight is not lost, just not in it.
                if f.handed_at < read:
                    if f.handovers >= MAX_HANDOVERS:
                        f.status = FileStatus.ERROR
                        f.error_message = f"aria2 lost this download {f.handovers} times"
                        self._failing.add(task.id)
                    else:
                        missing.append((task, f))
                continue
            self._applied[gid] = st
            # The same entry as last read's, already applied: nothing new for this file.
            changed = applied.get(gid) is not st and self._apply(f, st)
            if task.status in HELD and f.download_speed:
                f.download_speed = 0  # a read sent before the pause: a held task has no speed
            if changed:
                self._touch(task, f)
                if f.done:
                    self._count_done(task, gid)
                elif f.status is FileStatus.ERROR:
                    guarded = self.egress.reason_for(gid) if self.egress else None
                    if guarded:  # what aria2 saw was the guard's answer, not the host's
                        f.error_message = f"egress guard: {guarded}"
                    reason = classify(f.error_code, f.error_message)
                    if self.egress and self.egress.refused_gid(gid):
                        reason = Reason(reason.text, False)  # asking again changes nothing
                    retrying.append((task, f, reason))
            if st.ended:
                if changed and not self.owns_aria2:
                    self._ended.append(gid)  # forgotten once saved
            elif self._stalled(f, now, running, task):
                self._touch(task, f)
                self._riders.append(self.client.remove_call(gid))
                retrying.append((task, f, STALLED))
            elif st.running:
                self._hold_or_release(task, st)
        for task, f, reason in retrying:
            self._retry_or_fail(task, f, reason)
        return missing

    def _hold_or_release(self, task: TaskState, st: DownloadStatus) -> None:
        """A task's downloads run exactly while it is downloading: paused (or resumed and
        waiting for a slot), aria2 holds them; running again, aria2 lets them go."""
        runs = task.status is TaskStatus.DOWNLOADING
        if runs and st.status == "paused":
            self._riders.append(self.client.unpause_call(st.gid))
        elif not runs and st.status != "paused":
            self._riders.append(self.client.pause_call(st.gid))

    def _retry_or_fail(self, task: TaskState, f: FileState, reason: Reason) -> None:
        """A transient failure waits for its retry under a new gid (the old one's result
        goes as a download nobody owns); anything else fails the task."""
        due = next_retry(f, reason, self.settings)
        if due is None:
            self._failing.add(task.id)
            return
        old = f.retiring = f.gid
        if self.egress is not None:
            self.egress.forget([old])
        f.gid = new_gid()
        self.by_gid.pop(old, None)
        self._sent.pop(old, None)
        self.by_gid[f.gid] = (task, f)
        if not self.owns_aria2:
            self._unremoved.add(old)
        f.status = FileStatus.WAITING
        f.handed_at = None
        f.next_retry_at = due
        self._touch(task, f)
        log.info("task %s: %s failed (%s); try %d at %s", task.id, f.file_name,
                 reason.text, f.attempts + 1, due.isoformat(timespec="seconds"))  # fmt: skip

    def _due_retries(
        self, statuses: dict[str, DownloadStatus]
    ) -> list[tuple[TaskState, FileState]]:
        """Retries whose time has come, once aria2 has let go of the failed try: two
        downloads into one file would start it over."""
        now = utcnow()
        due = []
        for task, f in self.by_gid.values():
            if f.next_retry_at is None or f.next_retry_at > now:
                continue
            if task.status is not TaskStatus.DOWNLOADING:
                continue
            old = statuses.get(f.retiring or "")
            if old is not None and old.running:
                self._riders.append(self.client.remove_call(old.gid))
                continue
            f.retiring = None
            due.append((task, f))
        return due

    def _lowest_for(self, task: TaskState, f: FileState, running: int) -> int:
        """The speed floor, below the share of any cap we set ourselves (global, the task's,
        the file's own): a download we throttle to 1 KiB/s is slow on purpose, not stalled."""
        lowest = self._lowest
        if f.options and f.options.max_download_limit:
            lowest = min(lowest, speed_bytes(f.options.max_download_limit) // 2 or lowest)
        overall = speed_bytes(self.settings.max_overall_download_limit)
        if overall:
            lowest = min(lowest, overall // max(1, running) // 2)
        if task.max_download_limit and (cap := speed_bytes(task.max_download_limit)):
            spread = self._spread.get(task.id)
            sharing = (len(spread[1]) if spread else 0) or len(task.files)  # as _share spreads
            lowest = min(lowest, cap // max(1, sharing) // 2)
        return max(1, lowest)

    def _stalled(self, f: FileState, now: float, running: int, task: TaskState) -> bool:
        """A transfer under its floor (``_lowest_for``) for ``stall_timeout`` fails
        (transient) instead of holding its slot for ever; only time spent active in aria2
        counts."""
        if f.status is not FileStatus.ACTIVE:
            f.stall_mark = None
            return False
        lowest = self._lowest_for(task, f, running)
        mark = f.stall_mark
        # aria2 writes (and so counts) bytes in blocks: a slow but steady transfer shows no
        # new bytes for seconds, but its reported speed stays above the floor.
        if (
            mark is None
            or f.completed_length - mark[1] >= lowest * self.settings.stall_timeout
            or f.download_speed >= lowest
        ):
            f.stall_mark = (now, f.completed_length)
            return False
        if now - mark[0] < self.settings.stall_timeout:
            return False
        f.status = FileStatus.ERROR
        f.download_speed = 0
        f.error_code = None
        f.error_message = (
            f"stalled: slower than {human_size(lowest)}/s for "
            f"{self.settings.stall_timeout:g} s; a transient failure, trying again may work"
        )
        return True

    @staticmethod
    def _apply(f: FileState, st: DownloadStatus) -> bool:
        """Progress rules: nothing goes backwards, a 0 never hides a known size."""
        before = (f.status, f.total_length, f.completed_length, f.download_speed)
        if st.total_length > 0:
            f.total_length = st.total_length
        f.completed_length = max(f.completed_length, st.completed_length)
        f.download_speed = st.download_speed if st.active else 0
        if st.complete:
            if st.completed_length == st.total_length:
                f.status = FileStatus.COMPLETE
                f.total_length = f.completed_length = st.total_length
            else:
                f.status = FileStatus.ERROR
                f.error_message = (
                    f"aria2 reported complete at {st.completed_length} of {st.total_length} bytes"
                )
        elif st.failed:
            f.status = FileStatus.ERROR
            f.error_code = st.error_code
            f.error_message = describe_error(st.error_code, st.error_message)
        elif st.removed:
            f.status = FileStatus.ERROR
            f.error_message = "removed from aria2 by someone else"
        else:
            f.status = st.file_status or f.status
        return before != (f.status, f.total_length, f.completed_length, f.download_speed)

    def _mark_unavailable(self, reason: str | None) -> None:
        if reason == self.unavailable:
            return
        if self.unavailable is not None:  # time without aria2 is no stall of the transfer
            for _, f in self.by_gid.values():
                f.stall_mark = None
        self.unavailable = reason
        message = (
            "downloading"
            if reason is None
            else f"waiting for aria2c ({reason}); downloads resume when it is back"
        )
        for task in self.tasks.values():
            if task.status not in HELD:  # a paused task says so, whatever aria2 does
                task.message = message

    def _settle(self) -> None:
        """Hands finished tasks to the queue, spreads speed caps, publishes progress."""
        now = time.monotonic()
        for task in list(self.tasks.values()):
            if task.status in HELD:  # paused, or resumed and waiting for a slot: aria2 holds
                self._publish_progress(task, now)  # its files (once, as they come to rest)
                continue
            if task.status is not TaskStatus.DOWNLOADING:
                self.untrack(task)
                continue
            if task.id in self._failing:
                self.untrack(task)
                self.outcomes.on_download_failed(task)
                continue
            # The counter says when every file was seen done; only then check them all.
            if self._remaining.get(task.id, 1) <= 0 and all(f.done for f in task.files):
                self.untrack(task)
                self.outcomes.on_downloaded(task)
                continue
            self._spread_cap(task)
            self._publish_progress(task, now)

    def _spread_cap(self, task: TaskState) -> None:
        """The task's cap shared by its active downloads, the others at the share they were
        added with (the smallest); worked out again only when the cap or the active set
        changed, and sent only to downloads whose cap in aria2 is not that already."""
        cap = task.max_download_limit if self._share(task, 1) else None
        if cap is None:
            active: frozenset[str] = frozenset()
        else:
            active = frozenset(f.gid for f in task.files if f.status is FileStatus.ACTIVE)
        if self._spread.get(task.id) == (cap, active):
            return
        self._spread[task.id] = (cap, active)
        share, floor = self._share(task, len(active)), self._share(task, len(task.files))
        for f in task.files:
            if f.done or f.handed_at is None:
                continue  # finished, or not in aria2: its add carries the cap
            own = f.options.max_download_limit if f.options else None
            want = lower_limit(share if f.gid in active else floor, own)
            # A gid never added by this process (a remote aria2c kept it over our restart)
            # has a cap we do not know: it is sent.
            if want != self._sent.get(f.gid, UNKNOWN_CAP):
                self._sent[f.gid] = want
                self._riders.append(self.client.limit_call(f.gid, want))

    def _publish_progress(self, task: TaskState, now: float) -> None:
        """At most once per ``progress_interval``, only when something moved, and only
        worked out when someone listens (the percent is kept current by the flush)."""
        last = self._published.get(task.id)
        if last is not None and now - last[0] < self.settings.progress_interval:
            return
        if last is not None and task.id not in self._moved and last[1][-1] == task.message:
            return  # no file changed since the last event, nor the message
        if not self.bus.has_subscribers(task.id):
            return
        self._moved.discard(task.id)
        payload = task.event(files_limit=EVENT_FILES)
        progress = payload["progress"]
        signature = (
            progress["downloaded_size"],
            progress["completed_files"],
            progress["active_files"],
            progress["failed_files"],
            task.message,
        )
        if last is not None and last[1] == signature:
            return
        self._published[task.id] = (now, signature)
        self.bus.publish(PROGRESS, task.id, payload)

    async def _maybe_flush(self, force: bool = False) -> None:
        """Saves file progress; only then may aria2 forget the results it reported."""
        now = time.monotonic()
        if not force and now - self._last_flush < self.settings.flush_interval:
            return
        self._last_flush = now
        dirty, self._dirty = self._dirty, {}
        ended, self._ended = self._ended, []
        for task, _ in dirty.values():
            task.progress()  # brings progress_percent up to date for the row
        try:
            if dirty:
                await asyncio.shield(self.db.save_progress(dirty))
        except SQLAlchemyError:
            log.exception("could not save progress; will try again")
            for task_id, (task, indexes) in dirty.items():
                self._dirty.setdefault(task_id, (task, set()))[1].update(indexes)
            self._ended = ended + self._ended
            return
        self._forget += ended

    async def flush(self) -> None:
        await self._maybe_flush(force=True)
