"""Which deliveries a status change makes: the job's own webhook and the ``webhooks``
setting, each for the statuses it asked for. The queue stores them with the change."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence

from draftdl.model.delivery import Delivery
from draftdl.model.task import TaskState, utcnow
from draftdl.webhooks.spec import WebhookTarget

log = logging.getLogger(__name__)


def body_of(task: TaskState, event: str) -> str:
    """Standard Webhooks' shape: ``type``, ``timestamp``, ``data`` (the task without files)."""
    data = task.view(with_files=False)
    return json.dumps(
        {"type": f"task.{event}", "timestamp": utcnow().isoformat() + "Z", "data": data},
        ensure_ascii=False,
        separators=(",", ":"),
    )


class Outbox:
    def __init__(self, targets: Sequence[WebhookTarget] = ()) -> None:
        self.targets = tuple(targets)  # the setting's: every task
        self._own: dict[str, WebhookTarget | None] = {}  # a task's own, parsed once
        self.on_stored: Callable[[], None] = lambda: None  # the sender's wake-up

    def stored(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            self.on_stored()

    def _target_of(self, task: TaskState) -> WebhookTarget | None:
        if task.webhook is None:
            return None
        if task.id not in self._own:
            try:
                self._own[task.id] = WebhookTarget.from_json(task.webhook)
            except (ValueError, KeyError, TypeError):
                log.error("task %s: its stored webhook cannot be read; none is sent", task.id)
                self._own[task.id] = None
        return self._own[task.id]

    def deliveries_for(self, task: TaskState, event: str) -> list[Delivery]:
        """``task`` as it is about to be stored with status ``event``."""
        own = self._target_of(task)
        targets = [*self.targets, *([own] if own else [])]
        wanted = [t for t in targets if event in t.events]
        if not wanted:
            return []
        now = utcnow()
        payload = body_of(task, event)
        return [
            Delivery(
                id=f"msg_{uuid.uuid4().hex}",
                task_id=task.id,
                url=t.url,
                event=event,
                payload=payload,
                created_at=now,
                next_attempt_at=now,
            )
            for t in dict.fromkeys(wanted)  # the same target twice sends once
        ]

    def forget(self, task_id: str) -> None:
        self._own.pop(task_id, None)
