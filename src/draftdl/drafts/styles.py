"""The style vocabulary of a segment: text style, font, border, background, shadow, 花字,
fades, animations, transitions, filters, video effects, keyframes, clip and volume.

Two halves, so every mode shares them (normal items, ``segment_styles``, raw segments):

- ``read_style(data, loc, kind, problems)`` is pure: it reads one style object (a test item's
  ``data`` or a ``segment_styles`` entry), checks every key and value, and appends what is wrong
  to ``problems`` with its JSON path (an unknown key or an unknown effect name is a problem,
  with close matches). It returns a ``SegmentStyle``; names are already the library's enum
  members, times already µs.
- ``apply_style(segment, style)`` puts a ``SegmentStyle`` on a pyJianYingDraft segment
  (``TextSegment``, ``VideoSegment`` or ``AudioSegment``) before it is added to the script:
  the library then writes the materials itself (``ScriptFile.add_segment``).

Times are seconds by default (``testData``, ``segment_styles``); raw segments pass
``unit=1`` for µs. Colours are ``"#RRGGBB"`` or ``[r, g, b]`` with each part from 0 to 1.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import pyJianYingDraft as jy

from draftdl.errors import FieldProblem

Loc = tuple[str | int, ...]
SECOND = 1_000_000
MAX_TIME_US = 10**13  # anything longer is a mistake (and overflows what JianYing reads)

KINDS = ("video", "photo", "audio", "text")
VISUAL = ("video", "photo", "text")
MEDIA = ("video", "photo", "audio")
PICTURE = ("video", "photo")

# text style field → (what it takes, check)
TEXT_STYLE_KEYS = (
    "size",
    "bold",
    "italic",
    "underline",
    "color",
    "alpha",
    "align",
    "vertical",
    "letter_spacing",
    "line_spacing",
    "auto_wrapping",
    "max_line_width",
)
ALIGN = {"left": 0, "center": 1, "centre": 1, "right": 2}
BORDER_KEYS = ("color", "alpha", "width")
BACKGROUND_KEYS = (
    "color",
    "style",
    "alpha",
    "round_radius",
    "height",
    "width",
    "horizontal_offset",
    "vertical_offset",
)
SHADOW_KEYS = ("color", "alpha", "diffuse", "distance", "angle")
CLIP_KEYS = (
    "alpha",
    "rotation",
    "scale_x",
    "scale_y",
    "x",
    "y",
    "flip_horizontal",
    "flip_vertical",
)
KEYFRAME_PROPERTIES = {
    "position_x": ("KFTypePositionX", VISUAL),
    "position_y": ("KFTypePositionY", VISUAL),
    "rotation": ("KFTypeRotation", VISUAL),
    "scale_x": ("KFTypeScaleX", VISUAL),
    "scale_y": ("KFTypeScaleY", VISUAL),
    "uniform_scale": ("UNIFORM_SCALE", VISUAL),
    "alpha": ("KFTypeAlpha", PICTURE),
    "saturation": ("KFTypeSaturation", PICTURE),
    "contrast": ("KFTypeContrast", PICTURE),
    "brightness": ("KFTypeBrightness", PICTURE),
    "volume": ("KFTypeVolume", MEDIA),
}

# Every style key, and the segment kinds it applies to.
STYLE_KEYS: dict[str, tuple[str, ...]] = {
    "font": ("text",),
    "style": ("text",),
    "color": ("text",),  # shortcuts into "style"
    "size": ("text",),
    "alignment": ("text",),
    "border": ("text",),
    "stroke": ("text",),  # the same as "border"
    "background": ("text",),
    "shadow": ("text",),
    "bubble": ("text",),
    "text_effect": ("text",),
    "fade": MEDIA,
    "animations": VISUAL,
    "transition": PICTURE,
    "filters": PICTURE,
    "effects": PICTURE,
    "keyframes": KINDS,
    "clip": VISUAL,
    "volume": MEDIA,
}


@dataclass(frozen=True)
class Animation:
    slot: str  # intro, outro, group (video), loop (text)
    member: Any  # IntroType, OutroType, GroupAnimationType, TextIntro, TextOutro, TextLoopAnim
    duration: int | None  # µs; None: the animation's own


@dataclass(frozen=True)
class Filter:
    member: Any  # FilterType
    intensity: float  # 0-100


@dataclass(frozen=True)
class Effect:
    member: Any  # VideoSceneEffectType or VideoCharacterEffectType
    params: tuple[float | None, ...]  # 0-100 each, None: the default


@dataclass(frozen=True)
class Keyframe:
    prop: str  # a KEYFRAME_PROPERTIES key
    time: int  # µs from the segment's start
    value: float


@dataclass(frozen=True)
class SegmentStyle:
    """What a style object asked for; ``None`` / empty: not asked (the library's default)."""

    text: Mapping[str, Any] = field(default_factory=dict)  # TextStyle keyword arguments
    font: Any = None  # FontType
    border: Mapping[str, Any] | None = None  # TextBorder keyword arguments
    background: Mapping[str, Any] | None = None  # TextBackground keyword arguments
    shadow: Mapping[str, Any] | None = None  # TextShadow keyword arguments
    bubble: tuple[str, str] | None = None  # (effect_id, resource_id)
    text_effect: str | None = None  # 花字 effect_id
    fade: tuple[int, int] | None = None  # (in, out) µs
    animations: tuple[Animation, ...] = ()
    transition: tuple[Any, int | None] | None = None  # (TransitionType, µs or None)
    filters: tuple[Filter, ...] = ()
    effects: tuple[Effect, ...] = ()
    keyframes: tuple[Keyframe, ...] = ()
    clip: Mapping[str, Any] = field(default_factory=dict)  # ClipSettings keyword arguments
    volume: float | None = None

    def __bool__(self) -> bool:
        return self != SegmentStyle()

    def over(self, base: SegmentStyle) -> SegmentStyle:
        """This style on top of ``base``: what this one sets wins, field by field (text style
        and clip key by key); lists (animations, filters, effects, keyframes) are replaced."""
        fields: dict[str, Any] = {}
        for name in SegmentStyle.__dataclass_fields__:
            mine, theirs = getattr(self, name), getattr(base, name)
            if name in ("text", "clip"):
                fields[name] = {**theirs, **mine}
            else:
                fields[name] = theirs if mine in (None, ()) else mine
        return SegmentStyle(**fields)


class _Reader:
    def __init__(self, problems: list[FieldProblem], unit: int) -> None:
        self.problems = problems
        self.unit = unit
        self.ok = True

    def fail(self, loc: Loc, msg: str, kind: str = "value_error.style") -> None:
        self.problems.append(FieldProblem(loc, msg, kind))
        self.ok = False

    def obj(self, value: Any, loc: Loc, keys: Collection[str]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(loc, "must be an object", "type_error")
            return None
        for key in value:
            if key not in keys:
                self.unknown((*loc, str(key)), str(key), keys)
        return {k: v for k, v in value.items() if k in keys}

    def unknown(self, loc: Loc, key: str, keys: Collection[str]) -> None:
        close = difflib.get_close_matches(key, list(keys), n=3, cutoff=0.6)
        hint = f"; did you mean {_or(close)}?" if close else f" (known: {', '.join(keys)})"
        self.fail(loc, f"unknown key {key!r}: the builder does not use it{hint}", "value_error.key")

    def number(
        self, value: Any, loc: Loc, low: float | None = None, high: float | None = None
    ) -> float | None:
        number = _number(value)
        if (
            number is None
            or (low is not None and number < low)
            or (high is not None and number > high)
        ):
            bounds = _bounds(low, high)
            self.fail(loc, f"must be a number{bounds}", "value_error.number")
            return None
        return number

    def flag(self, value: Any, loc: Loc) -> bool | None:
        if not isinstance(value, bool):
            self.fail(loc, "must be true or false", "type_error")
            return None
        return value

    def time(self, value: Any, loc: Loc, *, positive: bool = False) -> int | None:
        unit = "seconds" if self.unit == SECOND else "microseconds"
        number = _number(value)
        if number is None or number < 0 or (positive and number == 0):
            rule = "greater than 0" if positive else "0 or more"
            self.fail(loc, f"must be a number of {unit} {rule}", "value_error.time")
            return None
        us = round(number * self.unit)
        if us > MAX_TIME_US:
            self.fail(loc, f"must be a number of {unit} of at most {MAX_TIME_US // self.unit}")
            return None
        return us

    def color(self, value: Any, loc: Loc) -> tuple[float, float, float] | None:
        if isinstance(value, str) and re.fullmatch(r"#[0-9A-Fa-f]{6}", value):
            return tuple(int(value[i : i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]
        if (
            isinstance(value, list)
            and len(value) == 3
            and all((n := _number(v)) is not None and 0 <= n <= 1 for v in value)
        ):
            return (float(value[0]), float(value[1]), float(value[2]))
        self.fail(loc, 'must be a colour: "#RRGGBB" or [r, g, b] with each from 0 to 1')
        return None

    def name(self, value: Any, loc: Loc, enums: tuple[type[Enum], ...], what: str) -> Any:
        """An effect, animation, transition, filter or font by its name in the library."""
        if not isinstance(value, str) or not value.strip():
            self.fail(loc, f"must be the name of a {what}", "type_error")
            return None
        for enum in enums:
            found = _names(enum).get(_key(value))
            if found is not None:
                return found
        choices = [n for enum in enums for n in _display(enum)]
        close = difflib.get_close_matches(value, choices, n=5, cutoff=0.5)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        self.fail(
            loc,
            f"unknown {what} {value!r} (pyJianYingDraft {', '.join(e.__name__ for e in enums)})"
            f"{hint}",
            "value_error.name",
        )
        return None


def _or(words: list[str]) -> str:
    quoted = [repr(w) for w in words]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" from {low:g} to {high:g}"
    if low is not None:
        return f" of at least {low:g}"
    return f" of at most {high:g}" if high is not None else ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and abs(number) <= 1e7 else None


def _key(name: str) -> str:
    """The library's own rule (``EffectEnum.from_name``): case, spaces and underscores aside."""
    return name.lower().replace(" ", "").replace("_", "")


@functools.cache
def _names(enum: type[Enum]) -> dict[str, Any]:
    """Member by its Python name and by the name JianYing shows, both as ``_key`` reads them."""
    out: dict[str, Any] = {}
    for member in enum:
        out.setdefault(_key(member.name), member)
        shown = getattr(member.value, "name", None) or getattr(member.value, "title", None)
        if isinstance(shown, str):
            out.setdefault(_key(shown), member)
    return out


@functools.cache
def _display(enum: type[Enum]) -> list[str]:
    return [
        getattr(m.value, "name", None) or getattr(m.value, "title", None) or m.name for m in enum
    ]


ANIMATION_ENUMS: dict[tuple[str, str], type[Enum]] = {
    ("video", "intro"): jy.IntroType,
    ("video", "outro"): jy.OutroType,
    ("video", "group"): jy.GroupAnimationType,
    ("text", "intro"): jy.TextIntro,
    ("text", "outro"): jy.TextOutro,
    ("text", "loop"): jy.TextLoopAnim,
}


def read_style(
    data: Mapping[str, Any],
    loc: Loc,
    kind: str,
    problems: list[FieldProblem],
    *,
    unit: int = SECOND,
    handled: Collection[str] = (),
) -> SegmentStyle:
    """Reads the style keys of ``data`` (at JSON path ``loc``) for a segment of ``kind``
    (video, photo, audio or text). Keys in ``handled`` are the caller's own (an item's
    ``start``, a raw segment's ``segment``); any other key that is not a style key is a
    problem. Times are in ``unit`` µs (seconds by default). Appends problems; returns what
    was read correctly."""
    r = _Reader(problems, unit)
    out: dict[str, Any] = {}
    text: dict[str, Any] = {}
    known = [*STYLE_KEYS, *handled]
    for key, value in data.items():
        here: Loc = (*loc, key)
        if key in handled:
            continue
        if key not in STYLE_KEYS:
            r.unknown(here, str(key), known)
            continue
        if kind not in STYLE_KEYS[key]:
            kinds = ", ".join(STYLE_KEYS[key])
            r.fail(here, f"{key!r} does not apply to a {kind} segment (only {kinds})")
            continue
        if value is None:
            continue
        if key == "font":
            out["font"] = r.name(value, here, (jy.FontType,), "font")
        elif key == "style":
            text.update(_text_style(r, value, here))
        elif key in ("color", "size", "alignment"):
            text.update(_text_style(r, {"align" if key == "alignment" else key: value}, loc))
        elif key in ("border", "stroke"):
            out["border"] = _border(r, value, here)
        elif key == "background":
            out["background"] = _background(r, value, here)
        elif key == "shadow":
            out["shadow"] = _shadow(r, value, here)
        elif key == "bubble":
            got = r.obj(value, here, ("effect_id", "resource_id"))
            if got is not None:
                ids = [got.get("effect_id"), got.get("resource_id")]
                if all(isinstance(i, str) and i for i in ids):
                    out["bubble"] = (ids[0], ids[1])
                else:
                    r.fail(here, "needs effect_id and resource_id, both non-empty strings")
        elif key == "text_effect":
            if isinstance(value, dict):
                got = r.obj(value, here, ("effect_id",))
                value = (got or {}).get("effect_id")
            if isinstance(value, str) and value:
                out["text_effect"] = value
            else:
                r.fail(here, "must be a 花字 effect_id (a string), or {effect_id}")
        elif key == "fade":
            got = r.obj(value, here, ("in", "out"))
            if got is not None:
                fade_in = r.time(got.get("in", 0), (*here, "in"))
                fade_out = r.time(got.get("out", 0), (*here, "out"))
                if fade_in is not None and fade_out is not None:
                    out["fade"] = (fade_in, fade_out)
        elif key == "animations":
            out["animations"] = _animations(r, value, here, "text" if kind == "text" else "video")
        elif key == "transition":
            out["transition"] = _transition(r, value, here)
        elif key == "filters":
            out["filters"] = tuple(_many(r, value, here, _filter))
        elif key == "effects":
            out["effects"] = tuple(_many(r, value, here, _effect))
        elif key == "keyframes":
            out["keyframes"] = tuple(
                _many(r, value, here, lambda r, v, h: _keyframe(r, v, h, kind))
            )
        elif key == "clip":
            out["clip"] = _clip(r, value, here)
        elif key == "volume":
            out["volume"] = r.number(value, here, 0, 100)
    if text:
        out["text"] = text
    return SegmentStyle(**{k: v for k, v in out.items() if v is not None})


def _text_style(r: _Reader, value: Any, loc: Loc) -> dict[str, Any]:
    got = r.obj(value, loc, TEXT_STYLE_KEYS)
    out: dict[str, Any] = {}
    for key, v in (got or {}).items():
        here = (*loc, key)
        if key in ("bold", "italic", "underline", "vertical", "auto_wrapping"):
            out[key] = r.flag(v, here)
        elif key == "color":
            out[key] = r.color(v, here)
        elif key == "size":
            out[key] = r.number(v, here, 0.1, 1000)
        elif key in ("alpha", "max_line_width"):
            out[key] = r.number(v, here, 0, 1)
        elif key == "align":
            if isinstance(v, str) and v.lower() in ALIGN:
                out[key] = ALIGN[v.lower()]
            elif v in (0, 1, 2) and not isinstance(v, bool):
                out[key] = v
            else:
                r.fail(here, "must be left, center or right (or 0, 1, 2)")
        elif key in ("letter_spacing", "line_spacing"):
            out[key] = r.number(v, here, -100, 100)
    return {k: v for k, v in out.items() if v is not None}


def _fields(
    r: _Reader,
    value: Any,
    loc: Loc,
    keys: tuple[str, ...],
    ranges: Mapping[str, tuple[float, float]],
) -> dict[str, Any] | None:
    got = r.obj(value, loc, keys)
    if got is None:
        return None
    before = r.ok
    r.ok = True
    out: dict[str, Any] = {}
    for key, v in got.items():
        here = (*loc, key)
        if key == "color":
            out[key] = r.color(v, here)
        elif key == "style":
            if v in (1, 2) and not isinstance(v, bool):
                out[key] = v
            else:
                r.fail(here, "must be 1 or 2 (JianYing's two background styles)")
        else:
            out[key] = r.number(v, here, *ranges[key])
    good, r.ok = r.ok, before and r.ok
    return out if good else None


UNIT = (0.0, 1.0)


def _border(r: _Reader, value: Any, loc: Loc) -> dict[str, Any] | None:
    return _fields(r, value, loc, BORDER_KEYS, {"alpha": UNIT, "width": (0, 100)})


def _shadow(r: _Reader, value: Any, loc: Loc) -> dict[str, Any] | None:
    ranges = {"alpha": UNIT, "diffuse": (0, 100), "distance": (0, 100), "angle": (-180, 180)}
    return _fields(r, value, loc, SHADOW_KEYS, ranges)


def _background(r: _Reader, value: Any, loc: Loc) -> dict[str, Any] | None:
    ranges = dict.fromkeys(BACKGROUND_KEYS, UNIT)
    out = _fields(r, value, loc, BACKGROUND_KEYS, ranges)
    if out is not None and "color" not in out:
        if isinstance(value, dict) and "color" not in value:
            r.fail((*loc, "color"), "field required: the background's colour", "missing")
        return None
    if out is not None:  # the library takes this one as "#RRGGBB"
        out["color"] = "#" + "".join(f"{round(c * 255):02X}" for c in out["color"])
    return out


def _clip(r: _Reader, value: Any, loc: Loc) -> dict[str, Any]:
    got = r.obj(value, loc, CLIP_KEYS)
    out: dict[str, Any] = {}
    names = {"x": "transform_x", "y": "transform_y"}
    for key, v in (got or {}).items():
        here = (*loc, key)
        if key.startswith("flip_"):
            out[key] = r.flag(v, here)
        elif key == "alpha":
            out[key] = r.number(v, here, 0, 1)
        elif key == "rotation":
            out[key] = r.number(v, here, -3600, 3600)
        elif key.startswith("scale_"):
            out[key] = r.number(v, here, 0.001, 1000)
        else:
            out[names[key]] = r.number(v, here, -1000, 1000)
    return {k: v for k, v in out.items() if v is not None}


def _named(r: _Reader, value: Any, loc: Loc, extra: tuple[str, ...]) -> dict[str, Any] | None:
    """A name alone, or ``{name, ...extra}``."""
    if isinstance(value, str):
        return {"name": value}
    got = r.obj(value, loc, ("name", *extra))
    if got is not None and "name" not in got:
        r.fail((*loc, "name"), "field required", "missing")
        return None
    return got


def _animations(r: _Reader, value: Any, loc: Loc, kind: str) -> tuple[Animation, ...]:
    slots = [s for (k, s) in ANIMATION_ENUMS if k == kind]
    got = r.obj(value, loc, slots)
    out: list[Animation] = []
    for slot in slots:  # intro and outro before loop: the library needs that order
        if (got or {}).get(slot) is None:
            continue
        here = (*loc, slot)
        spec = _named(r, got[slot], here, ("duration",))  # type: ignore[index]
        if spec is None:
            continue
        enum = ANIMATION_ENUMS[(kind, slot)]
        member = r.name(spec["name"], (*here, "name") if not isinstance(got[slot], str) else here,  # type: ignore[index]
                        (enum,), f"{kind} {slot} animation")  # fmt: skip
        duration = None
        if spec.get("duration") is not None:
            if slot == "loop":
                r.fail((*here, "duration"), "a loop animation fills the segment: no duration")
                continue
            duration = r.time(spec["duration"], (*here, "duration"), positive=True)
            if duration is None:
                continue
        if member is not None:
            out.append(Animation(slot, member, duration))
    return tuple(out)


def _transition(r: _Reader, value: Any, loc: Loc) -> tuple[Any, int | None] | None:
    spec = _named(r, value, loc, ("duration",))
    if spec is None:
        return None
    member = r.name(spec["name"], loc if isinstance(value, str) else (*loc, "name"),
                    (jy.TransitionType,), "transition")  # fmt: skip
    duration = None
    if spec.get("duration") is not None:
        duration = r.time(spec["duration"], (*loc, "duration"), positive=True)
        if duration is None:
            return None
    return None if member is None else (member, duration)


def _many(r: _Reader, value: Any, loc: Loc, one: Any) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    out = []
    for i, item in enumerate(items):
        got = one(r, item, (*loc, i) if isinstance(value, list) else loc)
        if got is not None:
            out.append(got)
    return out


def _filter(r: _Reader, value: Any, loc: Loc) -> Filter | None:
    spec = _named(r, value, loc, ("intensity",))
    if spec is None:
        return None
    here = loc if isinstance(value, str) else (*loc, "name")
    member = r.name(spec["name"], here, (jy.FilterType,), "filter")
    intensity = r.number(spec.get("intensity", 100), (*loc, "intensity"), 0, 100)
    return None if member is None or intensity is None else Filter(member, intensity)


def _effect(r: _Reader, value: Any, loc: Loc) -> Effect | None:
    spec = _named(r, value, loc, ("params",))
    if spec is None:
        return None
    here = loc if isinstance(value, str) else (*loc, "name")
    member = r.name(
        spec["name"], here, (jy.VideoSceneEffectType, jy.VideoCharacterEffectType), "video effect"
    )
    params = spec.get("params", [])
    if not isinstance(params, list):
        r.fail((*loc, "params"), "must be a list of numbers from 0 to 100 (null: the default)")
        return None
    values: list[float | None] = []
    for i, p in enumerate(params):
        values.append(None if p is None else r.number(p, (*loc, "params", i), 0, 100))
    if member is None:
        return None
    allowed = [p.name for p in member.value.params]
    if len(params) > len(allowed):
        names = ", ".join(allowed) or "none"
        r.fail((*loc, "params"), f"{member.value.name!r} takes {len(allowed)} params ({names})")
        return None
    if any(v is None and p is not None for v, p in zip(values, params, strict=True)):
        return None
    return Effect(member, tuple(values))


def _keyframe(r: _Reader, value: Any, loc: Loc, kind: str) -> Keyframe | None:
    got = r.obj(value, loc, ("property", "time", "value"))
    if got is None:
        return None
    prop = got.get("property")
    if not isinstance(prop, str) or prop not in KEYFRAME_PROPERTIES:
        close = difflib.get_close_matches(str(prop), list(KEYFRAME_PROPERTIES), n=3, cutoff=0.5)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        known = ", ".join(KEYFRAME_PROPERTIES)
        r.fail((*loc, "property"), f"unknown keyframe property {prop!r} (known: {known}){hint}")
        return None
    kinds = KEYFRAME_PROPERTIES[prop][1]
    if kind not in kinds:
        r.fail((*loc, "property"), f"{prop!r} keyframes apply to {', '.join(kinds)} segments")
        return None
    for key in ("time", "value"):
        if key not in got:
            r.fail((*loc, key), "field required", "missing")
    if "time" not in got or "value" not in got:
        return None
    time = r.time(got["time"], (*loc, "time"))
    number = r.number(got["value"], (*loc, "value"), -1e6, 1e6)
    return None if time is None or number is None else Keyframe(prop, time, number)


# --- applying -------------------------------------------------------------------------------


def text_style(style: SegmentStyle, base: Mapping[str, Any] | None = None) -> Any:
    """The library's TextStyle: its defaults, then ``base``, then what the style sets."""
    return jy.TextStyle(**{**(base or {}), **style.text})


def apply_style(segment: Any, style: SegmentStyle) -> Any:
    """Puts ``style`` on a pyJianYingDraft segment that is not yet in the script (the
    script adds the materials when the segment is added). Text style, font, border,
    background and shadow replace the segment's own; clip keys replace the clip's; the
    rest is added with the library's calls. Returns the segment."""
    if isinstance(segment, jy.TextSegment):
        if style.text:
            segment.style = text_style(style, vars(segment.style))
        if style.font is not None:
            segment.font = style.font.value
        if style.border is not None:
            segment.border = jy.TextBorder(**style.border)
        if style.background is not None:
            segment.background = jy.TextBackground(**style.background)
        if style.shadow is not None:
            segment.shadow = jy.TextShadow(**style.shadow)
        if style.bubble is not None:
            segment.add_bubble(*style.bubble)
        if style.text_effect is not None:
            segment.add_effect(style.text_effect)
    if style.clip:
        for key, value in style.clip.items():
            setattr(segment.clip_settings, key, value)
    if style.volume is not None:
        segment.volume = style.volume
    if style.fade is not None:
        segment.add_fade(*style.fade)
    for animation in style.animations:
        if animation.duration is None:
            segment.add_animation(animation.member)
        else:
            segment.add_animation(animation.member, animation.duration)
    if style.transition is not None:
        member, duration = style.transition
        segment.add_transition(member, duration=duration)
    for filter_ in style.filters:
        segment.add_filter(filter_.member, filter_.intensity)
    for effect in style.effects:
        segment.add_effect(effect.member, list(effect.params))
    for keyframe in style.keyframes:
        if isinstance(segment, jy.AudioSegment):
            segment.add_keyframe(keyframe.time, keyframe.value)
        else:
            prop = jy.KeyframeProperty[keyframe.prop]
            segment.add_keyframe(prop, keyframe.time, keyframe.value)
    return segment
