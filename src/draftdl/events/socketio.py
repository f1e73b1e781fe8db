"""Socket.IO at ``/socket.io``: ``subscribe_task`` / ``unsubscribe_task`` / ``subscribe_all``.

Each (client, task) pair gets its own bounded bus subscription and forwarder, so a slow or
vanished client only ever loses its own oldest progress events; status and final events are
never dropped, and nothing is reordered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import socketio

from draftdl.api.deps import Services, token_matches
from draftdl.errors import TaskNotFound
from draftdl.events.bus import ALL_TASKS, PROGRESS, Overflowed, Subscription
from draftdl.events.feed import TaskFeed
from draftdl.settings import Settings

log = logging.getLogger(__name__)

# Progress is skipped for a client whose transport already holds this many unsent packets.
MAX_BACKLOG = 64
ALL_TASKS_BACKLOG = 1024  # events kept for an all-tasks subscriber (oldest progress drops first)


def _presented_token(environ: dict[str, Any], auth: Any) -> str | None:
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return str(auth["token"])
    header = environ.get("HTTP_AUTHORIZATION", "")
    if header.lower().startswith("bearer "):
        return str(header[7:].strip())
    tokens = parse_qs(str(environ.get("QUERY_STRING", ""))).get("token", [])
    return tokens[0] if tokens else None


class SocketGateway:
    """The Socket.IO server and the forwarders that feed its clients from the event bus."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services: Services | None = None
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            # None: same origin only ([] would switch the origin check off altogether).
            cors_allowed_origins=list(settings.cors_origins) or None,
            logger=False,
            engineio_logger=False,
        )
        self._forwarders: dict[str, dict[str, asyncio.Task[None]]] = {}
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self.sio.on("subscribe_task", self._subscribe)
        self.sio.on("unsubscribe_task", self._unsubscribe)
        self.sio.on("subscribe_all", self._subscribe_all)
        self.sio.on("unsubscribe_all", self._unsubscribe_all)

    def asgi_app(self) -> socketio.ASGIApp:
        return socketio.ASGIApp(self.sio, socketio_path="")

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if not token_matches(self.settings, _presented_token(environ, auth)):
            raise socketio.exceptions.ConnectionRefusedError("missing or wrong API token")
        self._forwarders[sid] = {}

    async def _disconnect(self, sid: str, *args: Any) -> None:
        for task in self._forwarders.pop(sid, {}).values():
            task.cancel()

    def _queue_ready(self) -> Services:
        if self.services is None:
            raise RuntimeError("the service is starting")
        return self.services

    async def _subscribe(self, sid: str, data: Any) -> None:
        task_id = str(data.get("task_id", "")) if isinstance(data, dict) else ""
        services = self._queue_ready()
        try:
            feed = await TaskFeed.open(services.queue, task_id)
        except TaskNotFound as exc:
            await self.sio.emit("subscribe_error", {"task_id": task_id, "error": str(exc)}, to=sid)
            return
        await self.sio.emit("subscribed", {"task_id": task_id, "task": feed.snapshot}, to=sid)
        self._start(sid, task_id, self._forward_feed(sid, feed), feed.close)

    async def _unsubscribe(self, sid: str, data: Any) -> None:
        task_id = str(data.get("task_id", "")) if isinstance(data, dict) else ""
        forwarder = self._forwarders.get(sid, {}).pop(task_id, None)
        if forwarder is not None:
            forwarder.cancel()
        await self.sio.emit("unsubscribed", {"task_id": task_id}, to=sid)

    async def _subscribe_all(self, sid: str, data: Any = None) -> None:
        """Status changes and results of every task, for dashboards; with ``{"progress":
        true}`` their progress events too."""
        services = self._queue_ready()
        progress = isinstance(data, dict) and data.get("progress") is True
        sub = services.queue.subscribe(ALL_TASKS, ALL_TASKS_BACKLOG, progress=progress)
        await self.sio.emit("subscribed", {"task_id": ALL_TASKS, "task": None}, to=sid)
        self._start(
            sid, ALL_TASKS, self._forward_all(sid, sub), lambda: services.queue.unsubscribe(sub)
        )

    async def _unsubscribe_all(self, sid: str, data: Any = None) -> None:
        await self._unsubscribe(sid, {"task_id": ALL_TASKS})

    def _start(self, sid: str, key: str, coro: Any, release: Callable[[], None]) -> None:
        feeds = self._forwarders.get(sid)
        if feeds is None:  # disconnected meanwhile: the forwarder never runs its finally
            coro.close()
            release()
            return
        old = feeds.pop(key, None)
        if old is not None:
            old.cancel()
        task = asyncio.create_task(coro, name=f"sio-{sid}-{key}")
        feeds[key] = task
        task.add_done_callback(lambda t: self._reap(sid, key, t))

    def _reap(self, sid: str, key: str, task: asyncio.Task[None]) -> None:
        feeds = self._forwarders.get(sid)
        if feeds is not None and feeds.get(key) is task:
            del feeds[key]
        if not task.cancelled() and task.exception() is not None:
            log.error("socket.io forwarder failed", exc_info=task.exception())

    async def _forward_feed(self, sid: str, feed: TaskFeed) -> None:
        try:
            async for event in feed.events():
                if event.name == PROGRESS and self._backlog(sid) > MAX_BACKLOG:
                    continue
                await self.sio.emit(event.name, event.data, to=sid)
        finally:
            feed.close()

    async def _forward_all(self, sid: str, sub: Subscription) -> None:
        services = self._queue_ready()
        try:
            while True:
                event = await sub.get()
                if event.name == PROGRESS and self._backlog(sid) > MAX_BACKLOG:
                    continue
                await self.sio.emit(event.name, event.data, to=sid)
        except Overflowed as exc:  # the client subscribes again and reads the list
            await self.sio.emit("unsubscribed", {"task_id": ALL_TASKS, "reason": str(exc)}, to=sid)
        finally:
            services.queue.unsubscribe(sub)

    def _backlog(self, sid: str) -> int:
        """Packets queued for the client and not yet sent (0 when it cannot be told)."""
        with contextlib.suppress(Exception):
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
            socket = self.sio.eio.sockets.get(eio_sid)
            if socket is not None:
                return int(socket.queue.qsize())
        return 0

    async def close(self) -> None:
        for feeds in self._forwarders.values():
            for task in feeds.values():
                task.cancel()
        self._forwarders.clear()
