"""The webhook outbox: deliveries are stored in the transaction that stores the status they
tell of (db/repo.py calls ``insert_deliveries``), then sent and updated by the sender."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from draftdl.db.engine import Runner
from draftdl.db.tables import AttemptRow, Base, DeliveryRow
from draftdl.model.delivery import Attempt, Delivery, DeliveryState

DELIVERIES = Base.metadata.tables[DeliveryRow.__tablename__]
ATTEMPTS = Base.metadata.tables[AttemptRow.__tablename__]
FINISHED = [DeliveryState.DELIVERED.value, DeliveryState.STOPPED.value, DeliveryState.FAILED.value]


def delivery_rows(deliveries: Sequence[Delivery]) -> list[dict[str, object]]:
    """The rows of new deliveries (made on the event loop, written in the caller's thread)."""
    return [
        {
            "id": d.id,
            "task_id": d.task_id,
            "url": d.url,
            "event": d.event,
            "payload": d.payload,
            "created_at": d.created_at,
            "next_attempt_at": d.next_attempt_at,
            "state": d.state.value,
            "attempts": d.attempts,
        }
        for d in deliveries
    ]


def insert_deliveries(conn: Connection, rows: list[dict[str, object]]) -> None:
    """One executemany, in the caller's transaction."""
    if rows:
        conn.execute(insert(DELIVERIES), rows)


def _delivery(row: Row[Any]) -> Delivery:
    return Delivery(
        id=row.id,
        task_id=row.task_id,
        url=row.url,
        event=row.event,
        payload=row.payload,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        state=DeliveryState(row.state),
        attempts=row.attempts,
        last_status=row.last_status,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
    )


def _due(conn: Connection, now: datetime, limit: int) -> list[Delivery]:
    rows = conn.execute(
        select(DELIVERIES)
        .where(
            DELIVERIES.c.state == DeliveryState.PENDING.value,
            DELIVERIES.c.next_attempt_at <= now,
        )
        .order_by(DELIVERIES.c.next_attempt_at, DELIVERIES.c.created_at)
        .limit(limit)
    )
    return [_delivery(r) for r in rows]


def _next_due(conn: Connection) -> datetime | None:
    value: datetime | None = conn.scalar(
        select(func.min(DELIVERIES.c.next_attempt_at)).where(
            DELIVERIES.c.state == DeliveryState.PENDING.value
        )
    )
    return value


def _record(conn: Connection, attempt: dict[str, object], delivery: dict[str, object]) -> None:
    conn.execute(insert(ATTEMPTS), attempt)
    conn.execute(
        update(DELIVERIES).where(DELIVERIES.c.id == attempt["delivery_id"]).values(delivery)
    )


def _of_task(conn: Connection, task_id: str) -> list[Delivery]:
    rows = conn.execute(
        select(DELIVERIES)
        .where(DELIVERIES.c.task_id == task_id)
        .order_by(DELIVERIES.c.created_at, DELIVERIES.c.id)
    )
    out = [_delivery(r) for r in rows]
    if not out:
        return out
    by_id = {d.id: d for d in out}
    attempts = conn.execute(
        select(ATTEMPTS)
        .where(ATTEMPTS.c.delivery_id.in_(list(by_id)))
        .order_by(ATTEMPTS.c.delivery_id, ATTEMPTS.c.n)
    )
    for a in attempts:
        by_id[a.delivery_id].tries.append(Attempt(a.n, a.at, a.status_code, a.error, a.duration_ms))
    return out


def _forget_finished(conn: Connection, before: datetime) -> int:
    old = (DELIVERIES.c.state.in_(FINISHED), DELIVERIES.c.created_at < before)
    conn.execute(
        delete(ATTEMPTS).where(ATTEMPTS.c.delivery_id.in_(select(DELIVERIES.c.id).where(*old)))
    )
    done = conn.execute(delete(DELIVERIES).where(*old))
    return int(done.rowcount or 0)


class OutboxStore:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    async def due(self, now: datetime, limit: int) -> list[Delivery]:
        """Pending deliveries whose time has come, the longest waiting first."""
        return await self.runner.read(_due, now, limit)

    async def next_due(self) -> datetime | None:
        return await self.runner.read(_next_due)

    async def record(self, delivery: Delivery, attempt: Attempt) -> None:
        """The attempt and where it left the delivery, in one transaction."""
        await self.runner.write(
            _record,
            {
                "delivery_id": delivery.id,
                "n": attempt.n,
                "at": attempt.at,
                "status_code": attempt.status_code,
                "error": attempt.error,
                "duration_ms": attempt.duration_ms,
            },
            {
                "state": delivery.state.value,
                "attempts": delivery.attempts,
                "next_attempt_at": delivery.next_attempt_at,
                "last_status": delivery.last_status,
                "last_error": delivery.last_error,
                "delivered_at": delivery.delivered_at,
            },
        )

    async def of_task(self, task_id: str) -> list[Delivery]:
        """A task's deliveries, oldest first, each with its attempts."""
        return await self.runner.read(_of_task, task_id)

    async def forget_finished(self, before: datetime) -> int:
        """Removes finished deliveries made before ``before`` (and their attempts), by one
        condition rather than a list of ids (a big outbox would overflow the parameters)."""
        return await self.runner.write(_forget_finished, before)
