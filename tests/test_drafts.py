"""Drafts built with pyJianYingDraft: the builder alone, and through the whole service."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from draftcheck import check_draft
from draftdl.drafts.jianying import build_draft
from draftdl.drafts.spec import DraftPlan, plan_draft
from draftdl.errors import DraftBuildError, FieldProblem
from fileserver import FileServer
from servers import Service, load_example, make_settings, running_service

MEDIA = Path(__file__).parent / "data" / "media"
CLIP_US, TONE_US, PORTRAIT_US = 4_000_000, 6_034_000, 2_000_000


def plan_of(body: dict[str, Any]) -> DraftPlan:
    problems: list[FieldProblem] = []
    plan = plan_draft(body, problems)
    assert problems == []
    return plan


@pytest.fixture
async def media_service(data_dir: Path) -> AsyncIterator[Service]:
    """A service that may read the shared media by local path (``local_media_roots``)."""
    async with running_service(make_settings(data_dir, local_media_roots=[MEDIA])) as svc:
        yield svc


def local_job(items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A job over the shared media given as local paths (the builder needs no download)."""
    materials = [
        {"id": "clip", "type": "video", "path": str(MEDIA / "clip.mp4")},
        {"id": "portrait", "type": "video", "path": str(MEDIA / "portrait.mp4")},
        {"id": "tone", "type": "music", "path": str(MEDIA / "tone.mp3")},
        {"id": "still", "type": "image", "path": str(MEDIA / "still.png")},
        {"id": "photo", "type": "photo", "path": str(MEDIA / "photo.jpg")},
        {"id": "words", "type": "text", "name": "from the name"},
    ]
    rules = [{"type": m["id"], "material_ids": [m["id"]]} for m in materials]
    rules.append({"type": "both", "material_ids": ["clip", "portrait"]})
    return {
        "ruleGroup": {"id": "g", "title": "Local: job?", "rules": rules},
        "materials": materials,
        "testData": {"items": items, **extra.pop("testData", {})},
        **extra,
    }


def test_defaults_come_from_the_media(tmp_path: Path) -> None:
    body = local_job(
        [
            {"type": "clip", "data": {}},
            {"type": "tone", "data": {"start": 1}},
            {"type": "still", "data": {"start": 0, "track": "pics"}},
            {"type": "words", "data": {}},
        ],
        testData={
            "tracks": [
                {"id": "main", "type": "video"},
                {"id": "pics", "type": "video"},
                {"id": "a", "type": "audio"},
                {"id": "t", "type": "text"},
            ]
        },
    )
    for item, track in zip(body["testData"]["items"], ("main", "a", "pics", "t"), strict=True):
        item["data"]["track"] = track
    draft = check_draft(build_draft(plan_of(body), {}, tmp_path), tmp_path)
    (clip,) = draft.track("main")["segments"]
    assert clip["target_timerange"] == {"start": 0, "duration": CLIP_US}
    (tone,) = draft.track("a")["segments"]
    assert tone["target_timerange"] == {"start": 1_000_000, "duration": TONE_US}
    (still,) = draft.track("pics")["segments"]
    assert still["target_timerange"] == {"start": 0, "duration": 3_000_000}
    (words,) = draft.track("t")["segments"]
    assert "from the name" in draft.material(words["material_id"])["content"]
    assert draft.folder.name.startswith("Local_ job_")
    assert draft.content["canvas_config"]["width"] == 1920 and draft.content["fps"] == 30


def test_times_speed_and_source_ranges(tmp_path: Path) -> None:
    body = local_job(
        [
            {"type": "both", "data": {"start": 0.5, "duration": 1}},
            {
                "type": "clip",
                "data": {
                    "track": "slow",
                    "start": 0,
                    "source_start": 1,
                    "source_duration": 2,
                    "speed": 2,
                },
            },
            {"type": "tone", "data": {"start": 0, "duration": 2, "speed": 1.5, "volume": 0.25}},
        ],
        draft_config={"canvas_config": {"width": 640, "height": 360}, "fps": 24.0},
    )
    draft = check_draft(build_draft(plan_of(body), {}, tmp_path), tmp_path)
    assert draft.content["canvas_config"]["width"] == 640 and draft.content["fps"] == 24
    video = draft.track("video")["segments"]
    assert [s["target_timerange"] for s in video] == [
        {"start": 500_000, "duration": 1_000_000},
        {"start": 1_500_000, "duration": 1_000_000},
    ]
    assert [Path(draft.material(s["material_id"])["path"]).name for s in video] == [
        "clip.mp4",
        "portrait.mp4",
    ]
    (slow,) = draft.track("slow")["segments"]
    assert slow["source_timerange"] == {"start": 1_000_000, "duration": 2_000_000}
    assert slow["speed"] == 2.0 and slow["target_timerange"]["duration"] == 1_000_000
    (tone,) = draft.track("audio")["segments"]
    assert tone["volume"] == 0.25 and tone["speed"] == 1.5
    assert tone["source_timerange"] == {"start": 0, "duration": 3_000_000}


def test_track_layers_and_config(tmp_path: Path) -> None:
    body = local_job(
        [
            {"type": "clip", "data": {"track": "bottom", "start": 0, "duration": 1}},
            {"type": "photo", "data": {"track": "top", "start": 0, "duration": 1}},
        ],
        testData={
            "tracks": [
                {"id": "top", "type": "video", "title": "Top", "absolute_index": 5},
                {"id": "bottom", "type": "video", "title": "Bottom", "absolute_index": 1},
            ]
        },
        canvas_width=1280,
        canvas_height=720,
        fps=29.97,
        draft_config={"config": {"video_mute": True}},
    )
    draft = check_draft(build_draft(plan_of(body), {}, tmp_path), tmp_path)
    assert [t["name"] for t in draft.content["tracks"]] == ["Bottom", "Top"]
    assert draft.content["config"]["video_mute"] is True
    assert draft.content["canvas_config"]["width"] == 1280
    assert draft.content["fps"] == 29.97  # as asked (the library alone would write 30.0)
    renders = [t["segments"][0]["render_index"] for t in draft.content["tracks"]]
    assert renders == sorted(renders)


def test_segment_longer_than_its_media_fails_clearly(tmp_path: Path) -> None:
    body = local_job([{"type": "portrait", "data": {"start": 0, "duration": 5}}])
    with pytest.raises(DraftBuildError) as info:
        build_draft(plan_of(body), {}, tmp_path)
    message = str(info.value)
    assert "'portrait'" in message and str(MEDIA / "portrait.mp4") in message
    assert "holds 2.00s" in message
    assert list(tmp_path.iterdir()) == []


def test_corrupt_media_fails_and_leaves_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "media" / "broken.mp4"
    bad.parent.mkdir()
    bad.write_bytes(b"\x00not a video at all" * 100)
    body = local_job([{"type": "clip", "data": {"start": 0, "duration": 1}}])
    root = tmp_path / "drafts"
    files = {str(MEDIA / "clip.mp4"): str(bad)}
    with pytest.raises(DraftBuildError) as info:
        build_draft(plan_of(body), files, root)
    assert "'clip'" in str(info.value) and str(bad) in str(info.value)
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("name", ["still.png", "photo.jpg"])
def test_pictures_sized_by_pillow_match_the_library_probe(name: str) -> None:
    import pyJianYingDraft as jy

    from draftdl.drafts.jianying import picture_material

    probed = jy.VideoMaterial(str(MEDIA / name)).export_json()
    quick = picture_material(str(MEDIA / name))
    assert quick is not None
    fast = quick.export_json()
    for ids in (probed, fast):
        del ids["id"], ids["material_id"]
    assert fast == probed
    assert picture_material(str(MEDIA / "clip.mp4")) is None


def test_two_drafts_of_one_title_never_collide(tmp_path: Path) -> None:
    plan = plan_of(local_job([]))
    first, second = build_draft(plan, {}, tmp_path), build_draft(plan, {}, tmp_path)
    assert first != second
    a, b = check_draft(first, tmp_path), check_draft(second, tmp_path)
    assert a.meta["draft_id"] != b.meta["draft_id"] and a.content["id"] != b.content["id"]


async def test_submit_refuses_what_can_be_checked_before_download(media_service: Service) -> None:
    service = media_service

    async def problems(body: dict[str, Any]) -> dict[str, str]:
        resp = await service.http.post("/api/tasks/submit", json=body)
        assert resp.status_code == 422, resp.text
        return {p["path"]: p["msg"] for p in resp.json()["detail"]}

    async def run() -> None:
        tracks = {"tracks": [{"id": "v", "type": "video"}, {"id": "a", "type": "audio"}]}
        found = await problems(
            local_job(
                [
                    {"type": "clip", "data": {"track": "v", "start": -1, "duration": "two"}},
                    {"type": "clip", "data": {"track": "nope", "start": 0}},
                    {"type": "tone", "data": {"track": "v", "start": 0}},
                    {"type": "clip", "data": {"track": "v", "start": 0, "speed": 0}},
                ],
                testData=tracks,
            )
        )
        assert set(found) == {
            "testData.items[0].data.start",
            "testData.items[0].data.duration",
            "testData.items[1].data.track",
            "testData.items[2].data.track",
            "testData.items[3].data.speed",
        }
        assert "'nope'" in found["testData.items[1].data.track"]
        overlap = await problems(
            local_job(
                [
                    {"type": "clip", "data": {"start": 0, "duration": 2}},
                    {"type": "portrait", "data": {"start": 1, "duration": 1}},
                ]
            )
        )
        assert "overlaps" in overlap["testData.items[1]"]
        canvas = await problems(local_job([], draft_config={"canvas_config": {"width": -5}}))
        assert "canvas" in canvas["draft_config.canvas_config.width"]
        assert (await service.http.get("/api/tasks")).json()["total"] == 0

    await run()


async def test_ten_drafts_built_at_once_are_all_right(
    service: Service, fileserver: FileServer
) -> None:
    """Media probing is not thread-safe; ten builds at once must still all be right."""
    ids = []
    for n in range(10):
        body = load_example("basic-draft.json", fileserver.base_url)
        body["ruleGroup"]["title"] = f"Concurrent {n}"
        for item in body["testData"]["items"]:
            if item["type"] in ("clip", "bgm"):
                del item["data"]["duration"]  # from the media: probing must be right
        for material in body["materials"]:
            if "path" in material:
                material["path"] += f"?copy={n}"
        ids.append(await service.submit(body))
    tasks = await asyncio.gather(*(service.wait_final(t, timeout=60) for t in ids))
    root = service.services.drafts.path
    for task in tasks:
        assert task["status"] == "completed", task["error_message"]
        draft = check_draft(task["draft_path"], root)
        (main,) = draft.track("Main")["segments"]
        assert main["target_timerange"]["duration"] == CLIP_US
        (bgm,) = draft.track("BGM")["segments"]
        assert bgm["target_timerange"]["duration"] == TONE_US
        assert draft.material(bgm["material_id"])["duration"] == TONE_US
    assert len({t["draft_path"] for t in tasks}) == 10
    assert len(list(root.iterdir())) == 10


async def test_corrupt_download_fails_the_task_naming_the_file(
    service: Service, fileserver: FileServer
) -> None:
    body = load_example("basic-draft.json", fileserver.base_url)
    body["materials"][0]["path"] = fileserver.url("/size/20K/clip.mp4")  # random bytes
    task = await service.wait_final(await service.submit(body))
    assert task["status"] == "failed"
    clip_file = next(f["file_path"] for f in task["files"] if f["file_name"] == "clip.mp4")
    assert "'m_clip'" in task["error_message"] and clip_file in task["error_message"]
    root = service.services.drafts.path
    assert not root.exists() or list(root.iterdir()) == []


async def test_request_and_file_map_are_kept_for_a_rebuild(
    service: Service, fileserver: FileServer
) -> None:
    body = load_example("basic-draft.json", fileserver.base_url)
    task_id = await service.submit(body)
    await service.wait_final(task_id)
    stored = await service.services.db.load_task(task_id)
    assert stored is not None
    assert json.loads(stored.request_json) == body  # URLs untouched
    urls = {m["path"] for m in body["materials"] if "path" in m}
    assert set(stored.file_map()) == urls
    # Rebuilding from what is stored gives the same timeline again.
    again = await service.services.queue.builder.build(stored)
    assert again is not None
    check_draft(again, service.services.drafts.path)
    shutil.rmtree(again)


@pytest.mark.parametrize("speed", [0.7, 2.4, 2.6, 3.1, 3.4, 7.3])
def test_default_length_at_any_speed_fits_the_media(tmp_path: Path, speed: float) -> None:
    body = local_job(
        [{"type": "clip", "data": {"speed": speed}}, {"type": "tone", "data": {"speed": speed}}]
    )
    draft = check_draft(build_draft(plan_of(body), {}, tmp_path), tmp_path)
    (clip,) = draft.track("video")["segments"]
    assert abs(clip["target_timerange"]["duration"] - CLIP_US / speed) <= 1


def test_rules_of_one_type_add_up_and_start_less_items_follow_the_latest_end() -> None:
    body = local_job(
        [
            {"type": "clip", "data": {"start": 5, "duration": 1}},
            {"type": "dup", "data": {"start": 0, "duration": 1}},
        ]
    )
    body["ruleGroup"]["rules"] += [
        {"type": "dup", "material_ids": ["portrait"]},
        {"type": "dup", "material_ids": ["clip"]},
    ]
    plan = plan_of(body)
    assert [(s.material_id, s.start) for s in plan.segments] == [
        ("clip", 5_000_000),
        ("portrait", 0),
        ("clip", 1_000_000),
    ]
    later = local_job(
        [
            {"type": "clip", "data": {"start": 5, "duration": 5}},
            {"type": "portrait", "data": {"start": 0, "duration": 2}},
            {"type": "clip", "data": {"duration": 1}},
        ]
    )
    assert plan_of(later).segments[2].start == 10_000_000


async def test_submit_refuses_zero_length_and_hidden_overlaps(media_service: Service) -> None:
    service = media_service

    async def paths(body: dict[str, Any]) -> set[str]:
        resp = await service.http.post("/api/tasks/submit", json=body)
        assert resp.status_code == 422, resp.text
        return {p["path"] for p in resp.json()["detail"]}

    tiny = local_job([{"type": "photo", "data": {"start": 0, "duration": 1e-7}}])
    assert await paths(tiny) == {"testData.items[0].data.duration"}
    hidden = local_job(
        [
            {"type": "clip", "data": {"start": 0, "duration": 2}},
            {"type": "photo", "data": {"duration": 1}},
            {"type": "portrait", "data": {"start": 2.5, "duration": 1}},
        ]
    )
    assert await paths(hidden) == {"testData.items[2]"}
