"""Live events over a real server: Socket.IO and SSE, in order, to many clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import socketio
from httpx_sse import aconnect_sse

from fileserver import FileServer
from servers import LiveServer, job, live_server, make_settings

FINAL = {"task_completed", "task_failed", "task_cancelled"}


@pytest.fixture
async def server(data_dir: Path) -> AsyncIterator[LiveServer]:
    async with live_server(make_settings(data_dir)) as live:
        yield live


class Recorder:
    """A Socket.IO client that records every event it receives, in order."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.changed = asyncio.Event()
        self.sio.on("*", self._record)

    async def _record(self, event: str, data: Any = None) -> None:
        self.events.append((event, data or {}))
        self.changed.set()

    async def connect(self, base_url: str, **kwargs: Any) -> None:
        await self.sio.connect(
            base_url, socketio_path="/socket.io", transports=["websocket"], **kwargs
        )

    async def wait_for(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                for event, data in self.events:
                    if event == name:
                        return data
                self.changed.clear()
                await self.changed.wait()

    def names(self) -> list[str]:
        return [e for e, _ in self.events]


@contextlib.asynccontextmanager
async def recorder(base_url: str, **kwargs: Any) -> AsyncIterator[Recorder]:
    rec = Recorder()
    await rec.connect(base_url, **kwargs)
    try:
        yield rec
    finally:
        await rec.sio.disconnect()


async def submit(server: LiveServer, body: dict[str, Any]) -> str:
    async with server.client() as http:
        resp = await http.post("/api/tasks/submit", json=body)
        assert resp.status_code == 200, resp.text
        task_id: str = resp.json()["task_id"]
        return task_id


def assert_in_order(events: list[tuple[str, dict[str, Any]]], task_id: str) -> None:
    names = [e for e, _ in events]
    assert names[0] == "subscribed" and events[0][1]["task"]["task_id"] == task_id
    assert names[-1] == "task_completed"
    assert names.count("task_completed") == 1
    sizes = [d["progress"]["downloaded_size"] for e, d in events if e == "task_progress"]
    assert sizes and sizes == sorted(sizes)
    statuses = [d["status"] for e, d in events if e == "task_status_changed"]
    assert statuses[-2:] == ["processing", "completed"]
    completed = events[-1][1]
    assert completed["task_id"] == task_id and completed["draft_path"]


async def test_socketio_sees_the_whole_task_in_order(
    server: LiveServer, fileserver: FileServer
) -> None:
    task_id = await submit(server, job([fileserver.url("/slow/1M/s.bin?rate=1M")]))
    async with recorder(server.base_url) as rec:
        await rec.sio.emit("subscribe_task", {"task_id": task_id})
        await rec.wait_for("task_completed")
        assert_in_order(rec.events, task_id)


async def test_sse_sees_the_whole_task_and_closes(
    server: LiveServer, fileserver: FileServer
) -> None:
    task_id = await submit(server, job([fileserver.url("/slow/1M/e.bin?rate=1M")]))
    events: list[tuple[str, dict[str, Any]]] = []
    async with (
        server.client() as http,
        aconnect_sse(http, "GET", f"/api/tasks/{task_id}/progress/stream") as source,
    ):
        assert source.response.headers["content-type"].startswith("text/event-stream")
        async for sse in source.aiter_sse():  # ends when the server closes the stream
            events.append((sse.event, json.loads(sse.data)))
    assert events[0][0] == "task_subscribed"
    assert_in_order([("subscribed", events[0][1]), *events[1:]], task_id)


async def test_late_subscribers_get_the_result(server: LiveServer, fileserver: FileServer) -> None:
    task_id = await submit(server, job([fileserver.url("/size/10K/late.bin")]))
    async with recorder(server.base_url) as rec:
        await rec.sio.emit("subscribe_task", {"task_id": task_id})
        done = await rec.wait_for("task_completed")
        if rec.names()[0] == "subscribed" and rec.events[0][1]["task"]["status"] == "completed":
            assert rec.names() == ["subscribed", "task_completed"]
        assert done["status"] == "completed"
    async with (
        server.client() as http,
        aconnect_sse(http, "GET", f"/api/tasks/{task_id}/progress/stream") as source,
    ):
        names = [sse.event async for sse in source.aiter_sse()]
    assert names == ["task_subscribed", "task_completed"]


async def test_unknown_ids(server: LiveServer) -> None:
    async with recorder(server.base_url) as rec:
        await rec.sio.emit("subscribe_task", {"task_id": "nope"})
        error = await rec.wait_for("subscribe_error")
        assert error["task_id"] == "nope" and "not found" in error["error"]
    async with server.client() as http:
        resp = await http.get("/api/tasks/nope/progress/stream")
        assert resp.status_code == 404 and "nope" in resp.json()["detail"]


async def test_unsubscribe_stops_events_and_two_clients_share_a_task(
    server: LiveServer, fileserver: FileServer
) -> None:
    task_id = await submit(server, job([fileserver.url("/slow/1M/u.bin?rate=1M")]))
    async with recorder(server.base_url) as leaver, recorder(server.base_url) as stayer:
        for rec in (leaver, stayer):
            await rec.sio.emit("subscribe_task", {"task_id": task_id})
            await rec.wait_for("subscribed")
        await leaver.sio.emit("unsubscribe_task", {"task_id": task_id})
        await leaver.wait_for("unsubscribed")
        seen = len(leaver.events)
        await stayer.wait_for("task_completed")
        assert_in_order(stayer.events, task_id)
        # A round trip on the leaver's connection: whatever the server sent it before this
        # answer has arrived, and none of it is about the task any more.
        await leaver.sio.emit("subscribe_task", {"task_id": "nope"})
        await leaver.wait_for("subscribe_error")
        later = [e for e, d in leaver.events[seen:] if d.get("task_id") == task_id]
        assert later == []


async def test_dashboard_subscription_gets_every_task(
    server: LiveServer, fileserver: FileServer
) -> None:
    async with recorder(server.base_url) as rec:
        await rec.sio.emit("subscribe_all", {})
        await rec.wait_for("subscribed")
        ids = {
            await submit(server, job([fileserver.url(f"/size/5K/all{i}.bin")])) for i in range(3)
        }
        async with asyncio.timeout(30):
            while {d["task_id"] for e, d in rec.events if e == "task_completed"} != ids:
                rec.changed.clear()
                await rec.changed.wait()
        assert "task_progress" not in rec.names()


async def test_two_hundred_subscribers_on_twenty_tasks(
    server: LiveServer, fileserver: FileServer
) -> None:
    ids = [
        await submit(server, job([fileserver.url(f"/slow/256K/m{i}.bin?rate=512K")]))
        for i in range(20)
    ]
    clients = [Recorder() for _ in range(200)]
    try:
        await asyncio.gather(*(c.connect(server.base_url) for c in clients))
        await asyncio.gather(
            *(c.sio.emit("subscribe_task", {"task_id": ids[n % 20]}) for n, c in enumerate(clients))
        )
        finals = await asyncio.gather(*(c.wait_for("task_completed", 60) for c in clients))
        for n, final in enumerate(finals):
            assert final["task_id"] == ids[n % 20]
    finally:
        await asyncio.gather(*(c.sio.disconnect() for c in clients))


async def test_token_required_for_push_when_set(data_dir: Path, fileserver: FileServer) -> None:
    async with live_server(make_settings(data_dir, api_token="t0ken-for-tests")) as server:
        with pytest.raises(socketio.exceptions.ConnectionError):
            async with recorder(server.base_url):
                pass
        async with recorder(server.base_url, auth={"token": "t0ken-for-tests"}) as rec:
            await rec.sio.emit("subscribe_task", {"task_id": "nope"})
            await rec.wait_for("subscribe_error")
        async with server.client() as http:
            resp = await http.get("/api/tasks/nope/progress/stream")
            assert resp.status_code == 401
            resp = await http.get("/api/tasks/nope/progress/stream?token=t0ken-for-tests")
            assert resp.status_code == 404
            resp = await http.get(
                "/api/tasks/nope/progress/stream",
                headers={"Authorization": "Bearer t0ken-for-tests"},
            )
            assert resp.status_code == 404


async def test_the_all_tasks_stream_carries_every_tasks_progress(
    server: LiveServer, fileserver: FileServer
) -> None:
    """Two tasks that finish at different times, on one stream; it stays open after them."""
    events: list[tuple[str, dict[str, Any]]] = []
    async with (
        server.client() as http,
        aconnect_sse(http, "GET", "/api/tasks/stream") as source,
    ):
        assert source.response.headers["content-type"].startswith("text/event-stream")
        stream = source.aiter_sse()
        first = await anext(stream)
        assert (first.event, json.loads(first.data)) == ("tasks_subscribed", {"task_id": "*"})
        fast = await submit(server, job([fileserver.url("/size/20K/fast.bin")]))
        slow = await submit(server, job([fileserver.url("/slow/1M/slow.bin?rate=1M")]))
        async with asyncio.timeout(30):
            while {d["task_id"] for e, d in events if e == "task_completed"} != {fast, slow}:
                sse = await anext(stream)
                events.append((sse.event, json.loads(sse.data)))
    for task_id, size in ((fast, 20 * 1024), (slow, 1024 * 1024)):
        mine = [(e, d) for e, d in events if d["task_id"] == task_id]
        names = [e for e, _ in mine]
        assert names[-1] == "task_completed" and names.count("task_completed") == 1
        assert names[0] == "task_status_changed" and mine[0][1]["status"] == "pending"
        sizes = [d["progress"]["downloaded_size"] for e, d in mine if e == "task_progress"]
        assert sizes == sorted(sizes)
        assert mine[-1][1]["progress"]["downloaded_size"] == size
    moving = [
        d["progress"]["downloaded_size"]
        for e, d in events
        if e == "task_progress" and d["task_id"] == slow and d["progress"]["downloaded_size"]
    ]
    assert moving and moving[0] < 1024 * 1024  # a 1 s download: seen part-way on the stream


async def test_the_all_tasks_stream_is_not_a_task_id_and_needs_the_token(
    data_dir: Path,
) -> None:
    settings = make_settings(data_dir, api_token="t0ken-for-tests")
    async with live_server(settings) as server, server.client() as http:
        assert (await http.get("/api/tasks/stream")).status_code == 401
        async with aconnect_sse(http, "GET", "/api/tasks/stream?token=t0ken-for-tests") as source:
            first = await anext(source.aiter_sse())
            assert first.event == "tasks_subscribed"


async def test_dashboard_subscription_with_progress(
    server: LiveServer, fileserver: FileServer
) -> None:
    async with recorder(server.base_url) as rec:
        await rec.sio.emit("subscribe_all", {"progress": True})
        await rec.wait_for("subscribed")
        task_id = await submit(server, job([fileserver.url("/slow/1M/p.bin?rate=1M")]))
        await rec.wait_for("task_completed")
        sizes = [
            d["progress"]["downloaded_size"]
            for e, d in rec.events
            if e == "task_progress" and d["task_id"] == task_id
        ]
        assert len(sizes) >= 2 and sizes == sorted(sizes) and sizes[0] < 1024 * 1024
