"""The draft a job asks for, read from the request alone (no files needed).

Used twice: at submit, so everything checkable before downloading is refused with a JSON path,
and by the builder after downloading. Times in the request are seconds; here they become the
microseconds pyJianYingDraft counts in.
"""

from __future__ import annotations

import collections
import itertools
import math
import os
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from draftdl.drafts.profiles import read_profile
from draftdl.drafts.styles import SegmentStyle, read_style
from draftdl.errors import FieldProblem

if TYPE_CHECKING:
    from draftdl.drafts.raw_spec import RawSegmentPlan

SECOND = 1_000_000
DEFAULT_PICTURE_SECONDS = 3.0
DEFAULT_TEXT_SECONDS = 3.0
DEFAULT_CANVAS = (1920, 1080)
DEFAULT_FPS = 30

# Material type (DESIGN §3) → the kind of segment it becomes.
KIND_OF_TYPE = {
    "video": "video",
    "photo": "photo",
    "image": "photo",
    "picture": "photo",
    "audio": "audio",
    "music": "audio",
    "sound": "audio",
    "extract_music": "audio",
    "text": "text",
    "subtitle": "text",
}
CATEGORY_TYPE = {"videos": "video", "images": "photo", "audios": "audio", "texts": "text"}
TRACK_OF_KIND = {"video": "video", "photo": "video", "audio": "audio", "text": "text"}
EXTENSION_KIND = {
    **dict.fromkeys((".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".flv", ".gif"), "video"),
    **dict.fromkeys((".jpg", ".jpeg", ".png", ".webp", ".bmp", ".heic"), "photo"),
    **dict.fromkeys((".mp3", ".wav", ".aac", ".m4a", ".flac", ".ogg"), "audio"),
}
SOURCE_KEYS = ("path", "media_path", "material_url")
# What an item's ``data`` says besides its style (styles.STYLE_KEYS); any other key is a 422.
ITEM_KEYS = (
    "track",
    "start",
    "duration",
    "path",
    "text",
    "volume",
    "speed",
    "x",
    "y",
    "scale",
    "source_start",
    "source_duration",
    "ext",  # the original server's extension hint: accepted, unused (the task's warnings)
)
SUBTITLE_TYPE = "subtitle"  # an item of this type with data.srt imports SRT subtitles
SUBTITLE_KEYS = ("srt", "track", "start")
SRT_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://\S+$")
SUBTITLE_STYLE = {"size": 5, "align": 1, "auto_wrapping": True}  # the library's import default
STYLE_TARGET_KEYS = ("id", "material_id", "segment_id")  # names the target in a list entry

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Canvas:
    width: int
    height: int
    fps: float  # as asked (29.97); the library times segments on the whole number nearest


@dataclass(frozen=True)
class TrackPlan:
    key: str
    kind: str  # video, audio, text
    name: str


@dataclass
class SegmentPlan:
    loc: Loc  # the item, for messages
    material_id: str
    material_name: str
    kind: str  # video, photo, audio, text
    track: str
    source: str | None  # a URL (→ downloaded file) or a local path; None for text
    text: str | None
    start: int | None  # None: right after the track's previous segment (known after probing)
    duration: int | None
    source_start: int = 0
    source_duration: int | None = None
    speed: float | None = None
    volume: float = 1.0
    scale: float = 1.0
    x: float = 0.0
    y: float = 0.0
    style: SegmentStyle = field(default_factory=SegmentStyle)


@dataclass
class SubtitlePlan:
    """An SRT file imported onto a text track (``ScriptFile.import_srt``)."""

    loc: Loc
    track: str
    url: str | None  # downloaded before the build
    text: str | None  # or the SRT itself
    offset: int  # µs added to every cue
    style: SegmentStyle = field(default_factory=SegmentStyle)


@dataclass
class DraftPlan:
    title: str
    canvas: Canvas
    config: dict[str, Any]
    tracks: list[TrackPlan] = field(default_factory=list)
    segments: list[SegmentPlan] = field(default_factory=list)
    profile: str | None = None  # draft_config.profile; None: the draft_profile setting
    raw: list[RawSegmentPlan] = field(default_factory=list)  # raw (template) mode
    subtitles: list[SubtitlePlan] = field(default_factory=list)


MAX_NUMBER = 1e7  # bigger times, sizes or factors are mistakes, and overflow microseconds


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and abs(number) <= MAX_NUMBER else None


def _positive_int(value: Any) -> int | None:
    number = _number(value)
    if number is None or number <= 0 or number != int(number):
        return None
    return int(number)


def read_canvas(body: dict[str, Any], problems: list[FieldProblem]) -> Canvas:
    """Every shape clients send: canvas_config (two spellings), flat, or top level."""
    config = body.get("draft_config") if isinstance(body.get("draft_config"), dict) else {}
    assert isinstance(config, dict)
    canvas = config.get("canvas_config") if isinstance(config.get("canvas_config"), dict) else {}
    assert isinstance(canvas, dict)
    candidates: list[tuple[Loc, Any, Any]] = [
        (
            ("draft_config", "canvas_config", "canvas_width"),
            canvas.get("canvas_width"),
            canvas.get("canvas_height"),
        ),
        (("draft_config", "canvas_config", "width"), canvas.get("width"), canvas.get("height")),
        (("draft_config", "canvas_width"), config.get("canvas_width"), config.get("canvas_height")),
        (("canvas_width",), body.get("canvas_width"), body.get("canvas_height")),
    ]
    width, height = DEFAULT_CANVAS
    for loc, w, h in candidates:
        if w is None and h is None:
            continue
        pw, ph = _positive_int(w), _positive_int(h)
        if pw is None or ph is None or pw > 16384 or ph > 16384:
            problems.append(
                FieldProblem(loc, "canvas width and height must be whole numbers from 1 to 16384")
            )
        else:
            width, height = pw, ph
        break
    fps: float = DEFAULT_FPS
    for loc, value in ((("draft_config", "fps"), config.get("fps")), (("fps",), body.get("fps"))):
        if value is None:
            continue
        number = _number(value)
        if number is None or not 1 <= number <= 240:
            problems.append(FieldProblem(loc, "fps must be a number from 1 to 240"))
        else:
            fps = float(number)
        break
    return Canvas(width, height, fps)


def material_kind(material: dict[str, Any], category: str | None) -> str | None:
    mtype = material.get("type")
    if isinstance(mtype, str) and mtype.lower() in KIND_OF_TYPE:
        return KIND_OF_TYPE[mtype.lower()]
    if category in CATEGORY_TYPE:
        return KIND_OF_TYPE[CATEGORY_TYPE[category]]
    for key in SOURCE_KEYS:
        value = material.get(key)
        if isinstance(value, str) and value:
            ext = os.path.splitext(value.split("?", 1)[0])[1].lower()
            if ext in EXTENSION_KIND:
                return EXTENSION_KIND[ext]
    return None


def iter_materials(materials: Any) -> list[tuple[Loc, Any, str | None]]:
    """Both accepted shapes, as (loc, material, category) — a list, or lists by category."""
    if isinstance(materials, list):
        return [(("materials", i), m, None) for i, m in enumerate(materials)]
    if isinstance(materials, dict):
        out: list[tuple[Loc, Any, str | None]] = []
        for category, items in materials.items():
            if isinstance(items, list):
                out += [(("materials", category, i), m, category) for i, m in enumerate(items)]
        return out
    return []


def materials_by_id(materials: Any) -> dict[str, tuple[dict[str, Any], str | None]]:
    return {
        str(m["id"]): (m, category)
        for _, m, category in iter_materials(materials)
        if isinstance(m, dict) and m.get("id") is not None
    }


def plan_draft(body: dict[str, Any], problems: list[FieldProblem]) -> DraftPlan:
    """Reads tracks and items into segments; appends what is wrong to ``problems``."""
    materials = materials_by_id(body.get("materials", []))
    group = body.get("ruleGroup") if isinstance(body.get("ruleGroup"), dict) else {}
    assert isinstance(group, dict)
    title = str(group.get("title") or group.get("id") or "draft")
    config = body.get("draft_config") if isinstance(body.get("draft_config"), dict) else {}
    assert isinstance(config, dict)
    extra_config = config.get("config", {})
    if not isinstance(extra_config, dict):
        problems.append(FieldProblem(("draft_config", "config"), "must be an object"))
        extra_config = {}
    plan = DraftPlan(title, read_canvas(body, problems), dict(extra_config))
    plan.profile = read_profile(config, problems)

    rules: dict[str, list[str]] = {}
    for rule in group.get("rules") or []:
        if isinstance(rule, dict) and isinstance(rule.get("type"), str):
            ids = rule.get("material_ids") or []
            # Two rules of one type: their materials add up, in order.
            rules.setdefault(rule["type"], []).extend(str(m) for m in ids if str(m) in materials)

    test_data = body.get("testData") if isinstance(body.get("testData"), dict) else {}
    assert isinstance(test_data, dict)
    _plan_tracks(plan, test_data.get("tracks"), problems)
    declared = {t.key: t for t in plan.tracks}
    has_tracks = bool(plan.tracks)

    items = test_data.get("items") if isinstance(test_data.get("items"), list) else []
    assert isinstance(items, list)
    styles = StyleBook(body, materials, problems)
    # The latest end on each track, while every segment on it has known times (else None):
    # an item without a start goes there, and can then be checked for overlaps too.
    track_end: dict[str, int | None] = {}
    for i, item in enumerate(items):
        loc: Loc = ("testData", "items", i)
        if is_subtitle_item(item):
            _plan_subtitle(plan, declared, item["data"], (*loc, "data"), problems)
            continue
        if not isinstance(item, dict) or item.get("type") not in rules:
            continue  # reported by the job's own checks
        data = item.get("data") if isinstance(item.get("data"), dict) else {}
        assert isinstance(data, dict)
        times = _read_times(data, (*loc, "data"), problems)
        if times is None:
            continue
        # Several materials in one rule play one after another from the item's start.
        next_start: int | None = times["start"]
        for position, mid in enumerate(rules[item["type"]]):
            material, category = materials[mid]
            kind = material_kind(material, category)
            track_key = data.get("track")
            if track_key is not None:
                track_key = str(track_key)
                if has_tracks and track_key not in declared:
                    ids = list(declared)
                    known = ", ".join(ids[:10]) + (
                        f" and {len(ids) - 10} more" if len(ids) > 10 else ""
                    )
                    known = known or "none"
                    problems.append(
                        FieldProblem(
                            (*loc, "data", "track"),
                            f"no track with id {track_key!r} in testData.tracks (known: {known})",
                            "value_error.track",
                        )
                    )
                    break
            if kind is None and track_key in declared:
                kind = declared[track_key].kind
            if kind is None:
                problems.append(
                    FieldProblem(
                        (*loc, "type"),
                        f"material {mid!r} has no type (video, photo, audio or text) and "
                        "none can be told from its track or file name",
                        "value_error.material_type",
                    )
                )
                break
            wanted = TRACK_OF_KIND[kind]
            track_key = track_key or wanted  # else a track of the segment's own kind
            if track_key not in declared:
                declared[track_key] = TrackPlan(track_key, wanted, track_key)
                plan.tracks.append(declared[track_key])
            track = declared[track_key]
            if track.kind != wanted:
                problems.append(
                    FieldProblem(
                        (*loc, "data", "track"),
                        f"material {mid!r} is {kind} but track {track_key!r} is a "
                        f"{track.kind} track",
                        "value_error.track_type",
                    )
                )
                break
            source = _source_of(data, material)
            if source is None and kind != "text":
                problems.append(
                    FieldProblem(
                        (*loc, "type"),
                        f"material {mid!r} is {kind} but names no file "
                        "(path, media_path or material_url)",
                        "value_error.material_source",
                    )
                )
                break
            text = None
            if kind == "text":
                raw = data.get("text") or material.get("text") or material.get("name") or mid
                text = str(raw)
            start = next_start
            if position == 0 and start is None:
                start = track_end.get(track_key, 0)
            duration = times["duration"]
            if duration is None and kind == "photo":
                duration = round(DEFAULT_PICTURE_SECONDS * SECOND)
            if duration is None and kind == "text":
                duration = round(DEFAULT_TEXT_SECONDS * SECOND)
            segment = SegmentPlan(
                loc=loc,
                material_id=mid,
                material_name=str(material.get("name") or mid),
                kind=kind,
                track=track_key,
                source=source,
                text=text,
                start=start,
                duration=duration,
                source_start=times["source_start"] or 0,
                source_duration=times["source_duration"],
                speed=times["speed"],
                volume=times["volume"],
                scale=times["scale"],
                x=times["x"],
                y=times["y"],
            )
            _style_segment(segment, styles, data, (*loc, "data"))
            plan.segments.append(segment)
            next_start = None if start is None or duration is None else start + duration
            if track_end.get(track_key, 0) is not None:
                end = track_end.get(track_key) or 0
                track_end[track_key] = None if next_start is None else max(end, next_start)
    styles.check_unused()
    from draftdl.drafts.raw_spec import plan_raw  # raw (template) mode; imports this module

    plan_raw(body, plan, problems)
    _check_overlaps(plan, problems)
    return plan


def is_subtitle_item(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and item.get("type") == SUBTITLE_TYPE
        and isinstance(item.get("data"), dict)
        and "srt" in item["data"]
    )


def is_srt_url(value: Any) -> bool:
    """``data.srt`` holds a URL (downloaded like media; any scheme, so a wrong one is refused
    by name) or the SRT text itself."""
    return isinstance(value, str) and SRT_URL.match(value) is not None


class StyleBook:
    """``segment_styles``, read once per target: ``{"<material or raw segment id>": {style}}``,
    or a list of ``{"material_id" | "segment_id" | "id": ..., style}``. Each entry is read for
    the kind of segment its material makes (DESIGN §3); a target that names nothing is a 422."""

    def __init__(
        self,
        body: dict[str, Any],
        materials: dict[str, tuple[dict[str, Any], str | None]],
        problems: list[FieldProblem],
    ) -> None:
        self.problems = problems
        self.materials = materials
        self.entries: dict[str, tuple[Loc, dict[str, Any]]] = {}
        self.read: dict[tuple[str, str], SegmentStyle] = {}
        self.raw_ids = _raw_segment_ids(body)
        raw = body.get("segment_styles")
        loc: Loc = ("segment_styles",)
        if raw is None:
            return
        if isinstance(raw, dict):
            for key, entry in raw.items():
                self._add(str(key), (*loc, str(key)), entry, ())
        elif isinstance(raw, list):
            for i, entry in enumerate(raw):
                target = None
                if isinstance(entry, dict):
                    named = [k for k in STYLE_TARGET_KEYS if entry.get(k) is not None]
                    if len(named) != 1:
                        problems.append(
                            FieldProblem(
                                (*loc, i),
                                "names its target with exactly one of material_id, segment_id "
                                "or id",
                                "missing",
                            )
                        )
                        continue
                    target = str(entry[named[0]])
                self._add(target or "", (*loc, i), entry, STYLE_TARGET_KEYS)
        else:
            problems.append(
                FieldProblem(loc, "must be an object of styles by material id, or a list")
            )

    def _add(self, key: str, loc: Loc, entry: Any, handled: tuple[str, ...]) -> None:
        if not isinstance(entry, dict):
            self.problems.append(FieldProblem(loc, "must be an object (a style)", "type_error"))
            return
        if key in self.entries:
            self.problems.append(FieldProblem(loc, f"a second style for {key!r}"))
            return
        self.entries[key] = (loc, {k: v for k, v in entry.items() if k not in handled})

    def style(self, material_id: str, kind: str) -> SegmentStyle:
        """The style of the material's segments of ``kind`` (empty when none is given)."""
        found = self.entries.get(material_id)
        if found is None:
            return SegmentStyle()
        if (material_id, kind) not in self.read:
            loc, entry = found
            problems: list[FieldProblem] = []
            self.read[(material_id, kind)] = read_style(entry, loc, kind, problems)
            self.problems.extend(p for p in problems if p not in self.problems)
        return self.read[(material_id, kind)]

    def check_unused(self) -> None:
        """Entries for materials no item uses are still checked; unknown targets are 422s."""
        for key, (loc, _) in self.entries.items():
            if key in self.materials:
                material, category = self.materials[key]
                self.style(key, material_kind(material, category) or "video")
            elif key not in self.raw_ids:
                self.problems.append(
                    FieldProblem(
                        loc,
                        f"no material or raw segment with id {key!r}",
                        "value_error.style_target",
                    )
                )


def _raw_segment_ids(body: dict[str, Any]) -> set[str]:
    raw = body.get("raw_segments")
    out: set[str] = set()
    for entry in raw if isinstance(raw, list) else []:
        segment = entry.get("segment") if isinstance(entry, dict) else None
        if isinstance(segment, dict):  # styled by its segment id or its material's
            for key in ("id", "material_id"):
                if segment.get(key) is not None:
                    out.add(str(segment[key]))
        if isinstance(entry, dict) and entry.get("material_id") is not None:
            out.add(str(entry["material_id"]))
    return out


def _style_segment(segment: SegmentPlan, styles: StyleBook, data: dict[str, Any], loc: Loc) -> None:
    """segment_styles for the material, then the item's own style keys on top; the item's
    volume, scale, x and y win over the style's."""
    problems: list[FieldProblem] = []
    own = read_style(data, loc, segment.kind, problems, handled=ITEM_KEYS)
    styles.problems.extend(p for p in problems if p not in styles.problems)
    style = own.over(styles.style(segment.material_id, segment.kind))
    if style.volume is not None:
        if "volume" not in data:
            segment.volume = style.volume
        style = replace(style, volume=None)
    taken = {"scale": ("scale_x", "scale_y"), "x": ("transform_x",), "y": ("transform_y",)}
    drop = {k for key, keys in taken.items() if key in data for k in keys}
    if drop & set(style.clip):
        style = replace(style, clip={k: v for k, v in style.clip.items() if k not in drop})
    segment.style = style


def _plan_subtitle(
    plan: DraftPlan,
    declared: dict[str, TrackPlan],
    data: dict[str, Any],
    loc: Loc,
    problems: list[FieldProblem],
) -> None:
    style = read_style(
        {k: v for k, v in data.items() if k not in ("animations", "keyframes")},
        loc,
        "text",
        problems,
        handled=SUBTITLE_KEYS,
    )
    for key in ("animations", "keyframes"):
        if key in data:
            problems.append(
                FieldProblem(
                    (*loc, key), f"subtitles take no {key} (the SRT sets each cue's times)"
                )
            )
    srt = data.get("srt")
    url = text = None
    if is_srt_url(srt):
        url = srt
    elif isinstance(srt, str) and "-->" in srt:
        text = srt
    else:
        problems.append(
            FieldProblem(
                (*loc, "srt"),
                'must be an http(s) URL of an SRT file, or SRT text (cues with "-->")',
                "value_error.srt",
            )
        )
    offset = 0
    if data.get("start") is not None:
        number = _number(data["start"])
        if number is None or number < 0:
            problems.append(
                FieldProblem(
                    (*loc, "start"), "must be a number of seconds 0 or more", "value_error.time"
                )
            )
        else:
            offset = round(number * SECOND)
    key = str(data["track"]) if data.get("track") is not None else "text"
    track = declared.get(key)
    if track is None:
        if data.get("track") is not None and any(t for t in declared):
            ids = ", ".join(declared) or "none"
            problems.append(
                FieldProblem(
                    (*loc, "track"),
                    f"no track with id {key!r} in testData.tracks (known: {ids})",
                    "value_error.track",
                )
            )
            return
        track = declared[key] = TrackPlan(key, "text", key)
        plan.tracks.append(track)
    if track.kind != "text":
        problems.append(
            FieldProblem(
                (*loc, "track"),
                f"subtitles go on a text track; {key!r} is a {track.kind} track",
                "value_error.track_type",
            )
        )
        return
    plan.subtitles.append(SubtitlePlan(loc, key, url, text, offset, style))


def _plan_tracks(plan: DraftPlan, tracks: Any, problems: list[FieldProblem]) -> None:
    if not isinstance(tracks, list):
        return
    entries: list[tuple[float, float, int, TrackPlan]] = []
    names: set[str] = set()
    for i, track in enumerate(tracks):
        if not isinstance(track, dict):
            continue
        loc: Loc = ("testData", "tracks", i)
        key = track.get("id")
        if not isinstance(key, str | int) or isinstance(key, bool) or key == "":
            problems.append(FieldProblem((*loc, "id"), "must be a non-empty string", "missing"))
            continue
        ttype = str(track.get("type") or "").lower()
        kind = TRACK_OF_KIND.get(KIND_OF_TYPE.get(ttype, ttype))
        if kind is None:
            problems.append(FieldProblem((*loc, "type"), "track type must be video, audio or text"))
            continue
        name = str(track.get("title") or key)
        if name in names:
            name = f"{name} ({key})"
        names.add(name)
        indexes = []
        for field_name in ("absolute_index", "relative_index"):
            value = track.get(field_name)
            if value is not None and _number(value) is None:
                problems.append(FieldProblem((*loc, field_name), "must be a number"))
            indexes.append(_number(value))
        absolute, relative = indexes
        # Layer order: absolute_index where given, else list order; relative_index orders
        # tracks of one type among themselves. Later in the list = higher layer.
        entries.append(
            (absolute if absolute is not None else float(i), relative or 0.0, i,
             TrackPlan(str(key), kind, name))
        )  # fmt: skip
    counts = collections.Counter(e[3].key for e in entries)
    for key in (k for k, n in counts.items() if n > 1):
        problems.append(FieldProblem(("testData", "tracks"), f"track id {key!r} is used twice"))
    entries.sort(key=lambda e: (e[0], e[1], e[2]))
    plan.tracks.extend(e[3] for e in entries)


def _read_times(
    data: dict[str, Any], loc: Loc, problems: list[FieldProblem]
) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    ok = True
    for key in ("start", "duration", "source_start", "source_duration"):
        value = data.get(key)
        if value is None:
            out[key] = None
            continue
        number = _number(value)
        if number is None or number < 0 or (key.endswith("duration") and number == 0):
            rule = "greater than 0" if key.endswith("duration") else "0 or more"
            problems.append(
                FieldProblem((*loc, key), f"must be a number of seconds {rule}", "value_error.time")
            )
            ok = False
            continue
        out[key] = round(number * SECOND)
        if key.endswith("duration") and out[key] < 1:
            problems.append(
                FieldProblem((*loc, key), "must be at least one microsecond", "value_error.time")
            )
            ok = False
    for key, default, low in (("volume", 1.0, 0.0), ("scale", 1.0, 0.0), ("speed", None, 0.0)):
        value = data.get(key)
        if value is None:
            out[key] = default
            continue
        number = _number(value)
        if number is None or number < low or (key != "volume" and number == 0):
            problems.append(FieldProblem((*loc, key), f"{key} must be a positive number"))
            ok = False
            continue
        out[key] = number
    for key in ("x", "y"):
        value = data.get(key, 0.0)
        number = _number(value)
        if number is None:
            problems.append(FieldProblem((*loc, key), "must be a number"))
            ok = False
            continue
        out[key] = number
    if out.get("speed") is not None and not 0.1 <= out["speed"] <= 100:
        problems.append(FieldProblem((*loc, "speed"), "speed must be from 0.1 to 100"))
        ok = False
    return out if ok else None


def _source_of(data: dict[str, Any], material: dict[str, Any]) -> str | None:
    """data.path, then the material's path, media_path, material_url (DESIGN §6)."""
    value = data.get("path")
    if isinstance(value, str) and value:
        return value
    for key in SOURCE_KEYS:
        value = material.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _check_overlaps(plan: DraftPlan, problems: list[FieldProblem]) -> None:
    """Segments whose times the request fixes must not overlap on their track."""
    by_track: dict[str, list[SegmentPlan]] = {}
    for seg in plan.segments:
        if seg.start is not None and seg.duration is not None:
            by_track.setdefault(seg.track, []).append(seg)
    for segs in by_track.values():
        segs.sort(key=lambda s: s.start or 0)
        for before, after in itertools.pairwise(segs):
            assert before.start is not None and before.duration is not None
            if (after.start or 0) < before.start + before.duration:
                problems.append(
                    FieldProblem(
                        after.loc,
                        f"overlaps the segment of material {before.material_id!r} on track "
                        f"{after.track!r} (it starts before that one ends)",
                        "value_error.overlap",
                    )
                )
