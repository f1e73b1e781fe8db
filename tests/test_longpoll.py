"""Long-poll: ``?wait=`` answers as soon as the task ends, or with its state after the wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fileserver import FileServer
from servers import LiveServer, job, live_server, make_settings


@pytest.fixture
async def server(data_dir: Path) -> AsyncIterator[LiveServer]:
    async with live_server(make_settings(data_dir)) as live:
        yield live


async def test_a_wait_ends_with_the_task(server: LiveServer, fileserver: FileServer) -> None:
    async with server.client() as http:
        body = job([fileserver.url("/slow/512K/w.bin?rate=512K")])
        task_id = (await http.post("/api/tasks/submit", json=body)).json()["task_id"]
        resp = await http.get(f"/api/tasks/{task_id}", params={"wait": 60}, timeout=70)
        assert resp.status_code == 200
        # As soon as it ended: a 1 s download, not the minute asked for (bound generous).
        assert resp.elapsed.total_seconds() < 20
        task = resp.json()
        assert task["status"] == "completed" and task["draft_path"]
        assert task["progress"]["downloaded_size"] == 512 * 1024
        # Already final: at once, the same answer as without a wait.
        again = await http.get(f"/api/tasks/{task_id}", params={"wait": 60}, timeout=70)
        assert again.json() == (await http.get(f"/api/tasks/{task_id}")).json()


async def test_a_wait_that_runs_out_answers_the_current_state(
    server: LiveServer, fileserver: FileServer
) -> None:
    async with server.client() as http:
        body = job([fileserver.url("/slow/64M/long.bin?rate=64K")])
        task_id = (await http.post("/api/tasks/submit", json=body)).json()["task_id"]
        resp = await http.get(f"/api/tasks/{task_id}", params={"wait": 0.5})
        assert resp.status_code == 200
        assert resp.json()["status"] in {"pending", "downloading"}
        assert (await http.post(f"/api/tasks/{task_id}/cancel")).status_code == 200


async def test_a_cancel_or_delete_ends_the_wait(server: LiveServer, fileserver: FileServer) -> None:
    async with server.client() as http:
        body = job([fileserver.url("/slow/64M/c.bin?rate=64K")])
        ids = [(await http.post("/api/tasks/submit", json=body)).json()["task_id"] for _ in "ab"]
        waits = [
            asyncio.create_task(http.get(f"/api/tasks/{i}", params={"wait": 60}, timeout=70))
            for i in ids
        ]
        await asyncio.sleep(0.3)
        assert (await http.post(f"/api/tasks/{ids[0]}/cancel")).status_code == 200
        assert (await http.delete(f"/api/tasks/{ids[1]}")).status_code == 200
        cancelled, deleted = await asyncio.gather(*waits)
        assert max(r.elapsed.total_seconds() for r in (cancelled, deleted)) < 20
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        # A running task is cancelled, then forgotten: the wait sees one or the other.
        if deleted.status_code == 200:
            assert deleted.json()["status"] == "cancelled"
            assert deleted.json()["message"] == "deleted by the user"
        else:
            assert deleted.status_code == 404 and ids[1] in deleted.json()["detail"]


async def test_submit_can_wait(server: LiveServer, fileserver: FileServer) -> None:
    async with server.client() as http:
        body = job([fileserver.url("/size/64K/s.bin"), fileserver.url("/status/404/gone.bin")])
        resp = await http.post("/api/tasks/submit", params={"wait": 60}, json=body, timeout=70)
        assert resp.status_code == 200
        answer = resp.json()
        assert answer["status"] == "failed" == answer["task"]["status"]
        assert answer["total_files"] == 2 and answer["task"]["task_id"] == answer["task_id"]
        assert "404" in answer["task"]["error_message"]
        plain = await http.post("/api/tasks/submit", json=job([fileserver.url("/size/1K/p.bin")]))
        assert "task" not in plain.json() or plain.json()["task"] is None


async def test_a_wait_out_of_bounds_is_refused(server: LiveServer) -> None:
    async with server.client() as http:
        for wait in ("61", "-1", "soon", "nan"):
            resp = await http.get("/api/tasks/nope", params={"wait": wait})
            assert resp.status_code == 422, wait
            assert resp.json()["detail"][0]["loc"] == ["query", "wait"]
        body = job([])
        resp = await http.post("/api/tasks/submit", params={"wait": "61"}, json=body)
        assert resp.status_code == 422
        assert (await http.get("/api/tasks", params={})).json()["total"] == 0  # nothing stored


async def test_the_max_wait_setting_bounds_every_wait(
    data_dir: Path, fileserver: FileServer
) -> None:
    async with live_server(make_settings(data_dir, max_wait=0.3)) as live, live.client() as http:
        body = job([fileserver.url("/slow/64M/m.bin?rate=64K")])
        resp = await http.post("/api/tasks/submit", params={"wait": 60}, json=body, timeout=5)
        assert resp.status_code == 200 and resp.json()["task"]["status"] in {
            "pending",
            "downloading",
        }
        task_id = resp.json()["task_id"]
        resp = await http.get(f"/api/tasks/{task_id}", params={"wait": 60}, timeout=5)
        assert resp.status_code == 200 and resp.json()["status"] == "downloading"
        assert (await http.post(f"/api/tasks/{task_id}/cancel")).status_code == 200
