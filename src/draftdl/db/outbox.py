"""The webhook outbox: deliveries are stored in the transaction that stores the status they
tell of (db/repo.py calls ``insert_deliveries``), then sent and updated by the sender."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from draftdl.db.tables import AttemptRow, DeliveryRow
from draftdl.model.delivery import Attempt, Delivery, DeliveryState

FINISHED = [DeliveryState.DELIVERED.value, DeliveryState.STOPPED.value, DeliveryState.FAILED.value]


async def insert_deliveries(s: AsyncSession, deliveries: Sequence[Delivery]) -> None:
    if deliveries:
        await s.execute(
            insert(DeliveryRow),
            [
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
            ],
        )


def _delivery(row: DeliveryRow) -> Delivery:
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


class OutboxStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def due(self, now: datetime, limit: int) -> list[Delivery]:
        """Pending deliveries whose time has come, the longest waiting first."""
        async with self.sessions() as s:
            rows = await s.scalars(
                select(DeliveryRow)
                .where(
                    DeliveryRow.state == DeliveryState.PENDING.value,
                    DeliveryRow.next_attempt_at <= now,
                )
                .order_by(DeliveryRow.next_attempt_at, DeliveryRow.created_at)
                .limit(limit)
            )
            return [_delivery(r) for r in rows]

    async def next_due(self) -> datetime | None:
        async with self.sessions() as s:
            value: datetime | None = await s.scalar(
                select(func.min(DeliveryRow.next_attempt_at)).where(
                    DeliveryRow.state == DeliveryState.PENDING.value
                )
            )
            return value

    async def record(self, delivery: Delivery, attempt: Attempt) -> None:
        """The attempt and where it left the delivery, in one transaction."""
        async with self.sessions.begin() as s:
            await s.execute(
                insert(AttemptRow).values(
                    delivery_id=delivery.id,
                    n=attempt.n,
                    at=attempt.at,
                    status_code=attempt.status_code,
                    error=attempt.error,
                    duration_ms=attempt.duration_ms,
                )
            )
            await s.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == delivery.id)
                .values(
                    state=delivery.state.value,
                    attempts=delivery.attempts,
                    next_attempt_at=delivery.next_attempt_at,
                    last_status=delivery.last_status,
                    last_error=delivery.last_error,
                    delivered_at=delivery.delivered_at,
                )
            )

    async def of_task(self, task_id: str) -> list[Delivery]:
        """A task's deliveries, oldest first, each with its attempts."""
        async with self.sessions() as s:
            rows = list(
                await s.scalars(
                    select(DeliveryRow)
                    .where(DeliveryRow.task_id == task_id)
                    .order_by(DeliveryRow.created_at, DeliveryRow.id)
                )
            )
            out = [_delivery(r) for r in rows]
            if not out:
                return out
            by_id = {d.id: d for d in out}
            attempts = await s.scalars(
                select(AttemptRow)
                .where(AttemptRow.delivery_id.in_(list(by_id)))
                .order_by(AttemptRow.delivery_id, AttemptRow.n)
            )
            for a in attempts:
                by_id[a.delivery_id].tries.append(
                    Attempt(a.n, a.at, a.status_code, a.error, a.duration_ms)
                )
            return out

    async def forget_finished(self, before: datetime) -> int:
        """Removes finished deliveries made before ``before`` (and their attempts), by one
        condition rather than a list of ids (a big outbox would overflow the parameters)."""
        old = select(DeliveryRow.id).where(
            DeliveryRow.state.in_(FINISHED), DeliveryRow.created_at < before
        )
        async with self.sessions.begin() as s:
            await s.execute(delete(AttemptRow).where(AttemptRow.delivery_id.in_(old)))
            done = await s.execute(
                delete(DeliveryRow).where(
                    DeliveryRow.state.in_(FINISHED), DeliveryRow.created_at < before
                )
            )
            return int(getattr(done, "rowcount", 0) or 0)
