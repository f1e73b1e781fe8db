"""Writes the raw segments of a plan (``raw_spec``) into the draft's content JSON.

Each raw segment is copied with its material and extra materials under fresh ids; every
reference to an old id (the segment's ``material_id`` and ``extra_material_refs``, keyframe
ids, any value inside the copies naming one) is rewritten. Media files are probed and placed
in the draft's ``assets/`` through the ``DraftWriter`` (one ``draft_materials`` entry per file,
``local_material_id`` pointing at it), and every file path inside the copies names the placed
file. A template clone gets its item's values (start, duration, path, text, volume, speed,
x, y, scale) over the template's.
"""

from __future__ import annotations

import copy
import json
import math
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyJianYingDraft as jy

from draftdl.drafts.raw_spec import PLACEHOLDER, RawSegmentPlan
from draftdl.drafts.raw_styles import style_raw
from draftdl.drafts.spec import SOURCE_KEYS, SegmentPlan
from draftdl.errors import DraftBuildError

if TYPE_CHECKING:
    from draftdl.drafts.jianying import DraftWriter

KIND_OF_CATEGORY = {"videos": "video", "audios": "audio", "texts": "text"}


def new_id() -> str:
    return str(uuid.uuid4()).upper()


def write_raw(
    content: dict[str, Any],
    raws: list[RawSegmentPlan],
    writer: DraftWriter,
    track_ids: Mapping[str, str],
) -> None:
    """Adds every raw segment to ``content`` (the library's dump, before finish_content)."""
    if not raws:
        return
    tracks = {t["id"]: (index, t) for index, t in enumerate(content["tracks"])}
    materials = content["materials"]
    for raw in raws:
        try:
            segment, material, extras = _copy(raw)
            probed = _media(raw, segment, material, extras, writer)
            segment["target_timerange"] = {"start": raw.start, "duration": raw.duration}
            style_raw(segment, material, extras, raw.style, KIND_OF_CATEGORY[raw.category], probed)
            _override(raw, segment, material, extras)
        except DraftBuildError:
            raise
        except Exception as exc:  # a template shape the request check let through
            raise DraftBuildError(f"{raw.label}: cannot write it: {exc!r}") from exc
        materials.setdefault(raw.category, []).append(material)
        for category, extra in extras:
            materials.setdefault(category, []).append(extra)
        index, track = tracks[track_ids[raw.track]]
        segment["render_index"] = index
        segment["track_render_index"] = 0
        track["segments"].append(segment)
        content["duration"] = max(int(content.get("duration") or 0), raw.end)
    for _, track in tracks.values():
        track["segments"].sort(key=lambda s: s["target_timerange"]["start"])


def _copy(
    raw: RawSegmentPlan,
) -> tuple[dict[str, Any], dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """Deep copies under fresh ids, every reference to an old id rewritten."""
    segment = copy.deepcopy(raw.segment)
    material = copy.deepcopy(raw.material)
    extras = [(category, copy.deepcopy(extra)) for category, extra in raw.extras]
    fresh: dict[str, str] = {}
    for node in (segment, material, *(e for _, e in extras)):
        fresh[node["id"]] = new_id()
    for frames in segment.get("common_keyframes") or []:
        if isinstance(frames, dict):
            if isinstance(frames.get("id"), str):
                fresh[frames["id"]] = new_id()
            for frame in frames.get("keyframe_list") or []:
                if isinstance(frame, dict) and isinstance(frame.get("id"), str):
                    fresh[frame["id"]] = new_id()
    segment = _rename(segment, fresh)
    material = _rename(material, fresh)
    extras = [(category, _rename(extra, fresh)) for category, extra in extras]
    segment["material_id"] = material["id"]
    segment["extra_material_refs"] = [e["id"] for _, e in extras]
    return segment, material, extras


def _rename(node: Any, fresh: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        return {key: _rename(value, fresh) for key, value in node.items()}
    if isinstance(node, list):
        return [_rename(value, fresh) for value in node]
    if isinstance(node, str):
        return fresh.get(node, node)
    return node


def _media(
    raw: RawSegmentPlan,
    segment: dict[str, Any],
    material: dict[str, Any],
    extras: list[tuple[str, dict[str, Any]]],
    writer: DraftWriter,
) -> Any:
    """The media file probed and placed; every other file named inside is placed too.
    Returns the library's material of the media (None for text)."""
    probed = None
    if raw.category in ("videos", "audios"):
        assert raw.source is not None
        seg = SegmentPlan(
            loc=raw.loc,
            material_id=str(raw.material["id"]),
            material_name=str(raw.material["id"]),
            kind=KIND_OF_CATEGORY[raw.category],
            track=raw.track,
            source=raw.source,
            text=None,
            start=raw.start,
            duration=raw.duration,
        )
        probed = writer.material(seg)
        final = str(probed.path)
        for key in SOURCE_KEYS:
            if material.get(key):
                material[key] = ""
        material["path"] = final
        material["duration"] = int(probed.duration)
        if isinstance(probed, jy.VideoMaterial):
            material["width"], material["height"] = int(probed.width), int(probed.height)
            material["type"] = str(probed.material_type)
            material["local_material_id"] = probed.local_material_id
        else:
            entry = writer.entries[final]
            material["local_material_id"] = entry.id
            material.setdefault("type", "extract_music")
    for _, extra in extras:
        _place_files(extra, writer, raw)
    return probed


def _place_files(node: Any, writer: DraftWriter, raw: RawSegmentPlan) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SOURCE_KEYS and isinstance(value, str) and value:
                if value.startswith(PLACEHOLDER):
                    continue
                seg = SegmentPlan(
                    raw.loc, raw.label, raw.label, "photo", raw.track, value, None, None, None
                )
                _, node[key] = writer.place(writer.local_path(seg))
            else:
                _place_files(value, writer, raw)
    elif isinstance(node, list):
        for value in node:
            _place_files(value, writer, raw)


def _override(
    raw: RawSegmentPlan,
    segment: dict[str, Any],
    material: dict[str, Any],
    extras: list[tuple[str, dict[str, Any]]],
) -> None:
    """Timing (and a template item's values) on the copy; the media's length checked."""
    o = raw.overrides
    segment["target_timerange"] = {"start": raw.start, "duration": raw.duration}
    if "volume" in o:
        segment["volume"] = o["volume"]
        if o["volume"] > 0:
            segment["last_nonzero_volume"] = o["volume"]
    speed = float(segment.get("speed") or 1.0)
    if "speed" in o and o["speed"] is not None:
        speed = float(o["speed"])
        segment["speed"] = speed
        for category, extra in extras:
            if category == "speeds":
                extra["speed"] = speed
    clip = segment.get("clip")
    if any(k in o for k in ("x", "y", "scale")):
        if not isinstance(clip, dict):
            clip = segment["clip"] = jy.ClipSettings().export_json()
        if "scale" in o:
            clip["scale"] = {"x": o["scale"], "y": o["scale"]}
        transform = clip.setdefault("transform", {"x": 0.0, "y": 0.0})
        for axis in ("x", "y"):
            if axis in o:
                transform[axis] = o[axis]
    if raw.category == "texts":
        if "text" in o and o["text"] is not None:
            _set_text(material, str(o["text"]))
        return
    source = segment.get("source_timerange") or {"start": 0, "duration": raw.duration}
    if "source_start" in o:
        source["start"] = o["source_start"]
    if o.get("source_duration") is not None:
        source["duration"] = o["source_duration"]
    elif "speed" in o or raw.duration != raw.segment["target_timerange"]["duration"]:
        # A clone's new length plays as much of the media as its speed takes.
        source["duration"] = max(1, math.floor(raw.duration * speed))
    segment["source_timerange"] = source
    if material.get("type") != "photo":
        end = source["start"] + source["duration"]
        if end > material["duration"]:
            raise DraftBuildError(
                f"{raw.label} ({material['path']}): the segment plays the media up to "
                f"{end / 1e6:.2f}s, but the media holds {material['duration'] / 1e6:.2f}s"
            )


def _set_text(material: dict[str, Any], text: str) -> None:
    body = json.loads(material["content"])
    old = body.get("text", "")
    body["text"] = text
    for style in body.get("styles", []):
        if isinstance(style, dict) and style.get("range") in ([0, len(old)], None):
            style["range"] = [0, len(text)]
    material["content"] = json.dumps(body, ensure_ascii=False)
