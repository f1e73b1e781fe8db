"""Worker processes for draft builds, so that a build's CPU work never holds the server's GIL.

In a thread, a build stalled every API answer for as long as it ran. Here each build runs in
a worker process that has pyJianYingDraft, Pillow and pymediainfo imported already; one build
at a time per process also means one MediaInfo probe at a time (pymediainfo is not
thread-safe, issue 152) without a lock shared across builds.

One single-process executor per worker, not one executor of N: ``concurrent.futures`` breaks
every future of an executor when one of its processes dies (killed, out of memory, a crash in
MediaInfo), so this way only the build that ran there fails (``WorkerLost``) and only that
worker is replaced.

Workers are never forked from the server (its threads, event loop and sockets are not copied
into them). On Linux they come from multiprocessing's fork server, a clean process that
imports the libraries once and forks each worker from itself (CPython 3.14's default there):
a worker is ready in about 10 ms instead of 0.3 s of CPU for a spawn and the imports, which
every app start would pay (the tests start hundreds). Elsewhere (Windows, macOS, where
forking is unsafe) they are spawned and import the libraries in their initializer.

Workers start in the background when the app starts, end on their own when the server dies
(each watches its parent), and are ended at ``close``, busy or not: the queue gave its builds
``shutdown_grace`` by then.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import TypeVar

from draftdl.errors import DraftdlError

log = logging.getLogger(__name__)

R = TypeVar("R")
BUILD_NICENESS = 10  # added to a worker's nice value: builds yield the cores to downloads
CONTEXT: BaseContext = multiprocessing.get_context(
    "forkserver" if sys.platform == "linux" else "spawn"
)
# What every build needs, imported once per worker rather than once per build.
LIBRARIES = (
    "pyJianYingDraft",
    "pymediainfo",
    "PIL.Image",
    *(f"PIL.{kind}ImagePlugin" for kind in ("Bmp", "Gif", "Jpeg", "Png", "WebP")),  # else lazy
)


class WorkerLost(DraftdlError):
    """Raised by ``BuildPool.run`` when the worker process ended before it answered."""


class RemoteError(Exception):
    """Stands in for an exception raised in a worker that would not survive the trip back
    (one whose constructor takes other arguments than it keeps cannot be unpickled, which
    would break the executor): it keeps the original's ``repr`` and text."""

    def __init__(self, text: str, shown: str) -> None:
        super().__init__(text, shown)
        self.text = text
        self.shown = shown

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.shown


def _prepare(modules: Sequence[str]) -> None:
    """A worker's initializer: imports what its jobs need (nothing to do for those the fork
    server holds), and ties the worker's end to the server's. Ctrl-C in a terminal and a
    service manager's SIGTERM reach the whole process group: the server stops on them,
    giving its builds ``shutdown_grace``, so the worker ignores them; it ends when the
    server ends it, or when the server is gone (killed with -9: no build runs on after it)."""
    for name in modules:
        importlib.import_module(name)
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
    _lower_priority()
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(
            target=_end_with, args=(parent.sentinel,), name="parent-watch", daemon=True
        ).start()


def _lower_priority() -> None:
    """A build is batch work: when the cores are busy, aria2c's downloads and the API's
    answers go first (nice 10 where the system has it; Windows keeps the normal class)."""
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(BUILD_NICENESS)


def _end_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])  # ready when the parent is gone
    os._exit(1)


def _call(fn: Callable[..., R], args: tuple[object, ...]) -> R:
    """Runs in the worker; an exception goes back as it is when it can, else as RemoteError."""
    try:
        return fn(*args)
    except Exception as exc:
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:
            raise RemoteError(str(exc), repr(exc)) from None
        raise


def _pid() -> int:
    return os.getpid()


class _Worker:
    """One process in its own executor; ``started`` is done once the process exists."""

    def __init__(self, modules: Sequence[str]) -> None:
        self.executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=CONTEXT, initializer=_prepare, initargs=(tuple(modules),)
        )
        self.process: BaseProcess | None = None
        self.started = asyncio.create_task(self._start(), name="build-worker-start")
        self.started.add_done_callback(_report_start)

    async def _start(self) -> None:
        # The process starts at the first submit, which blocks for a moment: off the loop.
        await asyncio.to_thread(self.submit, _pid, ())

    def submit(
        self, fn: Callable[..., R], args: tuple[object, ...]
    ) -> concurrent.futures.Future[R]:
        future = self.executor.submit(_call, fn, args)
        # _processes: the executor's own handles (what 3.14's kill_workers() goes through).
        if self.process is None:
            self.process = next(iter(self.executor._processes.values()), None)
        return future

    def how_it_ended(self) -> str:
        """For the log: best effort, the executor's own thread may reap the process first."""
        code = None if self.process is None else self.process.exitcode
        if code is None:
            return "exit status unknown"
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"

    def stop(self) -> None:
        """Blocking. Kills the process, idle or busy: it ignores SIGTERM, a polite exit
        spends 0.2 s tearing modules down (which every app stop would wait for), and a build
        killed half-way leaves only its staging folder (a draft goes into place by rename)."""
        processes = list(self.executor._processes.values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.kill()
        for process in processes:
            process.join()
        self.executor.shutdown(wait=True)


class BuildPool:
    """``workers`` processes; ``run`` takes an idle one, waiting when all are busy."""

    def __init__(self, workers: int, modules: Sequence[str] = ()) -> None:
        self.size = workers
        self.modules = (*LIBRARIES, *modules)
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._all: list[_Worker] = []
        self._closed = False

    def start(self) -> None:
        """Starts every worker in the background; returns at once."""
        if CONTEXT.get_start_method() == "forkserver":  # read when the fork server starts
            CONTEXT.set_forkserver_preload(list(self.modules))
        for _ in range(self.size):
            self._idle.put_nowait(self._new_worker())

    def _new_worker(self) -> _Worker:
        worker = _Worker(self.modules)
        self._all.append(worker)
        return worker

    async def run(self, fn: Callable[..., R], *args: object) -> R:
        """``fn(*args)`` in a worker. Its exception is raised here (``RemoteError`` when it
        could not cross as it is); ``WorkerLost`` when the process died meanwhile, and the
        next run gets a new process. ``fn`` and its arguments must pickle: a module-level
        function and plain data."""
        if self._closed:
            raise WorkerLost("the build workers are stopped: the server is shutting down")
        worker = await self._take()
        try:
            return await asyncio.wrap_future(worker.submit(fn, args))
        except BrokenProcessPool as exc:
            if worker in self._all:  # it died on its own: close() empties the list
                log.warning(
                    "a build worker ended (%s); another takes its place", worker.how_it_ended()
                )
                self._all.remove(worker)
                dead, worker = worker, self._new_worker()
                await asyncio.to_thread(dead.stop)
            raise WorkerLost("the worker process ended before it answered") from exc
        finally:
            if worker in self._all:
                self._idle.put_nowait(worker)

    async def _take(self) -> _Worker:
        """An idle worker whose process is up. One whose start failed (the system refused the
        fork for a moment: EAGAIN, EMFILE, ENOMEM) is replaced by a new one, which is tried
        once: a failed start neither fails every later build nor, once, this one."""
        for attempt in (1, 2):
            worker = await self._idle.get()
            try:
                await asyncio.shield(worker.started)
                return worker
            except Exception as exc:
                if worker in self._all:  # (close() empties the list: no new one then)
                    self._all.remove(worker)
                    self._idle.put_nowait(self._new_worker())
                    await asyncio.to_thread(worker.stop)
                if attempt == 2 or self._closed:
                    raise WorkerLost(f"a build worker could not be started: {exc!r}") from exc
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Ends every worker, idle or busy (a build past the queue's grace, a start still
        importing); returns when all have ended."""
        self._closed = True
        workers, self._all = self._all, []
        # Each spawn takes milliseconds (the imports come after): wait, so none starts late.
        await asyncio.gather(*(w.started for w in workers), return_exceptions=True)
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in workers))


def _report_start(started: asyncio.Task[None]) -> None:
    if not started.cancelled() and (exc := started.exception()) is not None:
        log.error("a build worker did not start: %r", exc)
