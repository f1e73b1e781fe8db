"""Raw (template) mode, read from the request alone: ``raw_segments`` and ``raw_materials``.

A raw segment is JianYing's own segment JSON (times in µs) with the material it plays and the
extra materials its ``extra_material_refs`` name (speeds, canvases, animations, ...). This
module checks them at submit (every problem with its JSON path) and turns them into
``RawSegmentPlan``s the writer (``raw_writer``) copies into the draft under fresh ids.

Every key of a segment and of a material must be one this module knows (the allow-lists
below, taken from the drafts JianYing/CapCut and pyJianYingDraft write): an unknown key is
refused, naming it, never dropped. Test items whose rule names a material a raw segment uses
take that segment as their template (``_templates``).
"""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from draftdl.drafts.spec import (
    ITEM_KEYS,
    SECOND,
    SOURCE_KEYS,
    DraftPlan,
    Loc,
    SegmentPlan,
    StyleBook,
    TrackPlan,
    _number,
)
from draftdl.drafts.styles import SegmentStyle
from draftdl.errors import FieldProblem

PLACEHOLDER = "##_draftpath_placeholder"
TRACK_CATEGORY = {"video": "videos", "audio": "audios", "text": "texts"}
KIND_OF_CATEGORY = {category: kind for kind, category in TRACK_CATEGORY.items()}
RAW_SEGMENT_FIELDS = frozenset(
    {
        "track_id",
        "track_type",
        "track_name",
        "material_id",
        "segment",
        "material",
        "material_category",
        "extra_materials",
    }
)
RAW_MATERIAL_FIELDS = frozenset({"id", "category", "data"})
# The keys of testData.items[].data a template clone applies (seconds, like normal mode).
TEMPLATE_DATA_KEYS = frozenset(ITEM_KEYS) - {"ext"}  # ext is a hint normal mode lists

_WORDS = str.split  # the lists below are written as words, one key each

SEGMENT_KEYS = frozenset(
    _WORDS(
        """caption_info cartoon clip color_correct_alg_result common_keyframes desc
        digital_human_template_group_id enable_adjust enable_adjust_mask
        enable_color_correct_adjust enable_color_curves enable_color_match_adjust
        enable_color_wheels enable_hsl enable_hsl_curves enable_lut enable_mask_shadow
        enable_mask_stroke enable_smart_color_adjust enable_video_mask extra_material_refs
        group_id hdr_settings id intensifies_audio is_loop is_placeholder is_tone_modify
        keyframe_refs last_nonzero_volume lyric_keyframes material_id raw_segment_id
        render_index render_timerange responsive_layout reverse source source_timerange speed
        state target_timerange template_id template_scene track_attribute track_render_index
        uniform_scale visible volume"""
    )
)
TIMERANGE_KEYS = frozenset({"start", "duration"})
CLIP_KEYS = frozenset({"alpha", "flip", "rotation", "scale", "transform"})
KEYFRAME_LIST_KEYS = frozenset({"id", "keyframe_list", "material_id", "property_type"})

MATERIAL_KEYS: dict[str, frozenset[str]] = {
    "videos": frozenset(
        _WORDS(
            """aigc_history_id aigc_item_id aigc_type audio_fade beauty_body_auto_preset
            beauty_body_preset_id beauty_face_auto_preset beauty_face_auto_preset_infos
            beauty_face_preset_infos cartoon_path category_id category_name check_flag
            content_feature_info corner_pin crop crop_ratio crop_scale duration
            extra_type_option formula_id freeze has_audio has_sound_separated height id
            intensifies_audio_path intensifies_path is_ai_generate_content is_copyright
            is_text_edit_overdub is_unified_beauty_mode live_photo_cover_path
            live_photo_timestamp local_id local_material_from local_material_id material_id
            material_name material_url matting media_path multi_camera_info object_locked
            origin_material_id path picture_from picture_set_category_id
            picture_set_category_name request_id reverse_intensifies_path reverse_path
            smart_match_info smart_motion source source_platform stable team_id type
            video_algorithm video_mask_shadow video_mask_stroke width"""
        )
    ),
    "audios": frozenset(
        _WORDS(
            """ai_music_enter_from ai_music_generate_scene ai_music_type aigc_history_id
            aigc_item_id app_id category_id category_name check_flag cloned_model_type
            copyright_limit_type duration effect_id formula_id id intensifies_path
            is_ai_clone_tone is_ai_clone_tone_post is_text_edit_overdub is_ugc
            local_material_id lyric_type mock_tone_speaker moyin_emotion music_id
            music_source name path pgc_id pgc_name query request_id resource_id search_id
            similiar_music_info sound_separate_type source_from source_platform team_id
            text_id third_resource_id tone_category_id tone_category_name tone_effect_id
            tone_effect_name tone_emotion_name_key tone_emotion_role tone_emotion_scale
            tone_emotion_selection tone_emotion_style tone_platform tone_second_category_id
            tone_second_category_name tone_speaker tone_type tts_generate_scene tts_task_id
            type video_id wave_points"""
        )
    ),
    "texts": frozenset(
        _WORDS(
            """add_type alignment background_alpha background_color background_fill
            background_height background_horizontal_offset background_round_radius
            background_style background_vertical_offset background_width base_content
            bold_width border_alpha border_color border_mode border_width
            caption_template_info check_flag combo_info content current_words cutoff_postfix
            enable_path_typesetting fixed_height fixed_width font_category_id
            font_category_name font_id font_name font_path font_resource_id font_size
            font_source_platform font_team_id font_third_resource_id font_title font_url fonts
            force_apply_line_max_width global_alpha group_id has_shadow id initial_scale
            inner_padding is_batch_replace is_lyric_effect is_rich_text is_words_linear
            italic_degree ktv_color language layer_weight letter_spacing line_feed
            line_max_width line_spacing lyric_group_id lyrics_template multi_language_current
            name offset_on_path oneline_cutoff operation_type original_size preset_category
            preset_category_id preset_has_set_alignment preset_id preset_index preset_name
            punc_model recognize_model recognize_task_id recognize_text recognize_type
            relevance_segment shadow_alpha shadow_angle shadow_color shadow_distance
            shadow_point shadow_smoothing shape_clip_x shape_clip_y source_from ssml_content
            style_name sub_template_id sub_type subtitle_keywords subtitle_keywords_config
            subtitle_template_original_fontsize text_alpha text_color text_curve
            text_exceeds_path_process_type text_loop_on_path text_preset_resource_id
            text_size text_to_audio_ids text_typesetting_path_index text_typesetting_paths
            text_typesetting_paths_file translate_original_text tts_auto_update type
            typesetting underline underline_offset underline_width use_effect_default_color
            words"""
        )
    ),
    # Extra materials: what a segment's extra_material_refs point at.
    "speeds": frozenset(_WORDS("curve_speed id mode speed type")),
    "canvases": frozenset(
        _WORDS("album_image blur color id image image_id image_name source_platform team_id type")
    ),
    "sound_channel_mappings": frozenset(_WORDS("audio_channel_mapping id is_config_open type")),
    "material_animations": frozenset(_WORDS("animations id multi_language_current type")),
    "audio_fades": frozenset(_WORDS("fade_in_duration fade_out_duration fade_type id type")),
    "transitions": frozenset(
        _WORDS(
            """category_id category_name duration effect_id id is_overlap name path platform
            request_id resource_id type"""
        )
    ),
    "beats": frozenset(
        _WORDS(
            "ai_beats enable_ai_beats gear gear_count id mode type user_beats user_delete_ai_beats"
        )
    ),
    "loudnesses": frozenset(_WORDS("enable file_id id loudness_param target_loudness time_range")),
    "placeholder_infos": frozenset(
        _WORDS("error_path error_text id meta_type res_path res_text type")
    ),
    "vocal_separations": frozenset(
        _WORDS(
            "choice enter_from final_algorithm id production_path removed_sounds time_range type"
        )
    ),
    "material_colors": frozenset(
        _WORDS(
            """gradient_angle gradient_colors gradient_percents height id is_color_clip
            is_gradient solid_color width"""
        )
    ),
}
MAIN_CATEGORIES = ("videos", "audios", "texts")


@dataclass
class RawSegmentPlan:
    """One raw segment (or a template clone) as the writer needs it."""

    loc: Loc
    track: str
    category: str  # videos, audios, texts
    segment: dict[str, Any]  # the JianYing JSON, old ids; the writer copies it
    material: dict[str, Any]
    extras: list[tuple[str, dict[str, Any]]]  # (category, material JSON)
    source: str | None  # the media's URL (→ downloaded file) or local path; None for text
    start: int
    duration: int
    label: str = ""  # names it in messages
    overrides: dict[str, Any] = field(default_factory=dict)  # a template item's data
    # The ids segment_styles may name it by: its segment id, then its material's ids.
    targets: tuple[str, ...] = ()
    style: SegmentStyle = field(default_factory=SegmentStyle)

    @property
    def end(self) -> int:
        return self.start + self.duration


def is_raw_mode(body: dict[str, Any]) -> bool:
    raw = body.get("raw_segments")
    return (isinstance(raw, list) and bool(raw)) or body.get("use_raw_segments") is True


def media_source(material: dict[str, Any]) -> str | None:
    for key in SOURCE_KEYS:
        value = material.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def plan_raw(body: dict[str, Any], plan: DraftPlan, problems: list[FieldProblem]) -> None:
    """Adds the raw segments (and template clones) to ``plan``; the one entry from spec."""
    if "use_raw_segments" in body and not isinstance(body["use_raw_segments"], bool | None):
        problems.append(FieldProblem(("use_raw_segments",), "must be true or false"))
    raw_segments = body.get("raw_segments")
    raw_materials = body.get("raw_materials")
    for name, value in (("raw_segments", raw_segments), ("raw_materials", raw_materials)):
        if value is not None and not isinstance(value, list):
            problems.append(FieldProblem((name,), "must be a list", "type_error"))
    if not is_raw_mode(body):
        if isinstance(raw_materials, list) and raw_materials:
            problems.append(
                FieldProblem(
                    ("raw_materials",),
                    "raw materials are used by raw_segments only, and there are none",
                )
            )
        return
    reader = _Reader(plan, problems)
    reader.read_materials(raw_materials if isinstance(raw_materials, list) else [])
    declared = {t.key for t in plan.tracks}
    for i, raw in enumerate(raw_segments if isinstance(raw_segments, list) else []):
        reader.read_segment(("raw_segments", i), raw, declared)
    for key, loc in reader.material_locs.items():
        if key not in reader.used:
            problems.append(FieldProblem(loc, f"no raw segment uses raw material {key!r}"))
    _templates(body, plan, reader, problems)
    _styles_of_raw(body, plan, problems)
    _check_raw_overlaps(plan, problems)


class _Reader:
    def __init__(self, plan: DraftPlan, problems: list[FieldProblem]) -> None:
        self.plan = plan
        self.problems = problems
        # raw_materials by id (the entry's own and its data's): (category, data)
        self.materials: dict[str, tuple[str, dict[str, Any]]] = {}
        self.material_locs: dict[str, Loc] = {}  # entry id → its path, to report unused
        self.aliases: dict[str, str] = {}  # data.id → entry id
        self.used: set[str] = set()
        self.by_material: dict[str, RawSegmentPlan] = {}  # material id → its first segment

    def fail(self, loc: Loc, msg: str, kind: str = "value_error") -> None:
        self.problems.append(FieldProblem(loc, msg, kind))

    def keys(self, loc: Loc, node: dict[str, Any], known: frozenset[str], what: str) -> None:
        for key in node:
            if key not in known:
                self.fail(
                    (*loc, key),
                    f"{what} has no field {key!r} that draftdl understands",
                    "value_error.unknown_field",
                )

    def category(self, loc: Loc, value: Any) -> str | None:
        if isinstance(value, str) and value in MATERIAL_KEYS:
            return value
        known = ", ".join(MATERIAL_KEYS)
        self.fail(
            loc, f"unknown material category {value!r} (known: {known})", "value_error.category"
        )
        return None

    def material_json(self, loc: Loc, category: str, data: Any) -> dict[str, Any] | None:
        if not isinstance(data, dict):
            self.fail(loc, "must be an object (a JianYing material)", "type_error")
            return None
        self.keys(loc, data, MATERIAL_KEYS[category], f"a material of category {category!r}")
        mid = data.get("id")
        if not isinstance(mid, str) or not mid:
            self.fail((*loc, "id"), "must be a non-empty string", "missing")
            return None
        for key in SOURCE_KEYS if category in ("videos", "audios") else ():
            value = data.get(key)
            if isinstance(value, str) and value.startswith(PLACEHOLDER):
                self.fail(
                    (*loc, key),
                    "names a file inside the template's own draft folder, which draftdl does "
                    "not have: give its http(s) URL",
                    "value_error.path",
                )
        if category in ("videos", "audios") and media_source(data) is None:
            self.fail(
                loc,
                f"a material of category {category!r} must name its file "
                "(path, media_path or material_url)",
                "value_error.material_source",
            )
        if category == "texts":
            content = data.get("content")
            try:
                body = json.loads(content) if isinstance(content, str) else None
            except ValueError:
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("text"), str):
                self.fail(
                    (*loc, "content"),
                    'must be JianYing\'s text JSON, a string like {"text": "..."}',
                )
        return data

    def read_materials(self, entries: list[Any]) -> None:
        for i, entry in enumerate(entries):
            loc: Loc = ("raw_materials", i)
            if not isinstance(entry, dict):
                self.fail(loc, "must be an object {id, category, data}", "type_error")
                continue
            self.keys(loc, entry, RAW_MATERIAL_FIELDS, "a raw material")
            key = entry.get("id")
            if not isinstance(key, str) or not key:
                self.fail((*loc, "id"), "must be a non-empty string", "missing")
                continue
            if key in self.materials:
                self.fail((*loc, "id"), f"raw material id {key!r} is used twice")
                continue
            category = self.category((*loc, "category"), entry.get("category"))
            if category is None:
                continue
            data = self.material_json((*loc, "data"), category, entry.get("data"))
            if data is None:
                continue
            self.materials[key] = (category, data)
            self.material_locs[key] = loc
            if data["id"] != key:
                self.aliases.setdefault(data["id"], key)

    def lookup(self, mid: str) -> tuple[str, dict[str, Any]] | None:
        key = mid if mid in self.materials else self.aliases.get(mid)
        if key is None:
            return None
        self.used.add(key)
        return self.materials[key]

    def timerange(self, loc: Loc, value: Any, required: bool) -> tuple[int, int] | None:
        if value is None and not required:
            return None
        if not isinstance(value, dict):
            self.fail(loc, "must be an object {start, duration} in microseconds", "type_error")
            return None
        self.keys(loc, value, TIMERANGE_KEYS, "a time range")
        out = []
        for key in ("start", "duration"):
            number = value.get(key)
            if isinstance(number, bool) or not isinstance(number, int):
                self.fail((*loc, key), "must be a whole number of microseconds", "value_error.time")
                return None
            if number < 0 or (key == "duration" and number == 0) or number > 10**13:
                rule = "greater than 0" if key == "duration" else "0 or more"
                self.fail((*loc, key), f"must be {rule} (microseconds)", "value_error.time")
                return None
            out.append(number)
        return out[0], out[1]

    def read_segment(self, loc: Loc, raw: Any, declared: set[str]) -> None:
        if not isinstance(raw, dict):
            self.fail(loc, "must be an object {track_id, track_type, segment, ...}", "type_error")
            return
        self.keys(loc, raw, RAW_SEGMENT_FIELDS, "a raw segment")
        track_key = raw.get("track_id")
        if not isinstance(track_key, str | int) or isinstance(track_key, bool) or track_key == "":
            self.fail((*loc, "track_id"), "must be a non-empty string", "missing")
            return
        track_key = str(track_key)
        ttype = raw.get("track_type")
        if ttype not in TRACK_CATEGORY:
            self.fail((*loc, "track_type"), "must be video, audio or text")
            return
        track = self._track(loc, track_key, str(ttype), raw.get("track_name"), declared)
        if track is None:
            return
        wanted = TRACK_CATEGORY[track.kind]
        segment = raw.get("segment")
        sloc: Loc = (*loc, "segment")
        if not isinstance(segment, dict):
            self.fail(sloc, "must be an object (a JianYing segment)", "type_error")
            return
        before = len(self.problems)
        self._segment_fields(sloc, segment, track.kind)
        # The material: given inline, else by id in extra_materials or raw_materials.
        mid = segment.get("material_id")
        if not isinstance(mid, str) or not mid:
            self.fail((*sloc, "material_id"), "must be a non-empty string", "missing")
            return
        extras_by_id = self._extras(loc, raw.get("extra_materials"))
        material: dict[str, Any] | None = None
        category: str | None = None
        if raw.get("material") is not None:
            category = raw.get("material_category") or wanted
            category = self.category((*loc, "material_category"), category)
            if category is None:
                return
            material = self.material_json((*loc, "material"), category, raw["material"])
            if material is None:
                return
            if material["id"] != mid:
                self.fail(
                    (*loc, "material", "id"),
                    f"is {material['id']!r} but the segment plays material {mid!r}",
                    "value_error.material",
                )
                return
        else:
            found = extras_by_id.get(mid) or self.lookup(mid)
            if found is None:
                self.fail(
                    (*sloc, "material_id"),
                    f"material {mid!r} is nowhere: not in this "
                    "raw segment's material or extra_materials, nor in raw_materials",
                    "value_error.material",
                )
                return
            category, material = found
        if category != wanted:
            self.fail(
                (*loc, "material_category"),
                f"material {mid!r} is one of {category!r} "
                f"but track {track_key!r} is a {track.kind} track",
                "value_error.track_type",
            )
            return
        extras: list[tuple[str, dict[str, Any]]] = []
        refs = segment.get("extra_material_refs") or []
        for j, ref in enumerate(refs if isinstance(refs, list) else []):
            if not isinstance(ref, str):
                self.fail((*sloc, "extra_material_refs", j), "must be a material id")
                continue
            found = extras_by_id.get(ref) or self.lookup(ref)
            if found is None:
                self.fail(
                    (*sloc, "extra_material_refs", j),
                    f"material {ref!r} is nowhere: "
                    "not in this raw segment's extra_materials, nor in raw_materials",
                    "value_error.material",
                )
                continue
            if found[0] in MAIN_CATEGORIES:
                self.fail(
                    (*sloc, "extra_material_refs", j),
                    f"material {ref!r} is one of {found[0]!r}, not an extra material",
                )
                continue
            extras.append(found)
        named = {mid, *(r for r in refs if isinstance(r, str))} if isinstance(refs, list) else {mid}
        for unused in (k for k in extras_by_id if k not in named):
            self.fail(
                (*loc, "extra_materials"),
                f"material {unused!r} is not named by the "
                "segment (material_id or extra_material_refs)",
            )
        if len(self.problems) > before:
            return
        target = segment["target_timerange"]
        plan = RawSegmentPlan(
            loc=loc,
            track=track_key,
            category=category,
            segment=segment,
            material=material,
            extras=extras,
            source=media_source(material),
            start=target["start"],
            duration=target["duration"],
            label=f"raw segment {loc[1]}",
        )
        names = [segment.get("id"), mid, material.get("id"), raw.get("material_id")]
        plan.targets = tuple(
            dict.fromkeys(
                str(n) for n in names if isinstance(n, str | int) and not isinstance(n, bool)
            )
        )
        self.plan.raw.append(plan)
        for key in (raw.get("material_id"), mid):
            if isinstance(key, str | int) and not isinstance(key, bool):
                self.by_material.setdefault(str(key), plan)

    def _track(
        self, loc: Loc, key: str, kind: str, name: Any, declared: set[str]
    ) -> TrackPlan | None:
        tracks = {t.key: t for t in self.plan.tracks}
        track = tracks.get(key)
        if track is None:
            names = {t.name for t in self.plan.tracks}
            label = str(name) if isinstance(name, str) and name else key
            if label in names:
                label = f"{label} ({key})"
            track = TrackPlan(key, kind, label)
            self.plan.tracks.append(track)
        elif track.kind != kind:
            where = "testData.tracks" if key in declared else "an earlier raw segment"
            self.fail(
                (*loc, "track_type"),
                f"track {key!r} is a {track.kind} track in {where}",
                "value_error.track_type",
            )
            return None
        return track

    def _segment_fields(self, loc: Loc, segment: dict[str, Any], kind: str) -> None:
        self.keys(loc, segment, SEGMENT_KEYS, "a segment")
        self.timerange((*loc, "target_timerange"), segment.get("target_timerange"), True)
        source = self.timerange(
            (*loc, "source_timerange"), segment.get("source_timerange"), kind != "text"
        )
        if kind == "text" and source is not None:
            pass  # JianYing writes null; a range is harmless
        for key, low in (("speed", 0.1), ("volume", 0.0)):
            if key not in segment:
                continue
            number = _number(segment[key])
            if number is None or not low <= number <= (100 if key == "speed" else 1e3):
                self.fail((*loc, key), f"{key} must be a number of at least {low}")
        clip = segment.get("clip")
        if isinstance(clip, dict):
            self.keys((*loc, "clip"), clip, CLIP_KEYS, "a clip")
        elif clip is not None:
            self.fail((*loc, "clip"), "must be an object or null", "type_error")
        frames = segment.get("common_keyframes", [])
        if not isinstance(frames, list):
            self.fail((*loc, "common_keyframes"), "must be a list", "type_error")
        else:
            for j, frame in enumerate(frames):
                if not isinstance(frame, dict):
                    self.fail((*loc, "common_keyframes", j), "must be an object", "type_error")
                    continue
                self.keys(
                    (*loc, "common_keyframes", j), frame, KEYFRAME_LIST_KEYS, "a keyframe list"
                )
        refs = segment.get("extra_material_refs", [])
        if not isinstance(refs, list):
            self.fail((*loc, "extra_material_refs"), "must be a list of material ids", "type_error")

    def _extras(self, loc: Loc, value: Any) -> dict[str, tuple[str, dict[str, Any]]]:
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        if value is None:
            return out
        if not isinstance(value, dict):
            self.fail(
                (*loc, "extra_materials"), "must be an object of lists by category", "type_error"
            )
            return out
        for name, items in value.items():
            cloc: Loc = (*loc, "extra_materials", name)
            category = self.category(cloc, name)
            if category is None:
                continue
            if not isinstance(items, list):
                self.fail(cloc, "must be a list of materials", "type_error")
                continue
            for j, item in enumerate(items):
                data = self.material_json((*cloc, j), category, item)
                if data is not None:
                    if data["id"] in out:
                        self.fail((*cloc, j, "id"), f"material id {data['id']!r} is used twice")
                    out[data["id"]] = (category, data)
        return out


def _templates(
    body: dict[str, Any], plan: DraftPlan, reader: _Reader, problems: list[FieldProblem]
) -> None:
    """Test items on a material a raw segment plays become clones of that segment."""
    items = (
        body.get("testData", {}).get("items") if isinstance(body.get("testData"), dict) else None
    )
    kept: list[SegmentPlan] = []
    for seg in plan.segments:
        template = reader.by_material.get(seg.material_id)
        if template is None or not isinstance(items, list):
            kept.append(seg)
            continue
        item = items[int(seg.loc[2])]
        data = item.get("data") if isinstance(item.get("data"), dict) else {}
        dloc: Loc = (*seg.loc, "data")
        unknown = [k for k in data if k not in TEMPLATE_DATA_KEYS]
        for key in unknown:
            problems.append(
                FieldProblem(
                    (*dloc, key),
                    f"a template item has no field {key!r} that draftdl "
                    f"understands (known: {', '.join(sorted(TEMPLATE_DATA_KEYS))})",
                    "value_error.unknown_field",
                )
            )
        if unknown:
            continue
        track = seg.track if "track" in data else template.track
        kind = next(t.kind for t in plan.tracks if t.key == track)
        if TRACK_CATEGORY[kind] != template.category:
            problems.append(
                FieldProblem(
                    (*dloc, "track"),
                    f"the template of material "
                    f"{seg.material_id!r} is one of {template.category!r} but track "
                    f"{track!r} is a {kind} track",
                    "value_error.track_type",
                )
            )
            continue
        start = seg.start if "start" in data and seg.start is not None else template.start
        duration = template.duration
        if "duration" in data and seg.duration is not None:
            duration = seg.duration
        overrides: dict[str, Any] = {}
        for key in ("volume", "speed", "x", "y", "scale", "text"):
            if key in data:
                overrides[key] = getattr(seg, key)
        if "source_start" in data:
            overrides["source_start"] = seg.source_start
        if "source_duration" in data:
            overrides["source_duration"] = seg.source_duration
        source = template.source
        if "path" in data and template.category != "texts":
            source = seg.source
        clone = copy.copy(template)
        clone.loc = seg.loc
        clone.track = track
        clone.start, clone.duration = start, duration
        clone.source = source
        clone.overrides = overrides
        clone.label = f"testData item {seg.loc[2]} (template: {template.label})"
        plan.raw.append(clone)
    plan.segments[:] = kept
    # A track the normal planner made for a templated item and nothing uses any more goes.
    used = {s.track for s in plan.segments} | {r.track for r in plan.raw}
    declared = {str(t.get("id")) for t in _declared_tracks(body)}
    plan.tracks[:] = [t for t in plan.tracks if t.key in used or t.key in declared]


def _declared_tracks(body: dict[str, Any]) -> list[dict[str, Any]]:
    test_data = body.get("testData")
    tracks = test_data.get("tracks") if isinstance(test_data, dict) else None
    return [t for t in tracks if isinstance(t, dict)] if isinstance(tracks, list) else []


def _check_raw_overlaps(plan: DraftPlan, problems: list[FieldProblem]) -> None:
    """Raw segments against each other and against normal segments with fixed times."""
    spans: dict[str, list[tuple[int, int, Loc, str]]] = {}
    for raw in plan.raw:
        spans.setdefault(raw.track, []).append((raw.start, raw.end, raw.loc, raw.label))
    for seg in plan.segments:
        if seg.start is not None and seg.duration is not None and seg.track in spans:
            label = f"the segment of material {seg.material_id!r}"
            spans[seg.track].append((seg.start, seg.start + seg.duration, seg.loc, label))
    for track, entries in spans.items():
        entries.sort(key=lambda e: (e[0], e[1]))
        for before, after in itertools.pairwise(entries):
            if after[0] < before[1]:
                problems.append(
                    FieldProblem(
                        after[2],
                        f"overlaps {before[3]} on track {track!r} (it starts at "
                        f"{after[0] / SECOND:.3f}s, before that one ends at "
                        f"{before[1] / SECOND:.3f}s)",
                        "value_error.overlap",
                    )
                )


def _styles_of_raw(body: dict[str, Any], plan: DraftPlan, problems: list[FieldProblem]) -> None:
    """``segment_styles`` for each raw segment (and template clone), by its segment id, its
    material's ids or the material it is the template of; the segment id's style wins key by
    key over a material's. Read for the raw segment's kind: a key that does not apply to it is
    a 422 naming the key. The writer (``raw_styles``) merges it into the copy."""
    if not body.get("segment_styles") or not plan.raw:
        return
    book = StyleBook(body, {}, [])  # its shape problems are plan_draft's, reported already
    book.problems = problems
    for raw in plan.raw:
        kind = KIND_OF_CATEGORY[raw.category]
        style = SegmentStyle()
        for target in reversed(raw.targets):
            style = book.style(target, kind).over(style)
        raw.style = style
