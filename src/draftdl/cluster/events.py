"""Live events between the nodes of a cluster: every node's bus is joined to the others'
through Redis (events/relay.py), so a worker's progress and outcomes reach the Socket.IO and
SSE clients of every api node, through the same bounded per-client forwarders as in one
process (ordering kept, progress dropped first for a slow client).

python-socketio's AsyncRedisManager is not used: it would carry only Socket.IO's emits (SSE
needs the events too), publish every per-client emit to every node, and drop events without
telling anyone while Redis is away. Here a gap is noticed (a resubscribe, a hole in a node's
numbering) and mended from the database, which every terminal state reaches before it is
published: each watched task's current state is delivered again (its final event if it has
ended), and the all-tasks subscribers are let go, so their clients read the list again.
"""

from __future__ import annotations

import logging

from draftdl.errors import TaskNotFound
from draftdl.events.bus import FINAL_EVENT_OF, STATUS_CHANGED, Event, EventBus
from draftdl.events.feed import TaskQueue
from draftdl.events.relay import EventRelay

log = logging.getLogger(__name__)


class ClusterEvents:
    def __init__(self, bus: EventBus, queue: TaskQueue, redis_url: str, node: str) -> None:
        self.bus = bus
        self.queue = queue
        self.relay = EventRelay(bus, redis_url, node, self.resync)
        self.resyncs = 0

    async def start(self) -> None:
        await self.relay.start()

    async def aclose(self) -> None:
        await self.relay.aclose()

    async def resync(self) -> None:
        """Events may have been missed: the watched tasks' state from the database."""
        self.resyncs += 1
        watched = self.bus.watched()
        log.warning("events: a gap in the relay; %d watched tasks read again", len(watched))
        for task_id in watched:
            try:
                task = await self.queue.get_task(task_id)
            except TaskNotFound:
                continue
            data = {"task_id": task.id, **task.event()}
            self.bus.deliver(Event(STATUS_CHANGED, task.id, data))
            final = FINAL_EVENT_OF.get(task.status.value)
            if final is not None:
                self.bus.deliver(Event(final, task.id, data))
        self.bus.let_go_all("events may have been missed: read the list again")
