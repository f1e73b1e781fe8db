"""Carries live events between nodes over one Redis pub/sub channel.

Each node's ``EventBus`` hands what it publishes to a ``RelayPublisher``, which only queues
it: a task of its own sends it as JSON tagged with the node's name and a per-node sequence
number, so Redis is never waited on in the bus's publisher and its errors never reach it.
While Redis is unreachable this node's events are dropped (live events are lost; tasks are
not affected) and that is logged once per outage.

A ``RelaySubscriber`` hands other nodes' events to the local subscribers (its own are
skipped: they were delivered locally already). It runs its own loop: a new connection per
attempt, no silent reconnects inside redis-py (they would hide a gap), a ping when the
channel is quiet so a dead connection is noticed, and a capped backoff. Whenever events may
have been missed, after a resubscribe that follows a gap or at a hole in a node's sequence,
it calls ``on_resync`` so the feeds can tell their clients to read the snapshot again.

``EventRelay`` owns both and their tasks.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from draftdl.events.bus import Event, EventBus

log = logging.getLogger(__name__)

CHANNEL = "draftdl:events"
BACKLOG = 10_000  # events queued for Redis; past it the newest are dropped
FIRST_DELAY, MAX_DELAY = 0.1, 1.0  # backoff between attempts while Redis is unreachable
QUIET_SECONDS = 5.0  # a subscriber that heard nothing this long pings, and takes the
# connection for dead when that long again passes without an answer
CONNECT_TIMEOUT = 1.0  # never the OS default: a host that drops packets would hang a minute
SOCKET_TIMEOUT = 5.0
STOP_SECONDS = 5.0

Resync = Callable[[], Awaitable[None]]
UNREACHABLE = (RedisError, OSError)  # OSError covers TimeoutError and refused connections


def encode(node: str, seq: int, event: Event) -> bytes:
    return orjson.dumps(
        {"node": node, "seq": seq, "name": event.name, "task_id": event.task_id, "data": event.data}
    )


def decode(raw: bytes) -> tuple[str, int, Event]:
    """Raises ``ValueError`` (or ``KeyError``, ``TypeError``) for what no relay sent."""
    msg: dict[str, Any] = orjson.loads(raw)
    data = msg["data"]
    if not isinstance(data, dict):
        raise TypeError("data is not an object")
    return str(msg["node"]), int(msg["seq"]), Event(str(msg["name"]), str(msg["task_id"]), data)


def _client(url: str, retries: int) -> Redis:
    return Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        retry=Retry(NoBackoff(), retries),
    )


class RelayPublisher:
    """``offer`` (the bus's ``relay``) queues; ``run`` sends, in order."""

    def __init__(self, url: str, node: str, channel: str = CHANNEL, backlog: int = BACKLOG):
        self.url, self.node, self.channel, self.backlog = url, node, channel, backlog
        self._queue: collections.deque[tuple[int, Event]] = collections.deque()
        self._wake = asyncio.Event()
        self._seq = 0
        self._down = False
        self._full = False
        self.sent = 0
        self.dropped = 0

    def offer(self, event: Event) -> None:
        self._seq += 1  # also for a dropped event: the hole tells the other nodes
        if self._down or len(self._queue) >= self.backlog:
            self.dropped += 1
            if not self._down and not self._full:
                self._full = True
                log.warning("redis relay: %d events queued, dropping new ones", self.backlog)
            return
        self._queue.append((self._seq, event))
        self._wake.set()

    async def run(self) -> None:
        # One retry on a fresh connection: the pooled one may be stale after a restart.
        client = _client(self.url, retries=1)
        try:
            while True:
                while not self._queue:
                    self._full = False
                    self._wake.clear()
                    await self._wake.wait()
                seq, event = self._queue.popleft()
                try:
                    payload = encode(self.node, seq, event)
                except TypeError:
                    log.exception("redis relay: event %s of %s not sent", event.name, event.task_id)
                    self.dropped += 1
                    continue
                try:
                    await client.publish(self.channel, payload)
                    self.sent += 1
                except UNREACHABLE as exc:
                    self.dropped += 1
                    await self._wait_for_redis(client, exc)
        finally:
            await client.aclose()

    async def _wait_for_redis(self, client: Redis, exc: BaseException) -> None:
        """Drops events until Redis answers again (they would be stale by then)."""
        loop = asyncio.get_running_loop()
        since, dropped = loop.time(), self.dropped
        self._down = True
        log.warning("redis relay: publishing failed (%s); dropping events until it is back", exc)
        delay = FIRST_DELAY
        try:
            while True:
                self.dropped += len(self._queue)
                self._queue.clear()
                await asyncio.sleep(delay)
                try:
                    await client.ping()
                    break
                except UNREACHABLE:
                    delay = min(delay * 2, MAX_DELAY)
        finally:
            self._down = False
        log.info(
            "%6.2fs → redis relay: publishing again (%d events dropped)",
            loop.time() - since,
            self.dropped - dropped,
        )


class RelaySubscriber:
    """Hands other nodes' events to the local bus; ``subscribed`` is set while it listens."""

    def __init__(
        self, bus: EventBus, url: str, node: str, on_resync: Resync, channel: str = CHANNEL
    ):
        self.bus, self.url, self.node, self.channel = bus, url, node, channel
        self.on_resync = on_resync
        self.subscribed = asyncio.Event()
        self._last_seq: dict[str, int] = {}
        self.received = 0
        self.resyncs = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        gap = False  # set after any failed or lost subscription
        down_since: float | None = None
        delay = FIRST_DELAY
        while True:
            # No retries inside redis-py: its pubsub would resubscribe silently after a gap.
            client = _client(self.url, retries=0)
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.subscribed.set()
                    delay = FIRST_DELAY
                    if down_since is not None:
                        log.info("%6.2fs → redis relay: subscribed again", loop.time() - down_since)
                        down_since = None
                    if gap:
                        self._last_seq.clear()  # this resync covers what was missed so far
                        await self._resync()
                    await self._listen(pubsub)
            except UNREACHABLE as exc:
                if down_since is None:
                    down_since = loop.time()
                    log.warning("redis relay: subscription lost (%s); retrying", exc)
            finally:
                self.subscribed.clear()
                await client.aclose()
            gap = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)

    async def _listen(self, pubsub: PubSub) -> None:
        pinged = False
        while True:
            msg = await pubsub.get_message(timeout=QUIET_SECONDS)
            if msg is None:  # quiet, or the subscribe confirmation
                if pinged:
                    raise TimeoutError(f"no answer to a ping in {QUIET_SECONDS}s")
                await pubsub.ping()
                pinged = True
                continue
            pinged = False
            if msg["type"] == "message":
                await self._handle(msg["data"])

    async def _handle(self, raw: bytes) -> None:
        try:
            node, seq, event = decode(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("redis relay: ignored a message no relay sent: %.80r", raw)
            return
        if node == self.node:
            return
        last = self._last_seq.get(node)
        self._last_seq[node] = seq
        if last is not None and seq != last + 1:
            log.warning("redis relay: %d events of node %s were lost", seq - last - 1, node)
            await self._resync()
        self.received += 1
        self.bus.deliver(event)

    async def _resync(self) -> None:
        self.resyncs += 1
        try:
            await self.on_resync()
        except Exception:
            log.exception("redis relay: on_resync failed")


class EventRelay:
    """Joins a node's bus to the others: ``start`` attaches it, ``aclose`` detaches it and
    ends its two tasks (also while Redis is down)."""

    def __init__(
        self, bus: EventBus, url: str, node: str, on_resync: Resync, channel: str = CHANNEL
    ):
        self.bus = bus
        self.publisher = RelayPublisher(url, node, channel)
        self.subscriber = RelaySubscriber(bus, url, node, on_resync, channel)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self.bus.relay is not None:
            raise RuntimeError("the bus already has a relay")
        for name, coro in (
            ("publisher", self.publisher.run()),
            ("subscriber", self.subscriber.run()),
        ):
            task = asyncio.create_task(coro, name=f"redis-relay-{name}")
            task.add_done_callback(self._reap)
            self._tasks.add(task)
        self.bus.relay = self.publisher.offer

    def _reap(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())

    async def aclose(self) -> None:
        if self.bus.relay == self.publisher.offer:
            self.bus.relay = None
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_SECONDS)
            for task in pending:  # it swallowed the cancel: say so rather than hang shutdown
                log.error("%s did not stop within %ss", task.get_name(), STOP_SECONDS)
        self._tasks.clear()
