"""Sends the outbox: each due delivery POSTed, signed per Standard Webhooks, its attempt
recorded; retried with backoff for ``webhook_retry_for`` (2xx delivered, 410 stop).

At least once: a delivery sent and then cut off before its attempt was recorded (a kill)
goes again after a restart, with the same ``webhook-id`` so the receiver can tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, timedelta

import httpx
from sqlalchemy.exc import SQLAlchemyError
from standardwebhooks.webhooks import Webhook

from draftdl import __version__
from draftdl.db.outbox import OutboxStore
from draftdl.model.delivery import Attempt, Delivery, DeliveryState
from draftdl.model.task import utcnow
from draftdl.settings import Settings
from draftdl.sources import SourcePolicy
from draftdl.webhooks.spec import WebhookTarget

log = logging.getLogger(__name__)

BATCH = 16  # deliveries sent at once
IDLE = 30.0  # seconds between looks at the outbox when nothing is due (a wake comes sooner)
CLUSTER_IDLE = 1.0
MAX_DELAY = 3600.0  # the longest wait between two attempts
KEEP_FINISHED = timedelta(days=7)
MAX_ERROR = 300  # characters of an error kept per attempt


class WebhookSender:
    def __init__(
        self,
        settings: Settings,
        store: OutboxStore,
        secret: str,
        policy: Callable[[], SourcePolicy],
    ) -> None:
        self.settings = settings
        self.store = store
        self.signer = Webhook(secret)
        self.policy = policy  # this service's ports may change: asked at each send
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._http = httpx.AsyncClient(
            timeout=settings.webhook_timeout,
            follow_redirects=False,  # a redirect could lead where the URL check did not look
            trust_env=False,
            headers={"User-Agent": f"draftdl/{__version__} (webhooks)"},
        )
        self.sent = 0  # attempts made, for tests and health
        # In a cluster the workers store most deliveries and cannot wake this (api) node's
        # sender: it looks every CLUSTER_IDLE seconds instead.
        self.idle = CLUSTER_IDLE if settings.cluster else IDLE
        self._not_before: dict[str, float] = {}  # delivery id → monotonic time

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook-sender")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task  # _run never ends with an error of its own
            self._task = None
        await self._http.aclose()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        last_sweep = 0.0
        while True:
            self._wake.clear()  # before reading: a delivery stored meanwhile wakes the wait
            try:
                due = [d for d in await self.store.due(utcnow(), BATCH) if self._may_send(d)]
                if due:
                    # Each attempt is bounded (webhook_timeout), so one slow receiver holds
                    # the others up by that at most.
                    await asyncio.gather(*(self._deliver(d) for d in due))
                    continue
                if time.monotonic() - last_sweep > 3600:
                    last_sweep = time.monotonic()
                    await self.store.forget_finished(utcnow() - KEEP_FINISHED)
                nxt = await self.store.next_due()
            except SQLAlchemyError as exc:
                log.warning("webhooks: the database did not answer (%r); trying again", exc)
                nxt = None
                await asyncio.sleep(1.0)
            except Exception:  # never let one bad delivery stop every other
                log.exception("webhooks: unexpected error; going on")
                nxt = None
                await asyncio.sleep(1.0)
            delay = self.idle
            if nxt is not None:
                delay = min(self.idle, max(0.0, (nxt - utcnow()).total_seconds()))
            if self._not_before:
                delay = min(delay, max(0.1, min(self._not_before.values()) - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _may_send(self, d: Delivery) -> bool:
        """False while an attempt whose record failed waits out its backoff in memory."""
        until = self._not_before.get(d.id)
        if until is None:
            return True
        if time.monotonic() >= until:
            del self._not_before[d.id]
            return True
        return False

    async def _post(self, d: Delivery) -> int:
        """The receiver's status; the body is not read (only the status counts), and the
        whole exchange is bounded, so a receiver that drips its answer cannot hold us."""
        now = utcnow()
        headers = {
            "content-type": "application/json",
            "webhook-id": d.id,
            "webhook-timestamp": str(int(now.replace(tzinfo=UTC).timestamp())),
            "webhook-signature": self.signer.sign(d.id, now, d.payload),
        }
        async with (
            asyncio.timeout(self.settings.webhook_timeout),
            self._http.stream("POST", d.url, content=d.payload.encode(), headers=headers) as resp,
        ):
            return resp.status_code

    async def _deliver(self, d: Delivery) -> None:
        started = utcnow()
        clock = time.monotonic()
        status: int | None = None
        error: str | None = None
        refused = None
        try:
            refused = await asyncio.to_thread(self._refused, d.url)
            if refused:
                error = f"refused: {refused}"
            else:
                status = await self._post(d)
        except TimeoutError:
            error = f"no answer within {self.settings.webhook_timeout:g} s"
        except Exception as exc:  # httpx errors, and URLs httpx cannot use (IDNA, ...)
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
            if not isinstance(exc, httpx.TransportError):
                refused = refused or error  # it will not work next time either
        d.attempts += 1
        d.last_status, d.last_error = status, error
        if status is not None and 200 <= status < 300:
            d.state, d.delivered_at, d.next_attempt_at = DeliveryState.DELIVERED, utcnow(), None
        elif status == 410:
            d.state, d.next_attempt_at = DeliveryState.STOPPED, None
        elif refused:
            d.state, d.next_attempt_at = DeliveryState.FAILED, None
        else:
            doubling = 2 ** min(d.attempts - 1, 20)
            delay = min(self.settings.webhook_retry_base * doubling, MAX_DELAY)
            nxt = utcnow() + timedelta(seconds=delay)
            if nxt > d.created_at + timedelta(seconds=self.settings.webhook_retry_for):
                d.state, d.next_attempt_at = DeliveryState.FAILED, None
            else:
                d.next_attempt_at = nxt
        attempt = Attempt(
            d.attempts, started, status, error, int((time.monotonic() - clock) * 1000)
        )
        self.sent += 1
        log.info(
            "webhook %s (task %s, %s) attempt %d: %s → %s",
            d.id,
            d.task_id,
            d.event,
            d.attempts,
            status if status is not None else error,
            d.state.value,
        )
        try:
            await self.store.record(d, attempt)
        except SQLAlchemyError as exc:  # sent again later (at least once), after its backoff
            log.warning("webhook %s: its attempt could not be recorded (%r)", d.id, exc)
            wait = (d.next_attempt_at - utcnow()).total_seconds() if d.next_attempt_at else 60.0
            self._not_before[d.id] = time.monotonic() + max(1.0, wait)

    def _refused(self, url: str) -> str | None:
        """Checked again at each send (addresses change): own ports, denied networks."""
        target = WebhookTarget(url, frozenset()).address
        return self.policy().url_problems({target}).get(target)
