"""Draft profiles (version markers, the app's draft folder) and building outside the drafts
root (issue 11: fidelity points found by comparing our drafts with drafts the apps wrote)."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import draftdl.drafts.jianying as jianying
from draftcheck import SEEN_IDS, check_draft
from draftdl.drafts import location
from draftdl.drafts.builder import JianYingDraftBuilder
from draftdl.drafts.jianying import build_draft
from draftdl.drafts.location import choose_drafts_root, remove_stale_builds, staging_dirs
from draftdl.drafts.profiles import PROFILES
from draftdl.drafts.spec import plan_draft
from draftdl.errors import FieldProblem
from draftdl.settings import Settings
from fileserver import FileServer
from servers import Service, load_example, make_settings, running_service
from test_drafts import MEDIA, local_job, plan_of

ITEMS = [
    {"type": "clip", "data": {"duration": 1}},
    {"type": "still", "data": {"duration": 2}},
    {"type": "tone", "data": {"duration": 1}},
    {"type": "words", "data": {"text": "hi", "duration": 1}},
]


def markers(folder: Path) -> dict[str, Any]:
    content = json.loads((folder / "draft_content.json").read_text(encoding="utf-8"))
    return {
        "version": content["version"],
        "new_version": content["new_version"],
        **{k: content["platform"][k] for k in ("app_id", "app_source", "app_version", "os")},
    }


@pytest.mark.parametrize("name", list(PROFILES))
def test_each_profile_writes_its_markers(tmp_path: Path, name: str) -> None:
    root = tmp_path / "drafts"
    folder = build_draft(plan_of(local_job(ITEMS)), {}, root, profile=name)
    draft = check_draft(folder, root, profile=name)
    profile = PROFILES[name]
    assert markers(folder) == {
        "version": profile.version,
        "new_version": profile.new_version,
        **profile.platform(),
    }
    assert draft.content["last_modified_platform"]["app_version"] == profile.app_version
    assert draft.content["fps"] == 30.0 and isinstance(draft.content["fps"], float)


def test_capcut_markers_are_a_current_capcuts() -> None:
    capcut = PROFILES["capcut"]
    assert (capcut.app_source, capcut.app_id, capcut.app) == ("cc", 359289, "CapCut")
    # A CapCut-written draft of 9.1.0 (see profiles.py); older markers are refused by CapCut.
    assert tuple(int(p) for p in capcut.app_version.split(".")) >= (9, 1, 0)
    assert int(capcut.new_version.split(".")[0]) >= 179
    assert PROFILES["jianying-5.9"].new_version == "110.0.0"  # what draftdl always wrote


def test_the_jobs_profile_wins_over_the_setting(tmp_path: Path) -> None:
    body = local_job(ITEMS, draft_config={"profile": "capcut", "fps": 25})
    folder = build_draft(plan_of(body), {}, tmp_path, profile="jianying-pro-10")
    draft = check_draft(folder, tmp_path, profile="capcut")
    assert draft.content["fps"] == 25.0
    folder = build_draft(plan_of(local_job(ITEMS)), {}, tmp_path, profile="jianying-pro-10")
    check_draft(folder, tmp_path, profile="jianying-pro-10")


def test_an_unknown_profile_is_refused_listing_the_profiles() -> None:
    for bad in ("capcut-1", 3, "", ["capcut"]):
        problems: list[FieldProblem] = []
        plan_draft(local_job(ITEMS, draft_config={"profile": bad}), problems)
        (problem,) = problems
        assert problem.loc == ("draft_config", "profile")
        assert all(name in problem.msg for name in PROFILES)


async def test_submit_refuses_an_unknown_profile(service: Service, fileserver: FileServer) -> None:
    body = load_example("basic-draft.json", fileserver.base_url)
    body.setdefault("draft_config", {})["profile"] = "capcut-9"
    resp = await service.http.post("/api/tasks/submit", json=body)
    assert resp.status_code == 422, resp.text
    (problem,) = [p for p in resp.json()["detail"] if "profile" in p["path"]]
    assert "jianying-5.9, jianying-pro-10, capcut" in problem["msg"]


def test_draft_profile_setting(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).draft_profile == "jianying-5.9"
    assert Settings(data_dir=tmp_path, draft_profile=" CapCut ").draft_profile == "capcut"
    with pytest.raises(ValueError, match="jianying-pro-10"):
        Settings(data_dir=tmp_path, draft_profile="capcut-9")


@pytest.fixture
async def capcut_service(data_dir: Path) -> AsyncIterator[Service]:
    async with running_service(make_settings(data_dir, draft_profile="capcut")) as svc:
        yield svc


async def test_a_capcut_server_builds_capcut_drafts(
    capcut_service: Service, fileserver: FileServer
) -> None:
    task_id = await capcut_service.submit(load_example("basic-draft.json", fileserver.base_url))
    task = await capcut_service.wait_final(task_id)
    assert task["status"] == "completed", task
    root = capcut_service.services.drafts.path
    check_draft(task["draft_path"], root, profile="capcut")
    # Staged in the data folder (same device here), never in the drafts root.
    staging = capcut_service.services.settings.data_dir.resolve() / "staging"
    assert staging.is_dir() and not list(staging.iterdir())


def test_capcuts_draft_folder_is_found_for_the_capcut_profile(tmp_path: Path) -> None:
    fallback, home = tmp_path / "data" / "drafts", tmp_path / "home"
    mac_jy = home / "Movies/JianyingPro/User Data/Projects/com.lveditor.draft"
    mac_cc = home / "Movies/CapCut/User Data/Projects/com.lveditor.draft"
    for folder in (mac_jy, mac_cc):
        (folder / ".recycle_bin").mkdir(parents=True)
    assert choose_drafts_root(None, fallback, "darwin", {}, home).path == mac_jy
    found = choose_drafts_root(None, fallback, "darwin", {}, home, "capcut")
    assert found.path == mac_cc and "CapCut" in found.reason
    local = tmp_path / "Local"
    env = {"LOCALAPPDATA": str(local)}
    nothing = choose_drafts_root(None, fallback, "win32", env, home, "capcut")
    assert nothing.path == fallback and "no CapCut" in nothing.reason
    win_cc = local / "CapCut/User Data/Projects/com.lveditor.draft"
    win_cc.mkdir(parents=True)
    (win_cc / "root_meta_info.json").write_text("{}")
    assert choose_drafts_root(None, fallback, "win32", env, home, "capcut").path == win_cc
    custom = tmp_path / "E" / "CapCutDrafts"
    custom.mkdir(parents=True)
    (custom / "root_meta_info.json").write_text("{}")
    config = local / "CapCut/User Data/Config"
    config.mkdir(parents=True)
    (config / "globalSetting").write_text(f"[General]\ncurrentCustomDraftPath={custom}\n")
    chosen = choose_drafts_root(None, fallback, "win32", env, home, "capcut")
    assert chosen.path == custom and "CapCut's custom" in chosen.reason
    # The JianYing profiles never take CapCut's folder.
    assert choose_drafts_root(None, fallback, "win32", env, home, "jianying-pro-10").path == (
        fallback
    )


def test_the_draft_is_built_outside_the_drafts_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "JianYing" / "com.lveditor.draft"
    seen: list[list[str]] = []
    real_write_meta = jianying._write_meta

    def write_meta(staging: Path, *args: Any) -> None:
        seen.append(sorted(p.name for p in root.iterdir()))
        assert staging.parent == tmp_path / "JianYing" / ".draftdl-staging"
        real_write_meta(staging, *args)

    monkeypatch.setattr(jianying, "_write_meta", write_meta)
    folder = build_draft(plan_of(local_job(ITEMS)), {}, root, key="abcd1234")
    assert seen == [[]]  # mid-build, JianYing's folder held nothing
    check_draft(folder, root)
    assert not list((tmp_path / "JianYing" / ".draftdl-staging").iterdir())
    # The data folder's staging/ is preferred when it is on the root's device.
    data = tmp_path / "data" / "staging"
    monkeypatch.setattr(jianying, "_write_meta", real_write_meta)
    parents: list[Path] = []
    real_move = jianying._move_into_place

    def move(staging: Path, final: Path) -> None:
        parents.append(staging.parent)
        real_move(staging, final)

    monkeypatch.setattr(jianying, "_move_into_place", move)
    check_draft(build_draft(plan_of(local_job(ITEMS)), {}, root, staging_root=data), root)
    assert parents == [data]


def test_staging_falls_back_when_another_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, data = tmp_path / "drafts", tmp_path / "data" / "staging"
    root.mkdir()
    real = location._device

    def device(path: Path) -> int | None:
        return -1 if str(path).startswith(str(tmp_path / "data")) else real(path)

    monkeypatch.setattr(location, "_device", device)
    assert staging_dirs(root, data) == [tmp_path / ".draftdl-staging", root]
    monkeypatch.setattr(
        location, "_device", lambda p: 7 if Path(p) == root or root in Path(p).parents else 8
    )
    assert staging_dirs(root, data) == [root]  # a mount point of its own: inside, hidden
    check_draft(build_draft(plan_of(local_job(ITEMS)), {}, root, staging_root=data), root)


def test_a_rename_across_devices_still_lands_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_rename = os.rename
    calls: list[str] = []

    def rename(src: Any, dst: Any) -> None:
        calls.append(Path(src).parent.name)
        if len(calls) == 1:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(src, dst)

    monkeypatch.setattr(jianying.os, "rename", rename)
    root = tmp_path / "drafts"
    check_draft(build_draft(plan_of(local_job(ITEMS)), {}, root), root)
    assert calls == [".draftdl-staging", "drafts"]


def test_stale_builds_are_swept_from_the_staging_folders_too(tmp_path: Path) -> None:
    root, data = tmp_path / "drafts", tmp_path / "data" / "staging"
    old = [
        root / ".building-a",
        tmp_path / ".draftdl-staging" / ".building-b",
        data / ".building-c",
    ]
    fresh = data / ".building-d"
    for folder in (*old, fresh):
        (folder / "assets").mkdir(parents=True)
    for folder in old:
        os.utime(folder, (0, 0))
    assert remove_stale_builds(root, preferred=data) == 3
    assert not any(f.exists() for f in old) and fresh.exists()


def test_a_cut_off_build_in_staging_is_cleared_on_rerun(tmp_path: Path) -> None:
    root = tmp_path / "drafts"
    leftover = tmp_path / ".draftdl-staging" / ".building-k1-dead"
    (leftover / "assets").mkdir(parents=True)
    folder = build_draft(plan_of(local_job(ITEMS)), {}, root, key="k1")
    assert not leftover.exists()
    check_draft(folder, root)


async def test_builder_passes_profile_and_staging(tmp_path: Path) -> None:
    builder = JianYingDraftBuilder(tmp_path / "d", (MEDIA,), "jianying-pro-10", tmp_path / "s")
    folder = builder._build(json.dumps(local_job(ITEMS)), {}, "key1")
    check_draft(folder, tmp_path / "d", profile="jianying-pro-10")
    assert (tmp_path / "s").is_dir()


def test_the_checklist_loads_every_draft_with_the_library(tmp_path: Path) -> None:
    folder = build_draft(plan_of(local_job(ITEMS)), {}, tmp_path)
    draft = check_draft(folder, tmp_path)
    SEEN_IDS.difference_update({draft.content["id"], draft.meta["draft_id"]})  # checked again
    content = json.loads((folder / "draft_content.json").read_text(encoding="utf-8"))
    del content["canvas_config"]["width"]  # nothing else in the checklist looks at it
    text = json.dumps(content, ensure_ascii=False, indent=4)
    for name in ("draft_content.json", "draft_info.json"):
        (folder / name).write_text(text, encoding="utf-8")
    with pytest.raises(KeyError):
        check_draft(folder, tmp_path)
