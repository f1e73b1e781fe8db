"""What the original server's clients rely on: ``/health``, and every error as one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from servers import job, live_server, make_settings


async def test_health_answers_at_the_bare_path_too(data_dir: Path) -> None:
    async with live_server(make_settings(data_dir, api_token="t0ken")) as live:
        async with live.client() as http:
            assert (await http.get("/health")).status_code == 401  # a credential test can fail
        async with live.client(Authorization="Bearer t0ken") as http:
            bare, api = await http.get("/health"), await http.get("/api/health")
            assert bare.status_code == api.status_code == 200
            assert bare.json()["status"] == api.json()["status"] == "ok"
            doc = (await http.get("/openapi.json")).json()
            assert "/health" not in doc["paths"]  # one path prefix for importers
            assert all(path.startswith("/api/") for path in doc["paths"])


async def test_every_error_has_a_one_line_message(data_dir: Path) -> None:
    async with live_server(make_settings(data_dir, api_token="t0ken")) as live:
        async with live.client(Authorization="Bearer t0ken") as http:
            bad = job(["http://127.0.0.1:1/a.mp4"])
            bad["materials"][0]["path"] = 5
            del bad["ruleGroup"]
            resp = await http.post("/api/tasks/submit", json=bad)
            assert resp.status_code == 422
            body = resp.json()
            assert isinstance(body["detail"], list) and len(body["detail"]) == 2
            first, second = body["detail"]
            assert (
                body["message"]
                == f"{first['path']}: {first['msg']}; {second['path']}: " + (second["msg"])
            )
            assert "\n" not in body["message"]

            resp = await http.get("/api/tasks", params={"limit": "0"})
            assert resp.status_code == 422
            assert resp.json()["message"].startswith("query.limit: ")

            resp = await http.get("/api/tasks/nope")
            assert resp.status_code == 404
            assert resp.json()["message"] == resp.json()["detail"]

            resp = await http.post("/api/tasks/submit", content=b"{}")  # no Content-Type
            assert resp.status_code == 415
            assert resp.json()["message"].startswith("the body must be JSON")

            resp = await http.get("/api/health", headers={"Host": "evil.example"})
            assert resp.status_code == 400
            assert "evil.example" in resp.json()["message"]
        async with live.client() as http:
            resp = await http.get("/api/tasks")
            assert resp.status_code == 401
            assert resp.json()["message"] == resp.json()["detail"]
            assert resp.headers["www-authenticate"] == "Bearer"


async def test_many_problems_are_summed_up(data_dir: Path) -> None:
    async with live_server(make_settings(data_dir)) as live, live.client() as http:
        bad = job([f"ftp://127.0.0.1/{n}.mp4" for n in range(6)])
        resp = await http.post("/api/tasks/submit", json=bad)
        assert resp.status_code == 422
        body = resp.json()
        assert len(body["detail"]) == 6
        assert body["message"].endswith("(and 3 more)")
        assert body["message"].count("materials[") == 3


async def test_the_document_names_the_public_url_for_importers(data_dir: Path) -> None:
    settings = make_settings(data_dir, public_url="https://drafts.example.com/")
    async with live_server(settings) as live, live.client() as http:
        doc = (await http.get("/openapi.json")).json()
    assert doc["servers"] == [{"url": "https://drafts.example.com"}]
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for path, item in doc["paths"].items():
        assert path.startswith("/api/"), path
        for method, op in item.items():
            ok = op["responses"]["200"]
            assert ok.get("content"), (method, path)  # a typed answer for every operation
            for content in ok["content"].values():
                assert content.get("schema"), (method, path)


def test_a_public_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="only http and https URLs can be the public_url"):
        make_settings(Path("unused"), public_url="ftp://x")


def test_operations_are_named_for_importers(tmp_path: Path) -> None:
    from draftdl.app import create_app

    doc = create_app(make_settings(tmp_path)).openapi()
    ids = {op["operationId"] for item in doc["paths"].values() for op in item.values()}
    assert {"submit", "get_task", "list_tasks", "cancel_task", "health"} <= ids
