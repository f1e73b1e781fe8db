"""Long-poll: wait, within a bound, for a task to reach a final state.

For clients that cannot hold a stream open (automation flows time out after a few minutes):
they call again and again, each call answering as soon as the task ends.
"""

from __future__ import annotations

import asyncio
import contextlib

from draftdl.model.task import TaskState
from draftdl.tasks.queue import TaskQueue

MAX_WAIT = 60.0  # seconds one call may wait


async def wait_until_final(queue: TaskQueue, task_id: str, seconds: float) -> TaskState:
    """The task as it is when it ends or when ``seconds`` have passed, whichever is first.

    Subscribes before reading, so an end between the two is not missed. Raises
    ``TaskNotFound`` for an unknown id, and for a task deleted while waiting.
    """
    sub = queue.subscribe(task_id)
    try:
        task = await queue.get_task(task_id)
        if seconds <= 0 or task.status.final:
            return task
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(seconds, MAX_WAIT, queue.settings.max_wait)):
                while not (await sub.get()).final:
                    pass
    finally:
        queue.unsubscribe(sub)
    return await queue.get_task(task_id)
