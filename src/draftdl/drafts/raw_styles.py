"""``segment_styles`` on a raw segment (JianYing JSON, not a library object).

The style is put with ``styles.apply_style`` on a throwaway pyJianYingDraft segment of the
same kind and timing (its media the file the raw writer probed, its text the raw text), that
segment is dumped by a throwaway script, and what the style produced is merged into the raw
copy, exactly as the library wrote it:

- segment fields: the clip keys the style sets, ``volume``, the keyframe lists of the
  properties it animates (a raw list of the same property is replaced), ``uniform_scale``
  when it animates scale_x / scale_y;
- extra materials (fades, animations, transitions, filters, video effects, bubbles, 花字):
  the library's, under its fresh ids, added to the segment's refs; a raw extra material of a
  category the style writes (its animations, its fade, its transition) is replaced, not kept
  beside it;
- a text style: the content style fields it sets (fill, size, bold, italic, underline,
  font, strokes, shadows, effectStyle) in every style range of the raw text, and the
  material fields (alignment, spacing, line width, alpha, vertical, background, check_flag
  bits) it sets.

Keys the style does not set stay as the raw segment has them.
"""

from __future__ import annotations

import json
from typing import Any

import pyJianYingDraft as jy

from draftdl.drafts.draft_json import script_content
from draftdl.drafts.styles import SegmentStyle, apply_style

Extras = list[tuple[str, dict[str, Any]]]

# SegmentStyle.clip key → path in the segment's clip JSON
CLIP_PATHS = {
    "alpha": ("alpha",),
    "rotation": ("rotation",),
    "scale_x": ("scale", "x"),
    "scale_y": ("scale", "y"),
    "transform_x": ("transform", "x"),
    "transform_y": ("transform", "y"),
    "flip_horizontal": ("flip", "horizontal"),
    "flip_vertical": ("flip", "vertical"),
}
# text style key → (field of a content style, or None; field of the text material, or None)
TEXT_FIELDS: dict[str, tuple[str | None, str | None]] = {
    "color": ("fill", None),
    "size": ("size", None),
    "bold": ("bold", None),
    "italic": ("italic", None),
    "underline": ("underline", None),
    "alpha": (None, "global_alpha"),
    "align": (None, "alignment"),
    "vertical": (None, "typesetting"),
    "letter_spacing": (None, "letter_spacing"),
    "line_spacing": (None, "line_spacing"),
    "max_line_width": (None, "line_max_width"),
    "auto_wrapping": (None, "type"),
}
CHECK_BORDER, CHECK_BACKGROUND, CHECK_SHADOW = 8, 16, 32


def style_raw(
    segment: dict[str, Any],
    material: dict[str, Any],
    extras: Extras,
    style: SegmentStyle,
    kind: str,
    probed: Any,
) -> None:
    """Merges ``style`` into the raw copy (``segment``, its ``material`` and ``extras``, in
    place). ``kind``: video, audio or text; ``probed``: the library's material of the media
    (None for text)."""
    if not style:
        return
    start = int(segment["target_timerange"]["start"])
    duration = int(segment["target_timerange"]["duration"])
    target = jy.Timerange(start, duration)
    if kind == "text":
        body = json.loads(material["content"])
        thing: Any = jy.TextSegment(str(body.get("text", "")), target)
    else:
        still = getattr(probed, "material_type", None) == "photo"
        length = duration if still else min(duration, probed.duration)
        source = jy.Timerange(0, max(1, length))
        cls = jy.AudioSegment if kind == "audio" else jy.VideoSegment
        thing = cls(probed, target, source_timerange=source)
    apply_style(thing, style)
    script = jy.ScriptFile(1920, 1080, 30, True)
    ref = script.append_track(jy.TrackSpec(jy.TrackType[kind]))
    script.add_segment(thing, ref)
    dumped = script_content(script)
    made = dumped["tracks"][0]["segments"][0]
    by_id = {
        m["id"]: (category, m)
        for category, items in dumped["materials"].items()
        if isinstance(items, list)
        for m in items
        if isinstance(m, dict) and "id" in m
    }
    _segment_fields(segment, made, style)
    new: Extras = [
        by_id[r]
        for r in made.get("extra_material_refs") or []
        if r in by_id and by_id[r][0] != "speeds"  # the raw segment keeps its own speed
    ]
    replaced = {category for category, _ in new}
    kept = [(c, e) for c, e in extras if c not in replaced]
    extras[:] = kept + new
    segment["extra_material_refs"] = [e["id"] for _, e in extras]
    if kind == "text":
        _text_fields(material, by_id[made["material_id"]][1], style)


def _segment_fields(segment: dict[str, Any], made: dict[str, Any], style: SegmentStyle) -> None:
    if style.clip:
        clip = segment.get("clip")
        if not isinstance(clip, dict):
            clip = segment["clip"] = jy.ClipSettings().export_json()
        for key in style.clip:
            path = CLIP_PATHS[key]
            node = clip
            for part in path[:-1]:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
            value: Any = made["clip"]
            for part in path:
                value = value[part]
            node[path[-1]] = value
    if style.volume is not None:
        segment["volume"] = made["volume"]
        if made["volume"] > 0:
            segment["last_nonzero_volume"] = made["volume"]
    if style.keyframes:
        frames = list(made.get("common_keyframes") or [])
        animated = {f["property_type"] for f in frames}
        own = [
            f
            for f in segment.get("common_keyframes") or []
            if not (isinstance(f, dict) and f.get("property_type") in animated)
        ]
        segment["common_keyframes"] = own + frames
        if animated & {"KFTypeScaleX", "KFTypeScaleY"} and "uniform_scale" in made:
            segment["uniform_scale"] = made["uniform_scale"]


def _text_fields(material: dict[str, Any], made: dict[str, Any], style: SegmentStyle) -> None:
    mine = json.loads(made["content"])["styles"][0]
    content_keys: list[str] = []
    material_keys: list[str] = []
    for key in style.text:
        in_content, in_material = TEXT_FIELDS[key]
        if in_content:
            content_keys.append(in_content)
        if in_material:
            material_keys.append(in_material)
    if style.font is not None:
        content_keys.append("font")
    if style.text_effect is not None:
        content_keys.append("effectStyle")
    flags = 0
    if style.border is not None:
        content_keys.append("strokes")
        flags |= CHECK_BORDER
    if style.shadow is not None:
        content_keys.append("shadows")
        flags |= CHECK_SHADOW
    if style.background is not None:
        material_keys += [k for k in made if k.startswith("background_")]
        flags |= CHECK_BACKGROUND
    body = json.loads(material["content"])
    ranges = body.get("styles")
    if not isinstance(ranges, list) or not ranges:
        ranges = body["styles"] = [{**mine, "range": [0, len(str(body.get("text", "")))]}]
    for entry in ranges:
        if isinstance(entry, dict):
            for key in content_keys:
                entry[key] = json.loads(json.dumps(mine[key]))
    material["content"] = json.dumps(body, ensure_ascii=False)
    for key in material_keys:
        material[key] = made[key]
    if flags:
        check = material.get("check_flag")
        base = check if isinstance(check, int) and not isinstance(check, bool) else 7
        material["check_flag"] = base | flags
