"""Host names and origins: a DNS-rebinding page or another site cannot drive the API."""

from __future__ import annotations

from pathlib import Path

import pytest
import socketio

from servers import Service, live_server, make_settings, running_service


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("evil.example", 400),
        ("evil.example:8000", 400),
        ("127.0.0.1:8000", 200),
        ("localhost", 200),
        ("app.localhost:8000", 200),
        ("127.0.0.5", 200),
        ("[::1]:8000", 200),
        ("[::ffff:10.0.0.1]", 400),
    ],
)
async def test_only_loopback_names_are_served_by_default(
    service: Service, host: str, status: int
) -> None:
    resp = await service.http.get("/api/tasks", headers={"Host": host})
    assert resp.status_code == status, resp.text
    if status == 400:
        assert "allowed_hosts" in resp.json()["detail"]


async def test_allowed_hosts_opens_names(data_dir: Path) -> None:
    async with running_service(make_settings(data_dir, allowed_hosts=["draftdl.lan"])) as svc:
        assert (
            await svc.http.get("/api/tasks", headers={"Host": "draftdl.lan"})
        ).status_code == 200
        assert (await svc.http.get("/api/tasks", headers={"Host": "other.lan"})).status_code == 400


async def test_another_site_cannot_change_anything(service: Service) -> None:
    evil = {"Origin": "http://evil.example"}
    resp = await service.http.post("/api/tasks/some-id/cancel", headers=evil)
    assert resp.status_code == 403
    assert "cors_origins" in resp.json()["detail"]
    resp = await service.http.post(
        "/api/tasks/submit", content=b"{}", headers={**evil, "Content-Type": "text/plain"}
    )
    assert resp.status_code == 403
    same = await service.http.post(
        "/api/tasks/some-id/cancel", headers={"Origin": "http://127.0.0.1"}
    )
    assert same.status_code == 404  # our own page passes
    read = await service.http.get("/api/tasks", headers=evil)
    assert read.status_code == 200  # reading is not changing, and CORS stays closed:
    assert "access-control-allow-origin" not in read.headers
    assert (await service.http.get("/api/tasks")).json()["total"] == 0


async def test_cors_origins_opens_an_origin(data_dir: Path) -> None:
    settings = make_settings(data_dir, cors_origins=["http://app.example"])
    async with running_service(settings) as svc:
        ok = await svc.http.post("/api/tasks/x/cancel", headers={"Origin": "http://app.example"})
        assert ok.status_code == 404
        assert ok.headers["access-control-allow-origin"] == "http://app.example"
        other = await svc.http.post("/api/tasks/x/cancel", headers={"Origin": "http://b.example"})
        assert other.status_code == 403


async def test_socketio_refuses_another_origin_and_another_host(data_dir: Path) -> None:
    async with live_server(make_settings(data_dir)) as server:
        for headers in ({"Origin": "http://evil.example"}, {"Host": "evil.example"}):
            client = socketio.AsyncClient(reconnection=False)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await client.connect(
                    server.base_url, transports=["websocket"], headers=headers, wait_timeout=5
                )
            await client.disconnect()
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(
            server.base_url, transports=["websocket"], headers={"Origin": server.base_url},
            wait_timeout=5,
        )  # fmt: skip
        assert client.connected
        await client.disconnect()
