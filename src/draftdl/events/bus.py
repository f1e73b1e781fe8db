"""EventBus: per-task fan-out with bounded queues.

A slow subscriber never blocks the publisher: when its queue is full, its oldest progress
event is dropped, never a status or final event. Progress is bounded by ``maxsize``; status
and final events are few per task, and a subscriber that has gone away is unsubscribed by its
transport. An all-tasks subscriber has no end, so it has a hard bound too: past ``4 *
maxsize`` events it is overflowed (``get`` raises ``Overflowed``) and its transport ends it;
the client reconnects and reads the list again, so nothing is lost to it.

With several nodes, ``relay`` sends each published event on to the other nodes, whose
relays hand it to their subscribers with ``deliver`` (see ``relay.py``); ``let_go_all``
overflows every all-tasks subscriber at once, for a node that may have missed events.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PROGRESS = "task_progress"
STATUS_CHANGED = "task_status_changed"
COMPLETED = "task_completed"
FAILED = "task_failed"
CANCELLED = "task_cancelled"
TASK_DELETED = "task_deleted"  # its record is gone: nothing follows
FINAL_EVENTS = frozenset({COMPLETED, FAILED, CANCELLED, TASK_DELETED})
FINAL_EVENT_OF = {"completed": COMPLETED, "failed": FAILED, "cancelled": CANCELLED}  # by status
ALL_TASKS = "*"


@dataclass(frozen=True)
class Event:
    name: str
    task_id: str
    data: dict[str, Any]

    @property
    def final(self) -> bool:
        return self.name in FINAL_EVENTS


class Overflowed(Exception):
    """An all-tasks subscriber fell so far behind that its events were let go."""


@dataclass(eq=False)
class Subscription:
    """What one subscriber has not read yet; ``get`` waits for the next event."""

    topic: str
    maxsize: int = 256
    progress: bool = True  # False: an all-tasks subscriber that wants status and results only
    _events: collections.deque[Event] = field(default_factory=collections.deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: int = 0
    overflowed: bool = False
    _reason: str = ""

    def push(self, event: Event) -> None:
        if self.overflowed:
            return
        if self.topic == ALL_TASKS and len(self._events) >= 4 * self.maxsize:
            self.dropped += 1
            self.let_go(f"more than {4 * self.maxsize} events behind")
            return
        if len(self._events) >= self.maxsize:
            for i, queued in enumerate(self._events):
                if queued.name == PROGRESS:
                    del self._events[i]
                    self.dropped += 1
                    break
            else:
                if event.name == PROGRESS:
                    self.dropped += 1
                    return
        self._events.append(event)
        self._ready.set()

    def let_go(self, reason: str) -> None:
        """Drops what is queued; ``get`` raises ``Overflowed(reason)`` from now on."""
        self.overflowed = True
        self._reason = reason
        self.dropped += len(self._events)
        self._events.clear()
        self._ready.set()

    async def get(self) -> Event:
        while not self._events:
            if self.overflowed:
                raise Overflowed(self._reason)
            self._ready.clear()
            await self._ready.wait()
        return self._events.popleft()

    def pending(self) -> int:
        return len(self._events)


class EventBus:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = collections.defaultdict(set)
        self._watchers = 0  # all-tasks subscribers that want every task's progress
        self.relay: Callable[[Event], None] | None = None  # must not raise or block

    def subscribe(self, task_id: str, maxsize: int = 256, progress: bool = False) -> Subscription:
        """``task_id`` of ``ALL_TASKS`` receives every task's status and final events, and
        with ``progress`` their progress events too (dashboards)."""
        progress = progress or task_id != ALL_TASKS
        sub = Subscription(task_id, maxsize, progress=progress)
        self._subs[task_id].add(sub)
        if task_id == ALL_TASKS and progress:
            self._watchers += 1
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.topic)
        if subs is None or sub not in subs:
            return
        subs.discard(sub)
        if sub.topic == ALL_TASKS and sub.progress:
            self._watchers -= 1
        if not subs:
            del self._subs[sub.topic]

    def publish(self, name: str, task_id: str, data: dict[str, Any]) -> None:
        event = Event(name, task_id, {"task_id": task_id, **data})
        self.deliver(event)
        if self.relay is not None:
            self.relay(event)

    def deliver(self, event: Event) -> None:
        """Hands an event to this node's subscribers only (how other nodes' events arrive)."""
        name, task_id = event.name, event.task_id
        for sub in self._subs.get(task_id, ()):
            sub.push(event)
        for sub in self._subs.get(ALL_TASKS, ()):
            if name != PROGRESS or sub.progress:
                sub.push(event)

    def has_subscribers(self, task_id: str) -> bool:
        """Whether a progress event of this task would reach anyone (with a relay attached,
        subscribers on other nodes cannot be told: yes)."""
        return self.relay is not None or self._watchers > 0 or bool(self._subs.get(task_id))

    def let_go_all(self, reason: str) -> None:
        """Overflows every all-tasks subscriber: its transport ends it, and its client
        reconnects and reads the list again."""
        for sub in list(self._subs.get(ALL_TASKS, ())):
            sub.let_go(reason)

    def watched(self) -> list[str]:
        """The tasks that have subscribers of their own (not the all-tasks ones)."""
        return [topic for topic, subs in self._subs.items() if topic != ALL_TASKS and subs]

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subs.values())
