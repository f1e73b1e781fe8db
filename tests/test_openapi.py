"""The API as documented: every route's answers in OpenAPI, JSON bodies only, bounded query
parameters, and a health answer that tells the truth (503 when degraded)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

from draftdl.api import control, drafts, tasks
from draftdl.api import health as health_api
from draftdl.api import webhooks as webhooks_api
from draftdl.api.schemas import ErrorBody, Health, JobRequest
from draftdl.api.tasks import JOB_EXAMPLE
from draftdl.app import create_app
from draftdl.events import sse
from draftdl.model.states import FileStatus, TaskStatus
from draftdl.model.task import FileState, TaskState
from fileserver import FileServer
from servers import EXAMPLES, Service, job, make_settings, running_service

JSON_ANSWERS = {
    ("post", "/api/tasks/submit"): "SubmitResponse",
    ("get", "/api/tasks/{task_id}"): "TaskAnswer",
    ("get", "/api/tasks"): "TaskList",
    ("post", "/api/tasks/{task_id}/cancel"): "CancelResponse",
    ("get", "/api/health"): "Health",
    ("post", "/api/tasks/{task_id}/pause"): "ControlResponse",
    ("post", "/api/tasks/{task_id}/resume"): "ControlResponse",
    ("patch", "/api/tasks/{task_id}"): "TaskView",
    ("post", "/api/tasks/{task_id}/retry"): "RetryResponse",
    ("post", "/api/tasks/{task_id}/regenerate"): "ControlResponse",
    ("delete", "/api/tasks/{task_id}"): "DeleteResponse",
    ("get", "/api/settings/limits"): "Limits",
    ("put", "/api/settings/limits"): "Limits",
    ("get", "/api/tasks/{task_id}/webhooks"): "WebhookDeliveries",
    ("get", "/api/tasks/submit_with_url"): "SubmitResponse",
}
OTHER_ANSWERS = {
    ("get", "/api/tasks/{task_id}/draft.zip"): "application/zip",
    ("get", "/api/tasks/{task_id}/progress/stream"): "text/event-stream",
    ("get", "/api/tasks/stream"): "text/event-stream",
}
ERRORS = {
    ("post", "/api/tasks/submit"): {"409", "413", "415", "422", "503"},
    ("get", "/api/tasks/{task_id}"): {"404", "422", "503"},
    ("get", "/api/tasks"): {"422", "503"},
    ("post", "/api/tasks/{task_id}/cancel"): {"404", "409", "422", "503"},
    ("get", "/api/tasks/{task_id}/draft.zip"): {"404", "409", "416", "422", "503"},
    ("get", "/api/tasks/{task_id}/progress/stream"): {"404", "422", "503"},
    ("get", "/api/tasks/stream"): {"503"},
    ("get", "/api/tasks/{task_id}/webhooks"): {"404", "422", "503"},
    ("get", "/api/tasks/submit_with_url"): {"403", "409", "413", "422", "503"},
    ("get", "/api/health"): set(),
    ("post", "/api/tasks/{task_id}/pause"): {"404", "409", "422", "503"},
    ("post", "/api/tasks/{task_id}/resume"): {"404", "409", "422", "503"},
    ("patch", "/api/tasks/{task_id}"): {"404", "409", "415", "422", "503"},
    ("post", "/api/tasks/{task_id}/retry"): {"404", "409", "415", "422", "503"},
    ("post", "/api/tasks/{task_id}/regenerate"): {"404", "409", "422", "503"},
    ("delete", "/api/tasks/{task_id}"): {"404", "422", "503"},
    ("get", "/api/settings/limits"): set(),
    ("put", "/api/settings/limits"): {"415", "422", "503"},
}
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def openapi(tmp_path: Path, **settings: Any) -> dict[str, Any]:
    doc: dict[str, Any] = create_app(make_settings(tmp_path, **settings)).openapi()
    return doc


def operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m, p): op for p, ops in doc["paths"].items() for m, op in ops.items()}


def test_every_route_declares_its_answer(tmp_path: Path) -> None:
    doc = openapi(tmp_path)
    routes = {
        (method.lower(), r.path)
        for router in (
            tasks.router,
            drafts.router,
            sse.router,
            health_api.router,
            control.router,
            control.limits_router,
            webhooks_api.router,
        )
        for r in router.routes
        if isinstance(r, APIRoute)
        for method in r.methods
    }
    ops = operations(doc)
    assert set(ops) == routes == set(JSON_ANSWERS) | set(OTHER_ANSWERS)
    for key, model in JSON_ANSWERS.items():
        content = ops[key]["responses"]["200"]["content"]
        assert content == {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}
        }
    for key, media_type in OTHER_ANSWERS.items():
        assert list(ops[key]["responses"]["200"]["content"]) == [media_type], key
    schemas = doc["components"]["schemas"]
    assert "files" not in schemas["TaskSummary"]["properties"]
    assert schemas["TaskAnswer"]["anyOf"] == [  # ?files=false: the task less its files
        {"$ref": "#/components/schemas/TaskView"},
        {"$ref": "#/components/schemas/TaskSummary"},
    ]
    assert schemas["TaskList"]["properties"]["tasks"]["items"] == {
        "$ref": "#/components/schemas/TaskSummary"
    }
    event = ops[("get", "/api/tasks/{task_id}/progress/stream")]["responses"]["200"]
    data = event["content"]["text/event-stream"]["schema"]["properties"]["data"]
    assert data["contentSchema"] == {"$ref": "#/components/schemas/TaskEvent"}
    assert "TaskEvent" in schemas


def test_every_route_declares_its_errors(tmp_path: Path) -> None:
    for token, refused in ((None, {"403"}), ("s3cret-token", {"401", "403"})):
        ops = operations(openapi(tmp_path, api_token=token))
        for key, codes in ERRORS.items():
            declared = {c for c in ops[key]["responses"] if c.startswith(("4", "5"))}
            expected = codes | refused | ({"503"} if key == ("get", "/api/health") else set())
            assert declared == expected, (key, token)
            for code in codes | refused:
                content = ops[key]["responses"][code]["content"]
                assert content == {"application/json": {"schema": ERROR_REF}}, (key, code)
        health = ops[("get", "/api/health")]["responses"]["503"]["content"]
        assert health == {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}


def test_submit_declares_the_job_schema_and_its_example(tmp_path: Path) -> None:
    doc = openapi(tmp_path)
    body = operations(doc)[("post", "/api/tasks/submit")]["requestBody"]
    assert body["required"] is True
    content = body["content"]["application/json"]
    assert content["schema"] == {"$ref": "#/components/schemas/JobRequest"}
    assert content["example"] == JOB_EXAMPLE
    job_schema = doc["components"]["schemas"]["JobRequest"]
    assert job_schema["required"] == ["ruleGroup"]
    assert job_schema["additionalProperties"] is True
    assert set(job_schema["properties"]) == {
        "ruleGroup",
        "materials",
        "testData",
        "draft_config",
        "priority",
        "max_download_limit",
        "download_options",
        "segment_styles",
        "raw_segments",
        "raw_materials",
        "canvas_width",
        "canvas_height",
        "fps",
        "deadline",
        "webhook",
    }
    refs = json.dumps(doc)
    for name in ("JobRuleGroup", "JobMaterial", "JobTestData", "JobDraftConfig"):
        assert f'"#/components/schemas/{name}"' in refs and name in doc["components"]["schemas"]


def test_the_job_schema_accepts_every_valid_example() -> None:
    """The schema describes what clients send: it is not stricter than the service."""
    valid = [p for p in sorted(EXAMPLES.glob("*.json")) if not p.name.startswith("invalid")]
    assert len(valid) >= 4
    for path in valid:
        JobRequest.model_validate_json(path.read_text(encoding="utf-8"))
    JobRequest.model_validate(JOB_EXAMPLE)


def test_statuses_come_from_the_enums(tmp_path: Path) -> None:
    schemas = openapi(tmp_path)["components"]["schemas"]
    assert schemas["TaskStatus"]["enum"] == [s.value for s in TaskStatus]
    assert schemas["FileStatus"]["enum"] == [s.value for s in FileStatus]


def test_every_key_of_the_views_is_declared(tmp_path: Path) -> None:
    schemas = openapi(tmp_path)["components"]["schemas"]
    now = datetime(2024, 1, 1)
    task = TaskState("t", 1, TaskStatus.PENDING, 0, "{}", now, now)
    task.files = [FileState(0, "http://x/a", "a", "/d/a", "0" * 16)]
    view = task.view()
    assert set(schemas["TaskView"]["properties"]) == set(view)
    assert set(schemas["TaskSummary"]["properties"]) == set(task.view(with_files=False))
    assert set(schemas["ProgressInfo"]["properties"]) == set(view["progress"])
    assert set(schemas["FileInfo"]["properties"]) == set(view["files"][0])
    for name in ("TaskView", "TaskSummary", "ProgressInfo", "FileInfo"):
        assert set(schemas[name]["required"]) == set(schemas[name]["properties"]), name
        assert schemas[name]["additionalProperties"] is True, name


async def test_answers_are_the_views_unchanged(service: Service, fileserver: FileServer) -> None:
    task_id = await service.submit(job([fileserver.url("/size/1K/same.bin")]))
    await service.wait_final(task_id)
    task = await service.services.queue.get_task(task_id)
    resp = await service.http.get(f"/api/tasks/{task_id}")
    assert resp.json() == json.loads(json.dumps(task.view()))
    listing = (await service.http.get("/api/tasks")).json()
    assert listing["tasks"] == [json.loads(json.dumps(task.view(with_files=False)))]


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/json; charset=latin-1",
        "application/jsonx",
    ],
)
async def test_submit_takes_only_json(
    service: Service, fileserver: FileServer, content_type: str | None
) -> None:
    body = json.dumps(job([fileserver.url("/size/1K/x.bin")])).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    resp = await service.http.post("/api/tasks/submit", content=body, headers=headers)
    assert resp.status_code == 415, resp.text
    detail = resp.json()["detail"]
    assert "application/json" in detail
    assert (repr(content_type) if content_type else "given: none") in detail
    assert (await service.http.get("/api/tasks")).json()["total"] == 0
    assert fileserver.bytes_served("/size/1K/x.bin") == 0


async def test_json_with_a_charset_and_a_bodiless_cancel_are_accepted(
    service: Service, fileserver: FileServer
) -> None:
    body = json.dumps(job([fileserver.url("/size/1K/x.bin")])).encode()
    for content_type in ("application/json; charset=UTF-8", "Application/JSON;charset=utf-8"):
        resp = await service.http.post(
            "/api/tasks/submit", content=body, headers={"Content-Type": content_type}
        )
        assert resp.status_code == 200, resp.text
    task_id = resp.json()["task_id"]
    resp = await service.http.post(f"/api/tasks/{task_id}/cancel")  # no body, no content type
    assert resp.status_code in (200, 409), resp.text
    assert "content-type" not in resp.request.headers


async def test_query_parameters_are_bounded(service: Service) -> None:
    for params, status in (
        ({"offset": 2**63}, 422),
        ({"offset": 10_000_001}, 422),
        ({"offset": 10_000_000}, 200),
        ({"limit": 101}, 422),
        ({"limit": 100}, 200),
    ):
        resp = await service.http.get("/api/tasks", params=params)
        assert resp.status_code == status, (params, resp.text)
        if status == 422:
            ErrorBody.model_validate(resp.json())
    long_root = await service.http.get("/api/tasks/nope/draft.zip", params={"root": "x" * 1025})
    assert long_root.status_code == 422


async def test_both_kinds_of_422_fit_the_error_body(service: Service) -> None:
    ours = await service.http.post("/api/tasks/submit", json={"materials": [{"id": "m"}]})
    theirs = await service.http.get("/api/tasks", params={"limit": "many"})
    for resp in (ours, theirs):
        assert resp.status_code == 422
        body = ErrorBody.model_validate(resp.json())
        assert isinstance(body.detail, list) and body.detail
    assert ours.json()["detail"][0]["path"] == "ruleGroup"
    assert ours.json()["detail"][0]["loc"] == ["body", "ruleGroup"]


# -- health --------------------------------------------------------------------------------


async def test_health_ok_checks_database_and_disk(service: Service) -> None:
    resp = await service.http.get("/api/health")
    assert resp.status_code == 200
    health = resp.json()
    Health.model_validate(health)
    assert health["status"] == "ok" and health["problems"] == []
    assert health["database"] == {"ok": True, "error": None}
    disk = health["disk"]
    assert disk["ok"] is True and disk["min_free_bytes"] == 256 * 1024 * 1024
    assert disk["free_bytes"] > disk["min_free_bytes"]
    assert disk["path"] == str(service.services.settings.downloads_dir.resolve())
    for key in ("aria2", "drafts", "tasks", "monitor", "version"):
        assert key in health


async def test_health_is_503_when_the_disk_is_full(data_dir: Path) -> None:
    async with running_service(make_settings(data_dir, min_free_space="999999999G")) as svc:
        resp = await svc.http.get("/api/health")
    assert resp.status_code == 503
    health = resp.json()
    Health.model_validate(health)
    assert health["status"] == "degraded"
    assert health["disk"]["ok"] is False and health["database"]["ok"] is True
    assert health["disk"]["min_free_bytes"] == 999999999 * 1024**3
    assert len(health["problems"]) == 1 and "min_free_space (999999999G)" in health["problems"][0]
    assert health["aria2"]["running"] is True


async def test_health_is_503_when_the_database_fails(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    async def broken() -> None:
        raise OperationalError("SELECT 1", {}, Exception("disk I/O error"))

    monkeypatch.setattr(service.services.db, "ping", broken)
    resp = await service.http.get("/api/health")
    assert resp.status_code == 503
    health = resp.json()
    assert health["status"] == "degraded" and health["database"]["ok"] is False
    assert "disk I/O error" in health["database"]["error"]
    assert health["problems"] == [f"the database does not answer: {health['database']['error']}"]


async def test_health_does_not_wait_for_a_hung_database(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def hung() -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr(service.services.db, "ping", hung)
    async with asyncio.timeout(5):
        resp = await service.http.get("/api/health")
    assert resp.status_code == 503
    assert resp.json()["database"] == {"ok": False, "error": "no answer within 2 s"}
