"""Checks every draft the suite builds must pass (a subset of the fidelity checklist that
applies to drafts built straight from the downloaded files)."""

from __future__ import annotations

import itertools
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRACK_MATERIALS = {"video": ("videos",), "audio": ("audios",), "text": ("texts",)}
UPPER_UUID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")


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
        kinds = ("videos", "audios")
        return [m["path"] for k in kinds for m in self.content["materials"][k]]


def check_draft(path: str | Path, root: Path) -> Draft:
    folder = Path(path)
    assert folder.is_dir() and folder.parent == root.resolve()
    assert not folder.name.startswith(".")
    assert not re.search(r'[<>:"/\\|?*]', folder.name) and folder.name[-1] not in ". "
    content_text = (folder / "draft_content.json").read_text(encoding="utf-8")
    assert (folder / "draft_info.json").read_text(encoding="utf-8") == content_text
    content = json.loads(content_text)
    meta = json.loads((folder / "draft_meta_info.json").read_text(encoding="utf-8"))
    # Meta: its own ids, name and folders.
    assert UPPER_UUID.match(meta["draft_id"]) and UPPER_UUID.match(content["id"])
    assert meta["draft_name"] == folder.name
    assert meta["draft_fold_path"] == str(folder)
    assert meta["draft_root_path"] == str(folder.parent)
    assert meta["tm_duration"] == content["duration"]
    assert len(str(meta["tm_draft_create"])) == 16
    # Every segment resolves in the category of its track; no overlaps; integer µs.
    seen_ids: set[str] = set()
    latest_end = 0
    for track in content["tracks"]:
        assert track["id"] not in seen_ids
        seen_ids.add(track["id"])
        spans = []
        for seg in track["segments"]:
            assert seg["id"] not in seen_ids
            seen_ids.add(seg["id"])
            target = seg["target_timerange"]
            assert isinstance(target["start"], int) and isinstance(target["duration"], int)
            assert target["start"] >= 0 and target["duration"] > 0
            spans.append((target["start"], target["start"] + target["duration"]))
            latest_end = max(latest_end, target["start"] + target["duration"])
            categories = TRACK_MATERIALS[track["type"]]
            material = next(
                m
                for c in categories
                for m in content["materials"][c]
                if m["id"] == seg["material_id"]
            )
            if track["type"] in ("video", "audio"):
                assert Path(material["path"]).is_absolute() and Path(material["path"]).is_file()
                assert not material["path"].startswith(("http:", "https:"))
                source = seg["source_timerange"]
                if material.get("type") != "photo":
                    assert source["start"] + source["duration"] <= material["duration"]
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, f"overlap on track {track['name']}"
    assert content["duration"] == latest_end
    uuid.UUID(meta["draft_id"])
    return Draft(folder, content, meta)
