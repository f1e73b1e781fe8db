"""The fidelity checklist, asserted on every draft the suite builds (issue: "drafts that
JianYing opens with every medium found"). Each numbered check matches the checklist."""

from __future__ import annotations

import itertools
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyJianYingDraft as jy

from draftdl.drafts.location import staging_dirs
from draftdl.drafts.profiles import PROFILES

TRACK_MATERIALS = {"video": ("videos",), "audio": ("audios",), "text": ("texts",)}
UPPER_UUID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
SEEN_IDS: set[str] = set()  # draft and content ids across every draft of the run (check 4)
METETYPE = {"video": "video", "photo": "photo", "extract_music": "music"}
# The one relative form every app-written draft uses, whatever its id (check 20).
PLACEHOLDER = "##_draftpath_placeholder_0E685133-18CE-45ED-8CB8-2904A212EC80_##"


@dataclass
class Draft:
    folder: Path
    content: dict[str, Any]
    meta: dict[str, Any]

    def tracks(self, kind: str) -> list[dict[str, Any]]:
        return [t for t in self.content["tracks"] if t["type"] == kind]

    def track(self, name: str) -> dict[str, Any]:
        (track,) = [t for t in self.content["tracks"] if t["name"] == name]
        return track

    def material(self, material_id: str) -> dict[str, Any]:
        for items in self.content["materials"].values():
            if isinstance(items, list):
                for m in items:
                    if isinstance(m, dict) and m.get("id") == material_id:
                        return m
        raise KeyError(material_id)

    def paths(self) -> list[str]:
        return [m["path"] for k in ("videos", "audios") for m in self.content["materials"][k]]

    def same_file(self, material_id: str, original: str | Path) -> bool:
        """The material is the original file, placed in assets/ (hard link or copy)."""
        path = Path(self.material(material_id)["path"])
        return path.read_bytes() == Path(original).read_bytes()


def check_draft(path: str | Path, root: Path, profile: str | None = None) -> Draft:
    """``profile``: the draft profile the draft must carry (None: any of them)."""
    folder = Path(path)
    root = root.resolve()
    # 2, 18: a unique readable folder name, safe everywhere, in the root; nothing left over,
    # neither in the root nor in a staging folder (built outside the root, check 18).
    assert folder.is_dir() and folder.parent == root
    name = folder.name
    assert not name.startswith(".") and len(name) <= 60
    assert not re.search(r'[<>:"/\\|?*]', name) and name[-1] not in ". "
    assert not UPPER_UUID.match(name.upper())
    assert not [p for p in root.glob(".*") if p.name.startswith((".building-", ".draftdl-"))]
    for where in staging_dirs(root):
        assert not list(where.glob(".building-*")), f"a build left in {where}"
    # 1: both timelines, identical, and the meta; valid UTF-8 JSON.
    content_bytes = (folder / "draft_content.json").read_bytes()
    assert (folder / "draft_info.json").read_bytes() == content_bytes
    content = json.loads(content_bytes.decode("utf-8"))
    meta = json.loads((folder / "draft_meta_info.json").read_bytes().decode("utf-8"))
    # 3: name and folders.
    assert meta["draft_name"] == name
    assert meta["draft_root_path"] == str(root)
    assert meta["draft_fold_path"] == str(root / name)
    # 4: fresh uppercase ids, never seen before in this run.
    for value in (meta["draft_id"], content["id"]):
        assert UPPER_UUID.match(value) and value not in SEEN_IDS
        SEEN_IDS.add(value)
    # 5: timestamps in µs (16 digits), duration.
    assert len(str(meta["tm_draft_create"])) == 16 and len(str(meta["tm_draft_modified"])) == 16
    assert meta["tm_draft_create"] <= meta["tm_draft_modified"]
    assert meta["tm_duration"] == content["duration"]
    # 6: media paths absolute, local, existing, inside the draft's assets/.
    media = [*content["materials"]["videos"], *content["materials"]["audios"]]
    for m in media:
        p = Path(m["path"])
        assert p.is_absolute() and not m["path"].startswith(("http:", "https:"))
        assert p.is_file() and p.parent == folder / "assets"
    # 7: one draft_materials entry (type 0) per distinct path, with the right metetype.
    (files,) = [g["value"] for g in meta["draft_materials"] if g["type"] == 0]
    by_path = {e["file_Path"]: e for e in files}
    assert len(by_path) == len(files) == len({m["path"] for m in media})
    assert len({e["id"] for e in files}) == len(files)
    # 7b: entries as the app writes them: a picture 5 s with no rough-cut range, the rest
    # their length; ai_group_type; the meta counts the timeline's bytes.
    for e in files:
        assert e["ai_group_type"] == ""
        if e["metetype"] == "photo":
            assert e["duration"] == 5_000_000
            assert e["roughcut_time_range"] == {"start": -1, "duration": -1}
        else:
            assert e["roughcut_time_range"] == {"start": 0, "duration": e["duration"]}
    sizes = sum(Path(e["file_Path"]).stat().st_size for e in files)
    assert meta["draft_timeline_materials_size_"] == sizes
    for m in media:
        entry = by_path[m["path"]]
        assert entry["metetype"] == METETYPE[m["type"]]
        # 8: every medium points at its entry.
        assert m["local_material_id"] and m["local_material_id"] == entry["id"]
    # 9: ids unique across material categories, tracks and segments.
    material_ids = [
        m["id"]
        for items in content["materials"].values()
        if isinstance(items, list)
        for m in items
        if isinstance(m, dict) and "id" in m
    ]
    assert len(material_ids) == len(set(material_ids))
    all_ids = set(material_ids)
    latest_end = 0
    renders = []
    for track in content["tracks"]:
        assert track["id"] not in all_ids
        all_ids.add(track["id"])
        spans = []
        for seg in track["segments"]:
            assert seg["id"] not in all_ids
            all_ids.add(seg["id"])
            # 10: the segment's material is in its track type's category; refs exist.
            candidates = [
                m for c in TRACK_MATERIALS[track["type"]] for m in content["materials"][c]
            ]
            material = next(m for m in candidates if m["id"] == seg["material_id"])
            for ref in seg.get("extra_material_refs", []):
                assert ref in material_ids
            # 11: integers in µs, start ≥ 0, duration > 0.
            target = seg["target_timerange"]
            assert isinstance(target["start"], int) and isinstance(target["duration"], int)
            assert target["start"] >= 0 and target["duration"] > 0
            spans.append((target["start"], target["start"] + target["duration"]))
            latest_end = max(latest_end, target["start"] + target["duration"])
            renders.append(seg["render_index"])
            # 12: sources within the media; pictures with explicit durations.
            if track["type"] in ("video", "audio"):
                source = seg["source_timerange"]
                assert source is not None and source["duration"] > 0
                if material.get("type") != "photo":
                    assert source["start"] + source["duration"] <= material["duration"]
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, f"overlap on track {track['name']}"
    # 13: layers in track order.
    assert renders == sorted(renders)
    # 14: duration = the latest end.
    assert content["duration"] == latest_end
    # 16: version markers: exactly one profile's, in both platform blocks; fps a float.
    carried = [
        p
        for p in PROFILES.values()
        if content["version"] == p.version
        and content["new_version"] == p.new_version
        and all(
            {k: content[block].get(k) for k in p.platform()} == p.platform()
            for block in ("platform", "last_modified_platform")
        )
    ]
    assert len(carried) == 1, "the version markers are no profile's"
    assert profile is None or carried[0].name == profile
    assert isinstance(content["fps"], float) and content["fps"] > 0
    # 17: text style ranges in UTF-16 units.
    for text in content["materials"]["texts"]:
        body = json.loads(text["content"])
        units = len(body["text"].encode("utf-16-le")) // 2
        assert all(s["range"][1] == units for s in body["styles"])
    # 19: pyJianYingDraft loads it as a template (the library's own reading of the draft).
    script = jy.DraftFolder(str(root)).load_template(name)
    assert (script.width, script.height) == tuple(
        content["canvas_config"][k] for k in ("width", "height")
    )
    assert len(script.imported_tracks) == len(content["tracks"])
    again = json.loads(script.dumps())  # and writes it back whole
    assert again["duration"] == content["duration"] and len(again["tracks"]) == len(
        content["tracks"]
    )
    return Draft(folder, content, meta)


def check_zip(archive: zipfile.ZipFile, folder: str, root: str | None = None) -> list[str]:
    """20: a draft zip's media paths: the constant placeholder (none with a draft's own id),
    or with ``root`` forward-slash absolute paths under it, in both timelines and the meta's
    entries; the meta's folders follow. Returns the timeline's media paths."""
    meta = json.loads(archive.read(f"{folder}/draft_meta_info.json"))
    if root is None:
        prefix = f"{PLACEHOLDER}/assets/"
        assert meta["draft_fold_path"] == meta["draft_root_path"] == ""
    else:
        base = root.replace("\\", "/").rstrip("/")
        prefix = f"{base}/{folder}/assets/"
        assert meta["draft_root_path"] == base and meta["draft_fold_path"] == f"{base}/{folder}"
    texts = {n: archive.read(f"{folder}/{n}") for n in ("draft_content.json", "draft_info.json")}
    assert texts["draft_content.json"] == texts["draft_info.json"]
    content = json.loads(texts["draft_content.json"])
    paths = [m["path"] for k in ("videos", "audios") for m in content["materials"][k]]
    entries = [
        e["file_Path"] for g in meta["draft_materials"] if g["type"] == 0 for e in g["value"]
    ]
    for p in [*paths, *entries]:
        assert p.startswith(prefix) and "\\" not in p, p
    everything = b"".join(archive.read(n) for n in archive.namelist() if n.endswith(".json"))
    ids = set(re.findall(rb"##_draftpath_placeholder_([^#]*)_##", everything))
    assert ids <= {PLACEHOLDER.removeprefix("##_draftpath_placeholder_")[:-3].encode()}, ids
    return paths
