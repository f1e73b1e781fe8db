"""Webhooks against a real receiver on 127.0.0.1: signed, retried, at least once, never lost."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from draftdl.webhooks.secret import check_secret
from fileserver import FileServer
from servers import job, live_server, make_settings
from webhook_receiver import Receiver

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
FAST = {"webhook_retry_base": 0.2, "webhook_secret": SECRET}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver(SECRET, script=[500, 500])
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


async def deliveries(http: Any, task_id: str) -> list[dict[str, Any]]:
    resp = await http.get(f"/api/tasks/{task_id}/webhooks")
    assert resp.status_code == 200, resp.text
    out: list[dict[str, Any]] = resp.json()["deliveries"]
    return out


async def settle(http: Any, task_id: str, count: int) -> list[dict[str, Any]]:
    """The task's ``count`` deliveries once none is pending any more."""
    async with asyncio.timeout(30):
        while True:
            got = await deliveries(http, task_id)
            if len(got) == count and all(d["state"] != "pending" for d in got):
                return got
            await asyncio.sleep(0.1)


async def test_a_delivery_is_retried_until_acknowledged(
    data_dir: Path, fileserver: FileServer, receiver: Receiver
) -> None:
    async with live_server(make_settings(data_dir, **FAST)) as live, live.client() as http:
        body = job([fileserver.url("/size/8K/a.bin")], title="hooked")
        body["webhook"] = {"url": receiver.url, "events": ["completed"]}
        task_id = (await http.post("/api/tasks/submit", json=body)).json()["task_id"]
        [delivery] = await settle(http, task_id, 1)
    assert delivery["state"] == "delivered" and delivery["event"] == "completed"
    assert [t["status_code"] for t in delivery["tries"]] == [500, 500, 200]
    assert delivery["attempts"] == 3
    assert delivery["url"] == f"http://127.0.0.1:{receiver.port}/…"  # no path, no query
    assert [r.answered for r in receiver.got] == [500, 500, 200]
    assert all(r.verified for r in receiver.got)
    assert {r.id for r in receiver.got} == {delivery["id"]}  # one webhook-id for every try
    assert len({r.body for r in receiver.got}) == 1  # the same bytes each time
    sent = json.loads(receiver.got[0].body)
    assert sent["type"] == "task.completed"
    data = sent["data"]
    assert (data["task_id"], data["title"], data["status"]) == (task_id, "hooked", "completed")
    assert data["draft_path"] and data["progress"]["downloaded_size"] == 8 * 1024
    assert data["completed_at"] and data["created_at"] and "files" not in data


async def test_nothing_is_lost_across_a_restart_with_the_receiver_down(
    data_dir: Path, fileserver: FileServer, receiver: Receiver
) -> None:
    """Every status event of the task reaches the receiver exactly once, acknowledged,
    though the receiver was down while the task ran and the server restarted meanwhile."""
    receiver.script = []
    await receiver.stop()
    events = ["pending", "downloading", "processing", "completed"]
    settings = make_settings(data_dir, webhooks=[{"url": receiver.url, "events": events}], **FAST)
    async with live_server(settings) as live, live.client() as http:
        body = job([fileserver.url("/slow/256K/r.bin?rate=512K")])
        task_id = (await http.post("/api/tasks/submit", json=body)).json()["task_id"]
        async with asyncio.timeout(30):
            while True:  # every event tried at least once, none acknowledged
                got = await deliveries(http, task_id)
                if len(got) == 4 and all(d["attempts"] >= 1 for d in got):
                    break
                await asyncio.sleep(0.1)
        assert {d["state"] for d in got} == {"pending"}
        assert all(d["tries"][0]["status_code"] is None for d in got)  # refused connections
    await receiver.start()
    async with live_server(settings) as live, live.client() as http:
        done = await settle(http, task_id, 4)
    assert [d["event"] for d in done] == events
    assert {d["state"] for d in done} == {"delivered"}
    acked = Counter(r.id for r in receiver.acknowledged())
    assert acked == Counter({d["id"]: 1 for d in done})
    assert sorted(json.loads(r.body)["data"]["status"] for r in receiver.acknowledged()) == sorted(
        events
    )


async def test_gone_stops_and_other_codes_are_retried(
    data_dir: Path, fileserver: FileServer, receiver: Receiver
) -> None:
    receiver.script = [410]
    async with live_server(make_settings(data_dir, **FAST)) as live, live.client() as http:
        body = job([fileserver.url("/status/404/x.bin")])
        body["webhook"] = {"url": receiver.url, "events": ["failed", "completed"]}
        task_id = (await http.post("/api/tasks/submit", json=body)).json()["task_id"]
        [delivery] = await settle(http, task_id, 1)
        assert delivery["event"] == "failed" and delivery["state"] == "stopped"
        assert [t["status_code"] for t in delivery["tries"]] == [410]
        await asyncio.sleep(0.6)  # past the first retry's delay: none comes
        assert len(receiver.got) == 1


async def test_a_delivery_never_acknowledged_fails_after_retry_for(
    data_dir: Path, fileserver: FileServer, receiver: Receiver
) -> None:
    receiver.script = [503] * 100
    settings = make_settings(data_dir, **FAST, webhook_retry_for=1.0)
    async with live_server(settings) as live, live.client() as http:
        body = job([fileserver.url("/size/1K/f.bin")])
        body["webhook"] = {"url": receiver.url}  # the final states by default
        task_id = (await http.post("/api/tasks/submit", json=body)).json()["task_id"]
        [delivery] = await settle(http, task_id, 1)
    assert delivery["state"] == "failed" and delivery["event"] == "completed"
    # 0.2, then 0.4 s after the first: the next (0.8 s later) would be past 1 s (on a slow
    # machine the third may already be past it).
    statuses = [t["status_code"] for t in delivery["tries"]]
    assert statuses in ([503, 503], [503, 503, 503])
    assert len(receiver.got) == len(statuses)


async def test_webhooks_are_checked_at_submit(data_dir: Path, fileserver: FileServer) -> None:
    async with live_server(make_settings(data_dir)) as live, live.client() as http:
        aria2_port = live.services.manager.port
        api_port = live.services.settings.port  # what the policy knows as ours
        cases = [
            ({"url": "ftp://127.0.0.1/x"}, ["webhook", "url"], "only http and https"),
            ({"url": f"http://localhost:{api_port}/x"}, ["webhook", "url"], "draftdl"),
            ({"url": f"http://127.0.0.1:{aria2_port}/jsonrpc"}, ["webhook", "url"], "aria2"),
            ({"url": "http://127.0.0.1:9/x", "events": ["done"]}, ["webhook", "events", 0], ""),
            ({"url": "http://127.0.0.1:9/x", "events": []}, ["webhook", "events"], "non-empty"),
            ({"url": "http://127.0.0.1:9/x", "secret": "x"}, ["webhook", "secret"], "unknown"),
            ("http://127.0.0.1:9/x", ["webhook"], "must be an object"),
        ]
        for hook, loc, words in cases:
            body = job([fileserver.url("/size/1K/v.bin")])
            body["webhook"] = hook
            resp = await http.post("/api/tasks/submit", json=body)
            assert resp.status_code == 422, hook
            [problem] = resp.json()["detail"]
            assert problem["loc"] == ["body", *loc], (hook, problem)
            assert words.lower() in problem["msg"].lower(), (hook, problem)
        assert (await http.get("/api/tasks")).json()["total"] == 0
        assert (await http.get("/api/tasks/nope/webhooks")).status_code == 404


async def test_the_secret_is_made_once_and_kept(data_dir: Path, fileserver: FileServer) -> None:
    settings = make_settings(data_dir, webhook_retry_base=0.2)
    async with live_server(settings):
        pass
    path = data_dir / "webhook_secret"
    secret = path.read_text().strip()
    assert check_secret(secret) == secret
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    receiver = Receiver(secret)
    await receiver.start()
    try:
        async with live_server(settings) as live, live.client() as http:  # a restart: same
            body = job([fileserver.url("/size/1K/k.bin")])
            body["webhook"] = {"url": receiver.url}
            task_id = (await http.post("/api/tasks/submit", json=body)).json()["task_id"]
            await settle(http, task_id, 1)
    finally:
        await receiver.stop()
    assert [r.verified for r in receiver.got] == [True]
    assert path.read_text().strip() == secret


async def test_a_receiver_that_does_not_answer_holds_up_no_other(
    data_dir: Path, fileserver: FileServer, receiver: Receiver
) -> None:
    receiver.script = []
    silent = Receiver(SECRET, hang=3.0)
    await silent.start()
    try:
        settings = make_settings(data_dir, **FAST, webhook_timeout=1.0, webhook_retry_for=1.5)
        async with live_server(settings) as live, live.client() as http:
            ids = []
            for target in (silent, receiver):
                body = job([fileserver.url(f"/size/1K/{target.port}.bin")])
                body["webhook"] = {"url": target.url, "events": ["completed"]}
                ids.append((await http.post("/api/tasks/submit", json=body)).json()["task_id"])
            [good] = await settle(http, ids[1], 1)
            assert good["state"] == "delivered" and good["attempts"] == 1
            [hung] = await settle(http, ids[0], 1)
    finally:
        await silent.stop()
    assert hung["state"] == "failed"
    assert {t["error"] for t in hung["tries"]} == {"no answer within 1 s"}
    assert all(t["status_code"] is None for t in hung["tries"])
