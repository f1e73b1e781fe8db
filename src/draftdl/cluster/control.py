"""Controls across nodes: a cancel, pause, retry... of a task another node holds is carried
out there, where its downloads are.

The request is a row of ``control_requests`` (the truth: a control is never lost to a missed
notification) and a NOTIFY on ``draftdl_control`` (the wake-up, within milliseconds); the
node that holds the task runs the control as if it had been asked itself (tasks/control.py:
same checks, same 409s), writes the answer into the row and NOTIFYs ``draftdl_answer``; the
asking node then answers its client from the database. A node also looks for unanswered
requests addressed to it every second (its listener may have been reconnecting), and the
asking node reads the row every half second while it waits. A holder that does not answer
within ``ANSWER_TIMEOUT`` makes the control a 503; the request is then marked abandoned, so
the holder no longer takes it up (one it had taken up may still be carried out).

A task that no live claim covers (waiting in the queue, paused, finished, or its worker's
lease ran out) is controlled by the node that was asked, on the database (fenced like any
write: if a worker claims it meanwhile, the write is refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, text

from draftdl.errors import (
    Aria2Unavailable,
    DraftdlError,
    FieldProblem,
    InvalidTransition,
    NodeUnavailable,
    RequestRejected,
    TaskNotFound,
)
from draftdl.settings import Settings

log = logging.getLogger(__name__)

REQUESTS = "draftdl_control"
ANSWERS = "draftdl_answer"
ANSWER_TIMEOUT = 10.0  # seconds a holder has to carry out a control
ROW_POLL = 0.5  # seconds between reads of the answer row while waiting
SERVE_POLL = 1.0  # seconds between looks for requests a missed NOTIFY did not bring
RECONNECT = 1.0

HOLDER = text(
    """
    SELECT owner FROM tasks
     WHERE id = :task_id AND owner IS NOT NULL AND lease_until > now()
    """
)
ASK = text(
    """
    INSERT INTO control_requests (id, task_id, node, action, args, created_at)
    VALUES (:id, :task_id, :node, :action, :args, now())
    """
)
WAKE = text("SELECT pg_notify(:channel, :payload)")
ANSWER = text("SELECT answer FROM control_requests WHERE id = :id AND answer IS NOT NULL")
# Requests the asker still waits for (younger than its timeout), not yet taken up.
MINE = text(
    """
    UPDATE control_requests SET taken_at = now()
     WHERE node = :node AND answer IS NULL AND taken_at IS NULL
       AND created_at > now() - CAST(:max_age AS interval)
    RETURNING id, task_id, action, args
    """
)
ANSWERED = text(
    """
    UPDATE control_requests SET answer = :answer, answered_at = now()
     WHERE id = :id AND answer IS NULL
    """
)
ABANDONED = '{"error": "abandoned"}'
ABANDON = text(
    "UPDATE control_requests SET answer = :answer, answered_at = now()"
    " WHERE id = :id AND answer IS NULL"
)
WORKERS = text(
    """
    SELECT name FROM nodes
     WHERE role = 'worker' AND seen_at > now() - CAST(:within AS interval) AND name <> :me
     ORDER BY name
    """
)
SET = text(
    """
    INSERT INTO cluster_settings (name, value) VALUES (:name, :value)
    ON CONFLICT (name) DO UPDATE SET value = :value
    """
)
GET = text("SELECT value FROM cluster_settings WHERE name = :name")
FORGET = text("DELETE FROM control_requests WHERE created_at < now() - CAST(:age AS interval)")


def holder(conn: Connection, task_id: str) -> str | None:
    """The node whose live claim covers the task, if any."""
    found = conn.execute(HOLDER, {"task_id": task_id}).scalar()
    return None if found is None else str(found)


def _ask(conn: Connection, request: dict[str, Any]) -> None:
    conn.execute(ASK, request)
    payload = json.dumps({"id": request["id"], "node": request["node"]})
    conn.execute(WAKE, {"channel": REQUESTS, "payload": payload})


def _answer_of(conn: Connection, request_id: str) -> str | None:
    found = conn.execute(ANSWER, {"id": request_id}).scalar()
    return None if found is None else str(found)


def _take_mine(conn: Connection, node: str) -> list[dict[str, Any]]:
    """The requests addressed to ``node`` that it now takes up (each once)."""
    params = {"node": node, "max_age": timedelta(seconds=ANSWER_TIMEOUT)}
    return [dict(row._mapping) for row in conn.execute(MINE, params)]


def _abandon(conn: Connection, request_id: str) -> str | None:
    """Marks a request nobody answered in time (the holder will not take it up any more);
    the answer when it came just now."""
    if conn.execute(ABANDON, {"id": request_id, "answer": ABANDONED}).rowcount:
        return None
    return _answer_of(conn, request_id)


def _answered(conn: Connection, request_id: str, answer: str) -> None:
    conn.execute(ANSWERED, {"id": request_id, "answer": answer})
    conn.execute(WAKE, {"channel": ANSWERS, "payload": request_id})


def shared_setting(conn: Connection, name: str) -> str | None:
    """A setting every node of the cluster shares, as the last node to change it left it."""
    found = conn.execute(GET, {"name": name}).scalar()
    return None if found is None else str(found)


def _share(conn: Connection, name: str, value: str, me: str, within: timedelta) -> list[str]:
    conn.execute(SET, {"name": name, "value": value})
    return [str(n) for n in conn.execute(WORKERS, {"me": me, "within": within}).scalars()]


def _forget(conn: Connection) -> None:
    conn.execute(FORGET, {"age": timedelta(hours=1)})


def answer_of(exc: BaseException | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A control's outcome as the row keeps it (``extra``: what the control returned)."""
    if exc is None:
        return {"ok": True, **(extra or {})}
    if isinstance(exc, TaskNotFound):
        return {"error": "not_found", "message": str(exc), "task_id": exc.task_id}
    if isinstance(exc, InvalidTransition):
        return {"error": "invalid", "message": str(exc)}
    if isinstance(exc, RequestRejected):
        problems = [{"loc": list(p.loc), "msg": p.msg, "type": p.type} for p in exc.problems]
        return {"error": "rejected", "problems": problems, "status": exc.status_code}
    if isinstance(exc, NodeUnavailable | Aria2Unavailable):
        return {"error": "unavailable", "message": str(exc)}
    return {"error": "failed", "message": f"{type(exc).__name__}: {exc}"}


def raise_answer(answer: dict[str, Any]) -> dict[str, Any]:
    """The asking node raises what the holder raised (the same 404, 409 or 422); else what
    the control returned."""
    kind = answer.get("error")
    if kind is None:
        return answer
    if kind == "not_found":
        raise TaskNotFound(str(answer.get("task_id")))
    if kind == "invalid":
        raise InvalidTransition(str(answer.get("message")))
    if kind == "rejected":
        problems = [
            FieldProblem(tuple(p["loc"]), p["msg"], p.get("type", "value_error"))
            for p in answer.get("problems", [])
        ]
        raise RequestRejected(problems, int(answer.get("status", 422)))
    if kind == "unavailable":
        raise NodeUnavailable(str(answer.get("message")))
    raise DraftdlError(str(answer.get("message")))


class Handler(Protocol):
    """What the holding node runs for a request (TaskQueue.run_control)."""

    async def run_control(
        self, task_id: str, action: str, args: dict[str, Any]
    ) -> dict[str, Any] | None: ...


class ControlChannel:
    """A node's end of the control requests: it asks (``ask``) and, when it holds tasks,
    serves (``handler``). One asyncpg connection of its own LISTENs on both channels and is
    made again when it drops."""

    def __init__(self, settings: Settings, runner: Any, handler: Handler | None) -> None:
        self.settings = settings
        self.node = settings.node
        self.runner = runner
        self.handler = handler
        self._waiting: dict[str, asyncio.Event] = {}
        self._wake_serve = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._serving: set[asyncio.Task[None]] = set()
        self.served = 0  # for tests

    def start(self) -> None:
        self._loops = [asyncio.create_task(self._listen(), name="control-listen")]
        if self.handler is not None:
            self._loops.append(asyncio.create_task(self._serve_loop(), name="control-serve"))

    async def stop(self) -> None:
        for loop in [*self._loops, *self._serving]:
            loop.cancel()
        await asyncio.gather(*self._serving, return_exceptions=True)
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        self._loops.clear()

    async def holder(self, task_id: str) -> str | None:
        """Another node whose live claim covers the task (None: act here)."""
        found: str | None = await self.runner.read(holder, task_id)
        return None if found == self.node else found

    async def ask(
        self, node: str, task_id: str, action: str, args: dict[str, Any]
    ) -> dict[str, Any]:
        """Has ``node`` run the control; raises what it raised there, else returns what
        it returned."""
        request_id = str(uuid.uuid4())
        arrived = self._waiting[request_id] = asyncio.Event()
        request = {
            "id": request_id,
            "task_id": task_id,
            "node": node,
            "action": action,
            "args": json.dumps(args),
        }
        try:
            await self.runner.write(_ask, request)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + ANSWER_TIMEOUT
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), ROW_POLL)
                answer = await self.runner.read(_answer_of, request_id)
                if answer is None and loop.time() > deadline:
                    answer = await self.runner.write(_abandon, request_id)
                    if answer is None:
                        raise NodeUnavailable(
                            f"node {node}, which holds task {task_id}, did not answer the "
                            f"{action} within {ANSWER_TIMEOUT:g} s (it may still have been "
                            "carried out: read the task before asking again)"
                        )
                if answer is not None:
                    return raise_answer(json.loads(answer))
                arrived.clear()
        finally:
            del self._waiting[request_id]

    async def shared(self, name: str) -> str | None:
        found: str | None = await self.runner.read(shared_setting, name)
        return found

    async def everywhere(self, name: str, value: str, action: str) -> None:
        """A shared setting stored for every node (a worker that starts later reads it), and
        ``action`` run on every live worker but this node; one that does not answer is
        logged (it reads the stored value when it starts again)."""
        lease = timedelta(seconds=self.settings.lease_seconds)
        nodes = await self.runner.write(_share, name, value, self.node, lease)
        results = await asyncio.gather(
            *(self.ask(node, "", action, {"value": value}) for node in nodes),
            return_exceptions=True,
        )
        for node, result in zip(nodes, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("%s = %s did not reach node %s: %s", name, value, node, result)

    # -- the listener ---------------------------------------------------------------------

    async def _listen(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        from draftdl.cluster.worker import asyncpg_dsn

        while True:
            conn = None
            try:
                conn = await asyncpg.connect(asyncpg_dsn(self.settings.db_url))
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, gone=lost: gone.set())
                await conn.add_listener(REQUESTS, self._on_request)
                await conn.add_listener(ANSWERS, self._on_answer)
                self._wake_serve.set()  # what came while we were away
                for event in self._waiting.values():
                    event.set()
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), 5.0)
                    if not lost.is_set():
                        await asyncio.wait_for(conn.fetchval("SELECT 1"), 3.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("control listener: %r; listening again in %.0f s", exc, RECONNECT)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(RECONNECT)

    def _on_request(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            if json.loads(payload)["node"] == self.node:
                self._wake_serve.set()

    def _on_answer(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        event = self._waiting.get(payload)
        if event is not None:
            event.set()

    # -- serving --------------------------------------------------------------------------

    async def _serve_loop(self) -> None:
        forgot = 0.0
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_serve.wait(), SERVE_POLL)
            self._wake_serve.clear()
            try:
                for request in await self.runner.write(_take_mine, self.node):
                    serving = asyncio.create_task(self._serve(request), name="control")
                    self._serving.add(serving)
                    serving.add_done_callback(self._serving.discard)
                if loop.time() - forgot > 600:
                    forgot = loop.time()
                    await self.runner.write(_forget)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("control requests: could not read or answer; again shortly")

    async def _serve(self, request: dict[str, Any]) -> None:
        """One request, taken up by this node (each in a task of its own: a slow control
        holds up no other; two of one task wait on the task's own lock in the queue)."""
        try:
            assert self.handler is not None
            outcome: BaseException | None = None
            extra: dict[str, Any] | None = None
            try:
                args = json.loads(request["args"] or "{}")
                task_id, action = request["task_id"], request["action"]
                extra = await self.handler.run_control(task_id, action, args)
            except Exception as exc:  # the asking node gets it as its answer
                outcome = exc
            answer = json.dumps(answer_of(outcome, extra))
            await self.runner.write(_answered, request["id"], answer)
            self.served += 1
            log.info(
                "control %s of task %s, asked by another node: %s",
                request["action"],
                request["task_id"],
                "done" if outcome is None else outcome,
            )
        except Exception:
            log.exception("control %s of task %s: no answer written", request["action"],
                          request["task_id"])  # fmt: skip
