"""Group commit: writes that arrive while one is being made go out together in the next.

A burst of submits (or of status changes) then costs one transaction (one commit, one
thread hop) per batch instead of one per task, and a lone write waits for nothing. The write
may answer per item (an error for the ones that could not be written, e.g. a row deleted
meanwhile) and the others still succeed. The flusher is this object's own task; ``aclose``
awaits it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.exc import OperationalError

T = TypeVar("T")

# None: every item written; else one entry per item, None or the error its caller gets.
Outcome = Sequence[BaseException | None] | None


class GroupWriter(Generic[T]):
    def __init__(self, write: Callable[[list[T]], Awaitable[Outcome]], limit: int = 500) -> None:
        self._write = write
        self._limit = limit
        self._waiting: list[tuple[T, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        """Returns once ``item`` is committed; raises what its write raised."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="group-commit")
        await done

    async def aclose(self) -> None:
        if self._flusher is not None:
            await self._flusher

    async def _flush(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._limit]
            del self._waiting[: self._limit]
            await self._write_batch(batch)

    async def _write_batch(self, batch: list[tuple[T, asyncio.Future[None]]]) -> None:
        try:
            outcome = await self._write([item for item, _ in batch])
        except OperationalError as exc:  # the database, not the rows: each caller retries
            _settle(batch, exc)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch, exc)
            else:  # one bad row must not fail the others: each on its own
                for one in batch:
                    await self._write_batch([one])
        else:
            if outcome is None:
                _settle(batch, None)
            else:
                for one, error in zip(batch, outcome, strict=True):
                    _settle([one], error)


def _settle(batch: list[tuple[T, asyncio.Future[None]]], exc: BaseException | None) -> None:
    for _, done in batch:
        if done.done():  # its caller was cancelled
            continue
        if exc is None:
            done.set_result(None)
        else:
            done.set_exception(exc)
