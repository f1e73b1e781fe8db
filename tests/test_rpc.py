"""Aria2Client against a real aria2c, and against injected transport faults."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve

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


# -- the WebSocket the calls go over --------------------------------------------------------


async def test_calls_share_one_socket_and_get_their_own_answers(
    aria2: Aria2Manager, fileserver: FileServer, tmp_path: Path
) -> None:
    client = aria2.client
    held = [
        AddRequest(
            f"{i:016x}",
            fileserver.url("/size/4K/s.bin"),
            str(tmp_path / str(i)),
            "s.bin",
            paused=True,
        )
        for i in range(1, 41)
    ]
    await client.add_batch_downloads(held)
    answers = await asyncio.gather(
        *(client.call("aria2.tellStatus", r.gid, ["gid", "dir"]) for r in held)
    )
    assert [(a["gid"], a["dir"]) for a in answers] == [(r.gid, r.dir) for r in held]


async def test_a_closed_port_and_a_silent_one_are_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    client = Aria2Client()
    try:
        client.set_endpoint(f"http://127.0.0.1:{closed}/jsonrpc", "s")
        with pytest.raises(Aria2Unavailable, match="unreachable"):
            await client.get_version()
        with socket.socket() as silent:  # accepts the connection, never answers the handshake
            silent.bind(("127.0.0.1", 0))
            silent.listen()
            client.set_endpoint(f"http://127.0.0.1:{silent.getsockname()[1]}/jsonrpc", "s")
            with pytest.raises(Aria2Unavailable, match="timed out"):
                await client.get_version(within=0.5)
    finally:
        await client.aclose()


async def test_a_connection_lost_under_a_call_fails_it_and_the_next_call_reconnects() -> None:
    seen: list[str] = []

    async def hang_up_on_the_first(ws: ServerConnection) -> None:
        async for message in ws:
            seen.append(str(message))
            request = json.loads(message)
            if len(seen) == 1:
                await ws.close()  # mid-call: no answer comes
                return
            await ws.send(json.dumps({"id": request["id"], "jsonrpc": "2.0", "result": "ok"}))

    async with ws_serve(hang_up_on_the_first, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        client = Aria2Client()
        client.set_endpoint(f"http://127.0.0.1:{port}/jsonrpc", "s")
        try:
            with pytest.raises(Aria2Unavailable, match=r"closed|lost"):
                await client.call("aria2.getVersion", within=5)
            assert await client.call("aria2.getVersion", within=5) == "ok"
        finally:
            await client.aclose()
    assert len(seen) == 2


async def test_calls_and_notifications_never_go_through_a_proxy_from_the_environment(
    aria2: Aria2Manager, fileserver: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, "http://proxy.invalid:3128")  # the calls carry the secret
    client = Aria2Client()
    client.set_endpoint(aria2.get_rpc_url() or "", aria2.get_rpc_secret())
    heard: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    listener = asyncio.create_task(
        client.listen(lambda method, gid: heard.put_nowait((method, gid)))
    )
    try:
        assert (await client.get_version())["version"]
        async with asyncio.timeout(10):  # aria2 does not say when the listener is connected:
            for n in itertools.count(0xA0):  # a download each second until one is heard of
                gid = f"{n:016x}"
                req = AddRequest(gid, fileserver.url(f"/size/4K/p{n}.bin"), str(tmp_path), f"p{n}")
                assert await client.add_batch_downloads([req]) == [gid]
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1):
                        while await heard.get() != ("aria2.onDownloadComplete", gid):
                            pass
                        break
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await client.aclose()
