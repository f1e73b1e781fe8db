"""The event bus: bounded per subscriber, never dropping a status change or a result."""

from __future__ import annotations

import pytest

from draftdl.events.bus import (
    ALL_TASKS,
    COMPLETED,
    PROGRESS,
    STATUS_CHANGED,
    EventBus,
    Overflowed,
)


async def test_slow_subscriber_loses_old_progress_only() -> None:
    bus = EventBus()
    slow = bus.subscribe("t", maxsize=8)
    fast = bus.subscribe("t", maxsize=1000)
    bus.publish(STATUS_CHANGED, "t", {"status": "downloading"})
    for n in range(100):
        bus.publish(PROGRESS, "t", {"n": n})
    bus.publish(STATUS_CHANGED, "t", {"status": "processing"})
    bus.publish(COMPLETED, "t", {"status": "completed"})
    assert slow.pending() == 8 and slow.dropped == 95
    got = [await slow.get() for _ in range(slow.pending())]
    names = [e.name for e in got]
    assert names[0] == STATUS_CHANGED and names[-2:] == [STATUS_CHANGED, COMPLETED]
    progress = [e.data["n"] for e in got if e.name == PROGRESS]
    assert progress == sorted(progress) and progress[-1] == 99  # the newest kept, in order
    assert fast.pending() == 103  # another subscriber is not affected


async def test_a_queue_full_of_results_still_takes_the_next_result() -> None:
    bus = EventBus()
    sub = bus.subscribe(ALL_TASKS, maxsize=2)
    for n in range(5):
        bus.publish(COMPLETED, f"t{n}", {})
        bus.publish(PROGRESS, f"t{n}", {})  # the dashboard feed carries no progress
    assert [(await sub.get()).task_id for _ in range(sub.pending())] == [f"t{n}" for n in range(5)]


async def test_unsubscribe_forgets_the_subscriber() -> None:
    bus = EventBus()
    sub = bus.subscribe("t")
    bus.unsubscribe(sub)
    bus.unsubscribe(sub)
    bus.publish(COMPLETED, "t", {})
    assert sub.pending() == 0 and bus.subscriber_count() == 0


async def test_an_all_tasks_watcher_gets_progress_of_every_task() -> None:
    bus = EventBus()
    quiet = bus.subscribe(ALL_TASKS)
    assert not bus.has_subscribers("t1")  # status-only dashboards make the monitor do nothing
    watcher = bus.subscribe(ALL_TASKS, progress=True)
    assert bus.has_subscribers("t1") and bus.has_subscribers("t2")
    bus.publish(PROGRESS, "t1", {"n": 1})
    bus.publish(PROGRESS, "t2", {"n": 2})
    bus.publish(COMPLETED, "t1", {})
    got = [await watcher.get() for _ in range(watcher.pending())]
    assert [(e.name, e.task_id) for e in got] == [
        (PROGRESS, "t1"),
        (PROGRESS, "t2"),
        (COMPLETED, "t1"),
    ]
    assert [(await quiet.get()).name for _ in range(quiet.pending())] == [COMPLETED]
    bus.unsubscribe(watcher)
    bus.unsubscribe(watcher)  # twice: the count of watchers stays right
    assert not bus.has_subscribers("t1")
    bus.unsubscribe(quiet)
    assert bus.subscriber_count() == 0


async def test_an_all_tasks_subscriber_that_stops_reading_is_let_go() -> None:
    """Status events are never dropped one by one, so an endless feed that is not read is
    ended as a whole (its client reconnects and reads the list again)."""
    bus = EventBus()
    stuck = bus.subscribe(ALL_TASKS, maxsize=4)
    reading = bus.subscribe(ALL_TASKS, maxsize=4)
    for n in range(16):
        bus.publish(STATUS_CHANGED, f"t{n}", {})
        assert (await reading.get()).task_id == f"t{n}"
    assert stuck.pending() == 16 and not stuck.overflowed
    bus.publish(COMPLETED, "t0", {})
    assert stuck.overflowed and stuck.pending() == 0
    bus.publish(COMPLETED, "t1", {})
    assert stuck.pending() == 0
    with pytest.raises(Overflowed):
        await stuck.get()
    assert (await reading.get()).task_id == "t0"  # the other subscriber is not affected
    one = bus.subscribe("t9", maxsize=2)  # a task's own feed ends with the task: no bound
    for _ in range(20):
        bus.publish(STATUS_CHANGED, "t9", {})
    assert one.pending() == 20 and not one.overflowed
