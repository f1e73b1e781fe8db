"""Every example of shared/examples through the whole service, against a real aria2c."""

from __future__ import annotations

from pathlib import Path

from draftcheck import check_draft
from fileserver import FileServer
from servers import Service, load_example

MEDIA = Path(__file__).parent / "data" / "media"


def drafts_root(service: Service) -> Path:
    return service.services.drafts.path


async def test_seed_minimal_gives_an_empty_draft(service: Service) -> None:
    task_id = await service.submit(load_example("seed-minimal.json", "http://unused"))
    task = await service.wait_final(task_id)
    assert task["status"] == "completed"
    assert task["progress"]["total_files"] == 0
    assert task["progress"]["progress_percent"] == 100.0
    draft = check_draft(task["draft_path"], drafts_root(service))
    assert draft.folder.name.startswith("测试_")
    assert draft.content["canvas_config"]["width"] == 1920
    assert draft.content["canvas_config"]["height"] == 1080
    assert draft.content["fps"] == 30
    assert draft.content["tracks"] == [] and draft.content["duration"] == 0


async def test_basic_draft_downloads_every_file(service: Service, fileserver: FileServer) -> None:
    task_id = await service.submit(load_example("basic-draft.json", fileserver.base_url))
    task = await service.wait_final(task_id)
    assert task["status"] == "completed", task
    assert task["completed_at"] is not None
    progress = task["progress"]
    assert progress["completed_files"] == progress["total_files"] == 3
    assert progress["progress_percent"] == 100.0
    expected = sum((MEDIA / n).stat().st_size for n in ("clip.mp4", "tone.mp3", "still.png"))
    assert progress["total_size"] == progress["downloaded_size"] == expected
    folder = service.services.settings.downloads_dir.resolve() / task_id
    local = {}
    for f in task["files"]:
        assert f["status"] == "complete"
        path = Path(f["file_path"])
        assert path.parent == folder
        assert path.read_bytes() == (MEDIA / path.name).read_bytes()
        assert f["total_length"] == f["completed_length"] == path.stat().st_size
        local[path.name] = str(path)

    draft = check_draft(task["draft_path"], drafts_root(service))
    assert draft.folder.name.startswith("Basic montage_")
    assert draft.content["canvas_config"]["width"] == 1080
    assert draft.content["canvas_config"]["height"] == 1920
    assert draft.content["fps"] == 30
    assert [(t["type"], t["name"]) for t in draft.content["tracks"]] == [
        ("video", "Main"),
        ("video", "Cover"),
        ("audio", "BGM"),
        ("text", "Captions"),
    ]
    (main,) = draft.track("Main")["segments"]
    assert main["target_timerange"] == {"start": 0, "duration": 4_000_000}
    assert draft.same_file(main["material_id"], local["clip.mp4"])
    # Placed by hard link when on the same file system: no second copy of the bytes.
    clip_asset = Path(draft.material(main["material_id"])["path"])
    assert clip_asset.stat().st_ino == Path(local["clip.mp4"]).stat().st_ino
    (cover,) = draft.track("Cover")["segments"]
    assert cover["target_timerange"] == {"start": 0, "duration": 1_500_000}
    assert cover["clip"]["scale"] == {"x": 0.5, "y": 0.5}
    assert cover["clip"]["transform"] == {"x": 0.2, "y": -0.3}
    assert draft.same_file(cover["material_id"], local["still.png"])
    assert draft.material(cover["material_id"])["type"] == "photo"
    (bgm,) = draft.track("BGM")["segments"]
    assert bgm["target_timerange"] == {"start": 0, "duration": 4_000_000}
    assert bgm["volume"] == 0.6
    assert draft.same_file(bgm["material_id"], local["tone.mp3"])
    (caption,) = draft.track("Captions")["segments"]
    assert caption["target_timerange"] == {"start": 500_000, "duration": 3_000_000}
    assert "你好, draft" in draft.material(caption["material_id"])["content"]
    assert draft.content["duration"] == 4_000_000
    assert sorted(Path(p).name for p in draft.paths()) == sorted(local)


async def test_plugin_style_keeps_two_clips_apart(service: Service, fileserver: FileServer) -> None:
    body = load_example("plugin-style.json", fileserver.base_url)
    task_id = await service.submit(body)
    task = await service.wait_final(task_id)
    assert task["status"] == "completed", task
    by_url = {f["url"]: Path(f["file_path"]) for f in task["files"]}
    first = by_url[body["materials"]["videos"][0]["path"]]
    second = by_url[body["materials"]["videos"][1]["path"]]
    assert first != second
    assert {first.name, second.name} == {"clip.mp4", "clip-1.mp4"}
    clip = (MEDIA / "clip.mp4").read_bytes()
    assert first.read_bytes() == second.read_bytes() == clip
    tone = by_url[body["materials"]["audios"][0]["material_url"]]
    assert tone.name == "tone.mp3"

    draft = check_draft(task["draft_path"], drafts_root(service))
    assert draft.content["canvas_config"]["width"] == 720
    assert draft.content["canvas_config"]["height"] == 1280
    assert draft.content["fps"] == 25
    (video,) = draft.tracks("video")
    (audio,) = draft.tracks("audio")
    spans = [
        (s["target_timerange"], Path(draft.material(s["material_id"])["path"]).name)
        for s in video["segments"]
    ]
    assert sorted(spans, key=lambda s: s[0]["start"]) == [
        ({"start": 0, "duration": 2_000_000}, first.name),
        ({"start": 2_000_000, "duration": 2_000_000}, second.name),
    ]
    (music,) = audio["segments"]
    assert music["target_timerange"] == {"start": 0, "duration": 5_000_000}
    assert draft.same_file(music["material_id"], tone)


async def test_hostile_names_stay_inside_and_fail_on_404(
    service: Service, fileserver: FileServer, data_dir: Path
) -> None:
    before = set(data_dir.parent.rglob("*"))
    task_id = await service.submit(load_example("hostile-names.json", fileserver.base_url))
    task = await service.wait_final(task_id)
    assert task["status"] == "failed"
    url = task["files"][0]["url"]
    assert url in task["error_message"]
    assert "404" in task["error_message"]
    folder = service.services.settings.downloads_dir.resolve() / task_id
    assert Path(task["files"][0]["file_path"]).parent == folder
    created = set(data_dir.parent.rglob("*")) - before
    outside = [
        p
        for p in created
        if not p.resolve().is_relative_to(data_dir.resolve()) and "server-" not in p.name
    ]
    assert outside == []
    assert task["draft_path"] is None
    assert list(drafts_root(service).glob("*")) == []


async def test_invalid_examples_are_rejected_and_not_stored(
    service: Service, fileserver: FileServer
) -> None:
    cases = {
        "invalid-url-scheme.json": ("materials[0].path", "ftp"),
        "invalid-unknown-rule.json": ("testData.items[0].type", "intro"),
        "invalid-missing-material.json": ("ruleGroup.rules[0].material_ids[1]", "m_gone"),
    }
    for name, (path, word) in cases.items():
        resp = await service.http.post(
            "/api/tasks/submit", json=load_example(name, fileserver.base_url)
        )
        assert resp.status_code == 422, (name, resp.text)
        problems = resp.json()["detail"]
        assert any(p["path"] == path and word in p["msg"] for p in problems), problems
    listing = (await service.http.get("/api/tasks")).json()
    assert listing["total"] == 0
    assert fileserver.requests_for("/media/clip.mp4") == 0
