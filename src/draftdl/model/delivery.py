"""A webhook delivery in the outbox, and each attempt to make it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class DeliveryState(StrEnum):
    PENDING = "pending"  # to be tried (again) at next_attempt_at
    DELIVERED = "delivered"  # the receiver answered 2xx
    STOPPED = "stopped"  # the receiver answered 410 Gone: it wants no more
    FAILED = "failed"  # retried for webhook_retry_for, never acknowledged


@dataclass
class Attempt:
    n: int
    at: datetime
    status_code: int | None  # None: no answer (refused, timed out, ...)
    error: str | None
    duration_ms: int


@dataclass
class Delivery:
    id: str  # the webhook-id header: the same on every attempt
    task_id: str
    url: str
    event: str  # the task status the event is about
    payload: str  # the JSON body, signed and sent byte for byte the same each time
    created_at: datetime
    next_attempt_at: datetime | None
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    tries: list[Attempt] = field(default_factory=list)  # loaded for answers only
