"""Aria2Client against a real aria2c, and against injected transport faults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from draftdl.aria2.models import AddRequest, StatusBook
from draftdl.aria2.process import Aria2Manager
from draftdl.aria2.rpc import Aria2Client
from draftdl.errors import Aria2RPCError, Aria2Unavailable
from fileserver import FileServer
from servers import job, make_settings, running_service


@pytest.fixture
async def aria2(data_dir: Path) -> AsyncIterator[Aria2Manager]:
    client = Aria2Client()
    manager = Aria2Manager(make_settings(data_dir), client)
    assert await manager.start()
    try:
        yield manager
    finally:
        await manager.stop()
        await client.aclose()


async def test_batch_add_and_status_in_one_request(
    aria2: Aria2Manager, fileserver: FileServer, tmp_path: Path
) -> None:
    client = aria2.client
    before = client.work_requests
    requests = [
        AddRequest(f"{i:016x}", fileserver.url(f"/size/4K/b{i}.bin"), str(tmp_path), f"b{i}.bin")
        for i in range(1, 6)
    ]
    assert await client.add_batch_downloads(requests) == [r.gid for r in requests]
    assert client.work_requests == before + 1
    # Adding the same gid again counts as added (aria2 holds it), not as an error...
    assert await client.add_batch_downloads(requests[:1]) == [requests[0].gid]
    # ...while a URL aria2 cannot use is refused with the same words, and stays an error.
    bad = AddRequest("00000000000000ff", "http://127.0.0.1:99999/x", str(tmp_path), "x.bin")
    (refused,) = await client.add_batch_downloads([bad])
    assert isinstance(refused, Aria2RPCError)
    mark = client.work_requests
    statuses = await client.get_batch_progress()
    assert client.work_requests == mark + 1
    assert {r.gid for r in requests} <= set(statuses)


async def test_rpc_errors_and_wrong_secret(aria2: Aria2Manager) -> None:
    with pytest.raises(Aria2RPCError) as info:
        await aria2.client.call("aria2.tellStatus", "ffffffffffffffff")
    assert "not found" in info.value.message
    intruder = Aria2Client()
    intruder.set_endpoint(aria2.get_rpc_url() or "", "wrong-secret")
    try:
        with pytest.raises(Aria2RPCError, match="Unauthorized"):
            await intruder.get_version()
    finally:
        await intruder.aclose()


async def test_transport_faults_map_to_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>bad gateway</html>")

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    for handler, words in ((refuse, "unreachable"), (garbage, "502"), (slow, "timed out")):
        client = Aria2Client(transport=httpx.MockTransport(handler))
        client.set_endpoint("http://127.0.0.1:1/jsonrpc", "s")
        with pytest.raises(Aria2Unavailable, match=words):
            await client.get_version()
        await client.aclose()
    idle = Aria2Client()
    with pytest.raises(Aria2Unavailable, match="not running"):
        await idle.get_version()
    await idle.aclose()


async def test_secret_rides_inside_multicall_entries() -> None:
    seen: list[dict[str, object]] = []

    def record(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        return httpx.Response(200, json={"id": body["id"], "result": [[[]], [[]], [[]]]})

    client = Aria2Client(transport=httpx.MockTransport(record))
    client.set_endpoint("http://127.0.0.1:1/jsonrpc", "s3")
    assert await client.get_batch_progress() == {}
    await client.aclose()
    (body,) = seen
    assert body["method"] == "system.multicall"
    calls = body["params"][0]  # type: ignore[index]
    assert all(c["params"][0] == "token:s3" for c in calls)
    assert [c["methodName"] for c in calls] == [
        "aria2.tellActive",
        "aria2.tellWaiting",
        "aria2.tellStopped",
    ]


async def test_remote_mode_uses_an_aria2c_we_do_not_own(
    aria2: Aria2Manager, fileserver: FileServer, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path / "remote",
        aria2_rpc_url=aria2.get_rpc_url(),
        aria2_rpc_secret=aria2.get_rpc_secret(),
    )
    async with running_service(settings) as svc:
        health = (await svc.http.get("/api/health")).json()["aria2"]
        assert health["managed"] is False and health["running"] is True
        task = await svc.wait_final(await svc.submit(job([fileserver.url("/size/8K/r.bin")])))
        assert task["status"] == "completed"
    # Leaving did not stop someone else's aria2c.
    assert (await aria2.client.get_version())["version"]


async def test_config_json_sets_aria2c_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"aria2c_path": "/opt/x/aria2c"}))
    monkeypatch.chdir(tmp_path)
    assert make_settings(tmp_path / "d").aria2c_path == "/opt/x/aria2c"


async def test_remote_mode_removes_a_failed_cancel_later_and_leaves_others_alone(
    aria2: Aria2Manager, fileserver: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from servers import until

    theirs = AddRequest("0000000000000abc", fileserver.url("/slow/4M/t.bin?rate=64K"),
                        str(tmp_path), "t.bin")  # fmt: skip
    await aria2.client.add_batch_downloads([theirs])
    settings = make_settings(
        tmp_path / "remote",
        aria2_rpc_url=aria2.get_rpc_url(),
        aria2_rpc_secret=aria2.get_rpc_secret(),
    )
    async with running_service(settings) as svc:
        monitor = svc.services.queue.monitor
        task_id = await svc.submit(job([fileserver.url("/slow/4M/mine.bin?rate=64K")]))
        await svc.wait_task(task_id, lambda t: t["progress"]["downloaded_size"] > 0)
        gid = svc.services.queue.live[task_id].files[0].gid
        client = svc.services.manager.client
        original = client.force_remove

        async def refuse(gids: Any) -> None:
            monkeypatch.setattr(client, "force_remove", original)
            raise Aria2Unavailable("aria2 RPC timed out")

        monkeypatch.setattr(client, "force_remove", refuse)
        await svc.services.queue.cancel_task(task_id)

        async def running() -> set[str]:
            (active,) = await aria2.client.multicall([("aria2.tellActive", [["gid"]])])
            return {d["gid"] for d in active}

        deadline = asyncio.get_running_loop().time() + 10
        while gid in await running():
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        assert theirs.gid in await running()  # someone else's download is not ours to remove
        await until(lambda: not monitor._looking, 5)
        ticks = monitor.ticks
        await asyncio.sleep(0.5)
        assert monitor.ticks == ticks  # no reading for ever once nothing is owed


async def test_a_read_parses_only_the_entries_that_changed(
    aria2: Aria2Manager, fileserver: FileServer, tmp_path: Path
) -> None:
    client = aria2.client
    held = [
        AddRequest(
            f"{i:016x}",
            fileserver.url(f"/size/4K/h{i}.bin"),
            str(tmp_path),
            f"h{i}.bin",
            paused=True,
        )
        for i in range(1, 4)
    ]
    await client.add_batch_downloads(held)
    book = StatusBook()
    first = await client.read_statuses(book, waiting=10, stopped=10)
    again = await client.read_statuses(book, waiting=10, stopped=10)
    assert set(first) == {r.gid for r in held}
    assert all(again[g] is first[g] for g in first)  # the same answer: not parsed again
    await client.batch([client.unpause_call(held[0].gid)])
    moved = await client.read_statuses(book, waiting=10, stopped=10)
    assert moved[held[0].gid] is not first[held[0].gid]
    assert moved[held[0].gid].status != "paused"
    assert [moved[r.gid] is first[r.gid] for r in held[1:]] == [True, True]
    # Another book (another reader) parses everything for itself.
    other = await client.read_statuses(StatusBook(), waiting=10, stopped=10)
    assert all(other[r.gid] is not moved[r.gid] and other[r.gid] == moved[r.gid] for r in held[1:])
