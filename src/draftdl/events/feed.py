"""What every push transport shares: a snapshot first, then the task's events in order,
ending with its final event (at once for a task that had already finished)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from draftdl.events.bus import FINAL_EVENT_OF, Event, Subscription
from draftdl.model.task import TaskState


class TaskQueue(Protocol):
    """What a feed needs of the queue (which lives above this layer)."""

    async def get_task(self, task_id: str) -> TaskState: ...

    def subscribe(self, task_id: str) -> Subscription: ...

    def unsubscribe(self, sub: Subscription) -> None: ...


class TaskFeed:
    def __init__(self, queue: TaskQueue, sub: Subscription, snapshot: dict[str, Any]) -> None:
        self.queue = queue
        self.sub = sub
        self.snapshot = snapshot

    @classmethod
    async def open(cls, queue: TaskQueue, task_id: str) -> TaskFeed:
        """Subscribes before reading the snapshot, so no event falls between the two.

        Raises ``TaskNotFound`` (subscribing nothing) for an unknown id.
        """
        sub = queue.subscribe(task_id)
        try:
            task = await queue.get_task(task_id)
        except BaseException:
            queue.unsubscribe(sub)
            raise
        return cls(queue, sub, task.view())

    async def events(self) -> AsyncIterator[Event]:
        final = FINAL_EVENT_OF.get(self.snapshot["status"])
        if final is not None:
            data = {k: v for k, v in self.snapshot.items() if k != "files"}
            yield Event(final, self.snapshot["task_id"], data)
            return
        while True:
            event = await self.sub.get()
            yield event
            if event.final:
                return

    def close(self) -> None:
        self.queue.unsubscribe(self.sub)
