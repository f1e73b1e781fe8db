"""The REST surface: reading, listing, filtering, unknown ids, health, auth, OpenAPI."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from fileserver import FileServer
from servers import Service, job, make_settings, running_service


async def test_unknown_task_is_404(service: Service) -> None:
    for method, url in (("GET", "/api/tasks/nope"), ("POST", "/api/tasks/nope/cancel")):
        resp = await service.http.request(method, url)
        assert resp.status_code == 404
        assert "nope" in resp.json()["detail"]


async def test_list_filters_and_pages_newest_first(
    service: Service, fileserver: FileServer
) -> None:
    ids = [await service.submit(job([fileserver.url(f"/size/1K/l{i}.bin")])) for i in range(3)]
    bad = await service.submit(job([fileserver.url("/status/404/x.bin")]))
    for task_id in [*ids, bad]:
        await service.wait_final(task_id)
    everything = (await service.http.get("/api/tasks")).json()
    assert everything["total"] == 4
    assert [t["task_id"] for t in everything["tasks"]] == [bad, *reversed(ids)]
    assert "files" not in everything["tasks"][0]
    failed = (await service.http.get("/api/tasks", params={"status": "failed"})).json()
    assert [t["task_id"] for t in failed["tasks"]] == [bad]
    page = (await service.http.get("/api/tasks", params={"limit": 2, "offset": 1})).json()
    assert [t["task_id"] for t in page["tasks"]] == [ids[2], ids[1]]
    assert page["limit"] == 2 and page["offset"] == 1
    for params in ({"limit": 0}, {"limit": 101}, {"status": "bogus"}, {"offset": -1}):
        assert (await service.http.get("/api/tasks", params=params)).status_code == 422


async def test_a_task_without_its_files(service: Service, fileserver: FileServer) -> None:
    """files=false: the same task as with its files, less the list; progress still counts."""
    urls = [fileserver.url(f"/size/1K/w{i}.bin") for i in range(3)]
    task_id = await service.submit(job(urls))
    await service.wait_final(task_id)
    whole = (await service.http.get(f"/api/tasks/{task_id}")).json()
    light = await service.http.get(f"/api/tasks/{task_id}", params={"files": "false"})
    assert light.status_code == 200
    assert len(whole.pop("files")) == 3
    assert light.json() == whole
    assert light.json()["progress"]["completed_files"] == 3
    explicit = await service.http.get(f"/api/tasks/{task_id}", params={"files": "true"})
    assert len(explicit.json()["files"]) == 3
    bad = await service.http.get(f"/api/tasks/{task_id}", params={"files": "some"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "files"]


async def test_health_reports_aria2(service: Service) -> None:
    health = (await service.http.get("/api/health")).json()
    assert health["status"] == "ok"
    aria2 = health["aria2"]
    assert aria2["running"] is True and aria2["version"].startswith("1.")
    assert aria2["rpc_url"].startswith("http://127.0.0.1:")
    secret = service.services.manager.get_rpc_secret()
    assert len(secret) >= 32 and secret not in str(health)


async def test_openapi_is_served(service: Service) -> None:
    spec = (await service.http.get("/openapi.json")).json()
    assert "/api/tasks/submit" in spec["paths"]
    assert (await service.http.get("/docs")).status_code == 200


def test_open_bind_needs_a_token(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="DRAFTDL_API_TOKEN"):
        make_settings(tmp_path, host="0.0.0.0")
    with pytest.raises(ValidationError, match="DRAFTDL_API_TOKEN"):
        make_settings(tmp_path, host="0.0.0.0", api_token="")  # empty is no token
    assert make_settings(tmp_path, host="0.0.0.0", api_token="t" * 20).api_token is not None
    assert make_settings(tmp_path, host="::1").host == "::1"


async def test_token_is_checked_when_set(data_dir: Path) -> None:
    async with running_service(make_settings(data_dir, api_token="s3cret-token")) as svc:
        assert (await svc.http.get("/api/tasks")).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await svc.http.get("/api/health", headers=wrong)).status_code == 401
        right = {"Authorization": "Bearer s3cret-token"}
        assert (await svc.http.get("/api/tasks", headers=right)).status_code == 200


async def test_secret_file_is_private_and_never_logged(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    async with running_service(make_settings(data_dir)) as svc:
        secret = svc.services.manager.get_rpc_secret()
        secret_file = data_dir / "aria2" / "rpc-secret"
        conf = data_dir / "aria2" / "aria2.conf"
        assert secret_file.stat().st_mode & 0o777 == 0o600
        assert conf.stat().st_mode & 0o777 == 0o600
        assert "rpc-listen-all=false" in conf.read_text()
        # The RPC really needs the secret.
        async with httpx.AsyncClient() as raw:
            resp = await raw.post(
                svc.services.manager.get_rpc_url() or "",
                json={"jsonrpc": "2.0", "id": 1, "method": "aria2.getVersion"},
            )
            assert resp.status_code == 400
    assert secret not in caplog.text
    # Same install, same secret.
    async with running_service(make_settings(data_dir)) as svc:
        assert svc.services.manager.get_rpc_secret() == secret


async def test_cleanup_removes_old_finished_tasks(service: Service, fileserver: FileServer) -> None:
    task_id = await service.submit(job([fileserver.url("/size/1K/old.bin")]))
    await service.wait_final(task_id)
    folder = service.services.settings.downloads_dir / task_id
    assert folder.is_dir()
    assert await service.services.queue.cleanup_old_tasks(days=1) == []
    assert await service.services.queue.cleanup_old_tasks(days=0) == [task_id]
    assert not folder.exists()
    assert (await service.http.get(f"/api/tasks/{task_id}")).status_code == 404


async def test_a_busy_database_answers_503(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    async def locked(*args: object, **kwargs: object) -> None:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(service.services.db, "load_task", locked)
    resp = await service.http.get("/api/tasks/some-id")
    assert resp.status_code == 503 and "database" in resp.json()["detail"]
