"""Draft fidelity beyond the timeline: where drafts go, media inside the draft, portable zips,
and the library quirks we correct (GIF lengths, UTF-16 text ranges)."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

from PIL import Image

from draftcheck import PLACEHOLDER, check_draft, check_zip
from draftdl.drafts.jianying import build_draft, gif_duration
from draftdl.drafts.location import choose_drafts_root
from fileserver import FileServer
from servers import Service, load_example
from test_drafts import local_job, plan_of


def make_root(folder: Path, marker: str = "root_meta_info.json") -> Path:
    folder.mkdir(parents=True)
    if marker.startswith("."):
        (folder / marker).mkdir()
    else:
        (folder / marker).write_text("{}")
    return folder


def test_drafts_root_is_jianyings_folder_when_found(tmp_path: Path) -> None:
    fallback = tmp_path / "data" / "drafts"
    home = tmp_path / "home"
    # Nothing there: the data folder, and why.
    found = choose_drafts_root(None, fallback, "darwin", {}, home)
    assert found.path == fallback and "no JianYing" in found.reason
    # macOS: only a folder JianYing has used counts.
    mac = home / "Movies/JianyingPro/User Data/Projects/com.lveditor.draft"
    mac.mkdir(parents=True)
    assert choose_drafts_root(None, fallback, "darwin", {}, home).path == fallback
    make_root(mac.parent / "x")  # unrelated
    (mac / ".recycle_bin").mkdir()
    assert choose_drafts_root(None, fallback, "darwin", {}, home).path == mac
    # Windows: the custom folder JianYing records wins over the default one.
    local = tmp_path / "Local"
    default = make_root(local / "JianyingPro/User Data/Projects/com.lveditor.draft")
    env = {"LOCALAPPDATA": str(local)}
    assert choose_drafts_root(None, fallback, "win32", env, home).path == default
    custom = make_root(tmp_path / "D" / "JianyingDrafts")
    config = local / "JianyingPro/User Data/Config"
    config.mkdir(parents=True)
    (config / "globalSetting").write_text(f"[General]\ncurrentCustomDraftPath={custom}\n")
    chosen = choose_drafts_root(None, fallback, "win32", env, home)
    assert chosen.path == custom and "currentCustomDraftPath" in chosen.reason
    # The setting always wins.
    assert choose_drafts_root(tmp_path / "mine", fallback, "win32", env, home).path == (
        tmp_path / "mine"
    )


async def test_health_says_where_drafts_go(service: Service) -> None:
    drafts = (await service.http.get("/api/health")).json()["drafts"]
    assert drafts["root"] == str(service.services.drafts.path) and drafts["reason"]


async def test_draft_keeps_its_media_when_downloads_are_cleaned(
    service: Service, fileserver: FileServer
) -> None:
    task_id = await service.submit(load_example("basic-draft.json", fileserver.base_url))
    task = await service.wait_final(task_id)
    shutil.rmtree(service.services.settings.downloads_dir / task_id)
    draft = check_draft(task["draft_path"], service.services.drafts.path)
    assert len(list((draft.folder / "assets").iterdir())) == 3


async def test_zip_with_placeholders_and_with_a_root(
    service: Service, fileserver: FileServer
) -> None:
    task_id = await service.submit(load_example("basic-draft.json", fileserver.base_url))
    task = await service.wait_final(task_id)
    folder = Path(task["draft_path"])
    draft_id = json.loads((folder / "draft_meta_info.json").read_text())["draft_id"]

    async def fetch(params: dict[str, str]) -> zipfile.ZipFile:
        resp = await service.http.get(f"/api/tasks/{task_id}/draft.zip", params=params)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == "application/zip"
        return zipfile.ZipFile(io.BytesIO(resp.content))

    def media_paths(archive: zipfile.ZipFile, name: str) -> list[str]:
        content = json.loads(archive.read(f"{folder.name}/{name}"))
        return [m["path"] for k in ("videos", "audios") for m in content["materials"][k]]

    archive = await fetch({})
    names = archive.namelist()
    assert f"{folder.name}/assets/clip.mp4" in names and f"{folder.name}/draft_info.json" in names
    # The one constant placeholder the apps write, never one made of the draft's own id.
    paths = check_zip(archive, folder.name)
    assert len(paths) == 3
    text = b"".join(archive.read(n) for n in names if n.endswith(".json")).decode()
    assert str(folder) not in text and str(service.services.settings.data_dir) not in text
    assert draft_id not in text.replace(f'"draft_id": "{draft_id}"', "")
    manifest = json.loads(archive.read(f"{folder.name}/draftdl-manifest.json"))
    assert manifest["placeholder"] == PLACEHOLDER and manifest["root"] is None
    assert (
        archive.read(f"{folder.name}/assets/clip.mp4") == (folder / "assets/clip.mp4").read_bytes()
    )

    # With ?root=, absolute paths under it, with forward slashes as the apps write them.
    archive = await fetch({"root": "C:\\Users\\me\\JianyingPro Drafts\\"})
    root = "C:/Users/me/JianyingPro Drafts"
    paths = check_zip(archive, folder.name, root)
    assert paths[0] == f"{root}/{folder.name}/assets/clip.mp4"
    meta = json.loads(archive.read(f"{folder.name}/draft_meta_info.json"))
    assert meta["draft_fold_path"] == f"{root}/{folder.name}" and meta["draft_root_path"] == root
    manifest = json.loads(archive.read(f"{folder.name}/draftdl-manifest.json"))
    assert manifest["placeholder"] is None and manifest["root"] == root
    check_zip(
        await fetch({"root": "/Users/me/Movies/CapCut/Drafts/"}),
        folder.name,
        "/Users/me/Movies/CapCut/Drafts",
    )
    assert not list((service.services.settings.data_dir / "tmp").iterdir())

    none = await service.http.get("/api/tasks/nope/draft.zip")
    assert none.status_code == 404


def write_gif(path: Path, delays_ms: list[int]) -> None:
    frames = [Image.new("RGB", (32, 24), (i * 40 % 255, 0, 0)) for i in range(len(delays_ms))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=delays_ms, loop=0)


def test_gif_length_is_the_sum_of_its_frames(tmp_path: Path) -> None:
    gif = tmp_path / "anim.gif"
    write_gif(gif, [100, 1500, 500])  # 2.1 s; the library would say 0.3 s
    assert gif_duration(str(gif)) == 2_100_000
    body: dict[str, Any] = local_job([{"type": "anim", "data": {}}])
    body["materials"].append({"id": "anim", "type": "video", "path": str(gif)})
    body["ruleGroup"]["rules"].append({"type": "anim", "material_ids": ["anim"]})
    draft = check_draft(build_draft(plan_of(body), {}, tmp_path / "d"), tmp_path / "d")
    (seg,) = draft.track("video")["segments"]
    assert seg["target_timerange"]["duration"] == 2_100_000
    assert draft.material(seg["material_id"])["duration"] == 2_100_000


def test_text_ranges_count_utf16_units(tmp_path: Path) -> None:
    body = local_job([{"type": "words", "data": {"text": "ok 🎬🎉 你好"}}])
    draft = check_draft(build_draft(plan_of(body), {}, tmp_path), tmp_path)
    (seg,) = draft.track("text")["segments"]
    content = json.loads(draft.material(seg["material_id"])["content"])
    assert content["styles"][0]["range"] == [0, 10]  # 8 characters; each emoji is 2 units


def test_stale_staging_folders_are_removed(tmp_path: Path) -> None:
    import os

    from draftdl.drafts.location import remove_stale_builds

    old, fresh, draft = (tmp_path / n for n in (".building-old", ".building-new", "Mine_1"))
    for folder in (old, fresh, draft):
        (folder / "assets").mkdir(parents=True)
    os.utime(old, (0, 0))
    os.utime(draft, (0, 0))
    assert remove_stale_builds(tmp_path) == 1
    assert not old.exists() and fresh.exists() and draft.exists()
