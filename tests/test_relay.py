"""The Redis event relay between nodes, on a real redis-server (stopped and started again for
the outage cases)."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from draftdl.events.bus import (
    ALL_TASKS,
    COMPLETED,
    PROGRESS,
    STATUS_CHANGED,
    Event,
    EventBus,
    Overflowed,
    Subscription,
)
from draftdl.events.relay import EventRelay
from redis_server import RedisServer

RESYNC_REASON = "events from other nodes may have been missed"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Node:
    """One node's bus and relay, and a record of its resyncs."""

    def __init__(self, name: str, url: str) -> None:
        self.bus = EventBus()
        self.resynced = asyncio.Event()
        self.resyncs = 0
        self.relay = EventRelay(self.bus, url, name, self._on_resync)

    async def _on_resync(self) -> None:
        self.resyncs += 1
        self.bus.let_go_all(RESYNC_REASON)
        self.resynced.set()


@pytest.fixture
async def nodes(redis_server: RedisServer) -> AsyncIterator[tuple[Node, Node]]:
    a, b = Node("a", redis_server.url), Node("b", redis_server.url)
    await a.relay.start()
    await b.relay.start()
    try:
        async with asyncio.timeout(5):
            await a.relay.subscriber.subscribed.wait()
            await b.relay.subscriber.subscribed.wait()
        yield a, b
    finally:
        await a.relay.aclose()
        await b.relay.aclose()


async def next_event(sub: Subscription, seconds: float = 5) -> Event:
    async with asyncio.timeout(seconds):
        return await sub.get()


async def test_an_event_reaches_the_other_node_once_in_order_and_is_not_echoed(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    on_a = a.bus.subscribe("t1")
    all_on_a = a.bus.subscribe(ALL_TASKS)
    on_b = b.bus.subscribe("t1")
    sent = [(STATUS_CHANGED, {"status": "downloading"})]
    sent += [(PROGRESS, {"n": n}) for n in range(20)]
    sent += [(COMPLETED, {"status": "completed"})]
    for name, data in sent:
        a.bus.publish(name, "t1", data)
    expected = [(name, {"task_id": "t1", **data}) for name, data in sent]

    got = [await next_event(on_b) for _ in sent]
    assert [(e.name, e.data) for e in got] == expected
    assert [e.task_id for e in got] == ["t1"] * len(sent)

    # B's marker is on the channel after all of A's events: once A has it, an echo of A's own
    # events would have arrived before it.
    b.bus.publish(STATUS_CHANGED, "marker", {"status": "pending"})
    assert [(await next_event(all_on_a)).name for _ in range(2)] == [STATUS_CHANGED, COMPLETED]
    marker = await next_event(all_on_a)
    assert (marker.task_id, marker.data) == ("marker", {"task_id": "marker", "status": "pending"})
    assert all_on_a.pending() == 0
    assert [(e.name, e.data) for e in [await on_a.get() for _ in sent]] == expected
    assert on_a.pending() == 0 and on_b.pending() == 0
    assert (a.relay.publisher.sent, a.relay.publisher.dropped) == (len(sent), 0)
    assert (b.relay.subscriber.received, a.relay.subscriber.received) == (len(sent), 1)
    assert (a.resyncs, b.resyncs) == (0, 0)


async def test_events_resume_after_a_redis_restart_with_one_resync(
    redis_server: RedisServer, nodes: tuple[Node, Node], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="draftdl.events.relay")
    a, b = nodes
    on_b = b.bus.subscribe("t1")
    all_on_b = b.bus.subscribe(ALL_TASKS, progress=True)
    a.bus.publish(PROGRESS, "t1", {"n": -1})
    assert (await next_event(on_b)).data == {"task_id": "t1", "n": -1}
    assert (await next_event(all_on_b)).data == {"task_id": "t1", "n": -1}

    await asyncio.to_thread(redis_server.stop)
    slowest = 0.0
    loop = asyncio.get_running_loop()
    outage_end = loop.time() + 5
    n = 0
    while loop.time() < outage_end:  # about 50 events, one every 0.1 s
        started = time.perf_counter()
        a.bus.publish(PROGRESS, "t1", {"n": n})
        slowest = max(slowest, time.perf_counter() - started)
        n += 1
        await asyncio.sleep(0.1)
    assert slowest < 0.005, f"a publish took {slowest * 1000:.1f} ms during the outage"
    assert b.resyncs == 0 and not b.relay.subscriber.subscribed.is_set()
    assert a.relay.publisher.dropped >= n - 1  # the outage was noticed at once

    await asyncio.to_thread(redis_server.start)
    restarted = loop.time()
    first_after = n
    received: list[int] = []
    async with asyncio.timeout(10):
        while not received:  # events published after the restart: the first ones may be lost
            a.bus.publish(PROGRESS, "t1", {"n": n})
            n += 1
            try:
                async with asyncio.timeout(0.1):
                    received.append((await on_b.get()).data["n"])
            except TimeoutError:
                pass
    resumed_after = loop.time() - restarted
    assert resumed_after < 10
    a.bus.publish(COMPLETED, "t1", {"n": n})
    while True:
        event = await next_event(on_b)
        if event.name == COMPLETED:
            break
        received.append(event.data["n"])
    assert first_after <= received[0] and received == list(range(received[0], n))
    assert on_b.pending() == 0

    assert (b.resyncs, b.relay.subscriber.resyncs) == (1, 1)
    assert (a.resyncs, a.relay.subscriber.resyncs) == (1, 1)
    with pytest.raises(Overflowed, match=RESYNC_REASON):  # the dashboard reads the list again
        await all_on_b.get()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("publishing failed" in m for m in messages) == 1  # once per outage
    assert sum("subscription lost" in m for m in messages) == 2  # a's and b's subscriber
    assert sum("publishing again" in m for m in messages) == 1


async def test_the_relay_stops_cleanly_while_redis_is_down(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = Node("a", redis_server.url), Node("b", redis_server.url)
    await a.relay.start()
    await b.relay.start()
    async with asyncio.timeout(5):
        await a.relay.subscriber.subscribed.wait()
        await b.relay.subscriber.subscribed.wait()
    await asyncio.to_thread(redis_server.stop)
    for n in range(5):
        a.bus.publish(PROGRESS, "t1", {"n": n})
        await asyncio.sleep(0.05)
    for _ in range(500):  # both subscribers noticed within 5 s
        if not (a.relay.subscriber.subscribed.is_set() or b.relay.subscriber.subscribed.is_set()):
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the subscribers did not notice that redis stopped")
    assert a.relay.publisher.dropped == 5

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with asyncio.timeout(2):
            await a.relay.aclose()
            await b.relay.aclose()
        gc.collect()
    assert caught == []
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert a.bus.relay is None and b.bus.relay is None
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    a.bus.publish(PROGRESS, "t1", {"n": 5})  # a detached bus publishes locally as before
    assert a.relay.publisher.dropped == 5


async def test_a_dropped_subscriber_connection_is_a_gap_too(
    redis_server: RedisServer, nodes: tuple[Node, Node]
) -> None:
    """Redis stays up but closes the subscribers' connections: redis-py alone would
    reconnect and resubscribe without a word; the relay's loop resubscribes and resyncs."""
    a, b = nodes
    on_b = b.bus.subscribe("t1")
    async with Redis.from_url(redis_server.url) as admin:
        assert await admin.client_kill_filter(_type="pubsub") == 2
    async with asyncio.timeout(5):
        await b.resynced.wait()
        await a.resynced.wait()
        await b.relay.subscriber.subscribed.wait()
    a.bus.publish(COMPLETED, "t1", {"status": "completed"})
    assert (await next_event(on_b)).name == COMPLETED
    assert (a.resyncs, b.resyncs) == (1, 1)


async def test_events_dropped_by_the_sender_make_the_receiver_resync(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    on_b = b.bus.subscribe("t1")
    a.bus.publish(PROGRESS, "t1", {"n": 0})
    assert (await next_event(on_b)).data["n"] == 0
    a.relay.publisher.backlog = 5
    for n in range(1, 21):  # in one go: the sender cannot run in between
        a.bus.publish(PROGRESS, "t1", {"n": n})
    got = [(await next_event(on_b)).data["n"] for _ in range(5)]
    assert got == [1, 2, 3, 4, 5] and b.resyncs == 0
    a.bus.publish(COMPLETED, "t1", {"n": 21})
    assert (await next_event(on_b)).data["n"] == 21
    assert (a.relay.publisher.dropped, b.resyncs, a.resyncs) == (15, 1, 0)
