"""Submit-time validation: 422 with the JSON path of each bad field, 413 for size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from draftdl.errors import RequestRejected
from draftdl.sources import SourcePolicy
from draftdl.tasks.validation import validate_job
from servers import Service, job


def problems(body: Any) -> dict[str, str]:
    with pytest.raises(RequestRejected) as info:
        validate_job(body, max_files=10)
    return {p.path: p.msg for p in info.value.problems}


def test_finds_urls_in_every_documented_place() -> None:
    body = job(["http://h/a.mp4"])
    body["materials"][0]["media_path"] = "http://h/b.mp4"
    body["materials"][0]["material_url"] = "https://h/c.mp4"
    body["testData"] = {"items": [{"type": "clip", "data": {"path": "http://h/d.mp4"}}]}
    body["raw_materials"] = [
        {"id": "e", "category": "videos", "data": {"id": "e", "path": "http://h/e.mp4"}}
    ]
    times = {"target_timerange": {"start": 0, "duration": 1}, "source_timerange": None}
    body["raw_segments"] = [
        {"track_id": "v", "track_type": "video", "segment": {"id": "s", "material_id": "e",
         **times, "source_timerange": {"start": 0, "duration": 1}}},
        {"track_id": "a", "track_type": "audio", "material": {"id": "f", "path": "http://h/f.mp3"},
         "segment": {"id": "t", "material_id": "f", **times,
                     "source_timerange": {"start": 0, "duration": 1}}},
    ]  # fmt: skip
    body["extra_materials"] = {"stickers": [{"material_url": "http://h/g.png"}]}
    body["testData"]["items"].append({"type": "subtitle", "data": {"srt": "http://h/h.srt"}})
    found = validate_job(body, max_files=10).urls
    assert [u.url.rsplit("/", 1)[1] for u in found] == [
        "a.mp4", "b.mp4", "c.mp4", "d.mp4", "h.srt", "e.mp4", "f.mp3", "g.png",
    ]  # fmt: skip
    assert found[5].loc == ("raw_materials", 0, "data", "path")


def test_materials_by_category_are_accepted() -> None:
    body = job([])
    body["materials"] = {"videos": [{"id": "m1", "path": "http://h/v"}], "audios": []}
    body["ruleGroup"]["rules"][0]["material_ids"] = ["m1"]
    refs = validate_job(body, max_files=10).urls
    assert refs[0].kind == "video" and refs[0].loc == ("materials", "videos", 0, "path")


def test_every_problem_is_reported_at_once() -> None:
    body: dict[str, Any] = {
        "ruleGroup": {"rules": [{"type": "", "material_ids": ["nope"]}]},
        "materials": [{"id": "m1", "path": "file:///etc/passwd"}, {"path": "http://h/x"}],
        "testData": {"items": [{"type": "zzz"}]},
        "priority": "high",
        "max_download_limit": "fast",
        "raw_segments": [{"material": {"path": "gopher://h/x"}}],
    }
    found = problems(body)
    assert set(found) == {
        "materials[0].path",
        "materials[1].id",
        "ruleGroup.rules[0].type",
        "ruleGroup.rules[0].material_ids[0]",
        "testData.items[0].type",
        "priority",
        "max_download_limit",
        "raw_segments[0].material.path",
    }
    assert "'file'" in found["materials[0].path"]


def test_missing_rule_group_and_wrong_shapes() -> None:
    assert problems({"materials": "x"}) == {
        "ruleGroup": "field required",
        "materials": "must be a list, or an object of lists by category",
    }
    assert problems([]) == {"body": "the body must be a JSON object"}


def test_local_paths_must_exist_inside_the_allowed_folders(tmp_path: Path) -> None:
    real = tmp_path / "clip.mp4"
    real.write_bytes(b"x")
    policy = SourcePolicy.build([tmp_path], [], [])
    body = job([str(real)])
    assert validate_job(body, max_files=10, policy=policy).urls == []
    body["materials"][0]["path"] = str(tmp_path / "gone.mp4")
    with pytest.raises(RequestRejected) as info:
        validate_job(body, max_files=10, policy=policy)
    assert "does not exist" in info.value.problems[0].msg


def test_duplicate_material_ids_and_url_without_host() -> None:
    body = job(["http:///nohost"])
    body["materials"].append({"id": "m0", "path": "http://h/x"})
    found = problems(body)
    assert found["materials[0].path"] == "URL has no host"
    assert "duplicate" in found["materials[1].id"]


def test_file_count_limit() -> None:
    body = job([f"http://h/{i}" for i in range(11)])
    assert "limit is 10" in problems(body)["materials"]
    body = job(["http://h/same"] * 11)  # one distinct URL
    assert len(validate_job(body, max_files=10).urls) == 11


async def test_api_answers_422_with_paths_and_stores_nothing(service: Service) -> None:
    resp = await service.http.post(
        "/api/tasks/submit", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["type"] == "json_invalid"
    resp = await service.http.post("/api/tasks/submit", json=job(["ftp://h/x.mp4"]))
    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert detail[0]["loc"] == ["body", "materials", 0, "path"]
    assert (await service.http.get("/api/tasks")).json()["total"] == 0


async def test_api_answers_413_over_the_size_limit(service: Service) -> None:
    limit = service.services.settings.max_request_bytes
    body = job(["http://h/x.mp4"], padding="x" * limit)
    resp = await service.http.post("/api/tasks/submit", json=body)
    assert resp.status_code == 413
    assert str(limit) in resp.json()["detail"][0]["msg"]
    assert (await service.http.get("/api/tasks")).json()["total"] == 0


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_numbers_a_draft_cannot_hold_are_refused(service: Service, number: str) -> None:
    text = '{"ruleGroup": {"rules": []}, "draft_config": {"config": {"x": NUMBER}}}'
    text = text.replace("NUMBER", number)
    resp = await service.http.post(
        "/api/tasks/submit", content=text, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["type"] == "json_invalid"
    assert "draft cannot hold it" in resp.json()["detail"][0]["msg"]
    assert (await service.http.get("/api/tasks")).json()["total"] == 0
