"""The fidelity checklist, asserted on every draft the suite builds (issue: "drafts that
JianYing opens with every medium found"). Each numbered check matches the checklist."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRACK_MATERIALS = {"video": ("videos",), "audio": ("audios",), "text": ("texts",)}
UPPER_UUID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
SEEN_IDS: set[str] = set()  # draft and content ids across every draft of the run (check 4)
METETYPE = {"video": "video", "photo": "photo", "extract_music": "music"}


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


def check_draft(path: str | Path, root: Path) -> Draft:
    folder = Path(path)
    root = root.resolve()
    # 2, 18: a unique readable folder name, safe everywhere, in the root; nothing left over.
    assert folder.is_dir() and folder.parent == root
    name = folder.name
    assert not name.startswith(".") and len(name) <= 60
    assert not re.search(r'[<>:"/\\|?*]', name) and name[-1] not in ". "
    assert not UPPER_UUID.match(name.upper())
    assert not list(root.glob(".building-*"))
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
    # 16: version markers.
    assert content["version"] and content["new_version"] and content["platform"]["app_source"]
    # 17: text style ranges in UTF-16 units.
    for text in content["materials"]["texts"]:
        body = json.loads(text["content"])
        units = len(body["text"].encode("utf-16-le")) // 2
        assert all(s["range"][1] == units for s in body["styles"])
    return Draft(folder, content, meta)
