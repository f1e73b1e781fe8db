"""Segment styles (drafts/styles.py): read at submit with JSON paths and close matches, and
written into draft_content.json exactly as pyJianYingDraft writes the same calls."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pyJianYingDraft as jy
import pytest

from draftcheck import check_draft
from draftdl.drafts.jianying import build_draft
from draftdl.drafts.spec import plan_draft
from draftdl.drafts.styles import SegmentStyle, apply_style, read_style
from draftdl.errors import FieldProblem
from fileserver import FileServer
from servers import Service
from test_drafts import MEDIA, local_job, plan_of

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SRT = "1\n00:00:00,000 --> 00:00:01,000\nhello\n\n2\n00:00:01,000 --> 00:00:02,500\nworld\n"


def read(data: dict[str, Any], kind: str = "video") -> tuple[SegmentStyle, dict[str, str]]:
    problems: list[FieldProblem] = []
    style = read_style(data, ("d",), kind, problems)
    return style, {p.path: p.msg for p in problems}


def rejected(body: dict[str, Any]) -> dict[str, str]:
    """What submit refuses of a job (validate_job plans the draft the same way)."""
    problems: list[FieldProblem] = []
    plan_draft(body, problems)
    return {p.path: p.msg for p in problems}


# --- reading ---------------------------------------------------------------------------------


def test_names_are_the_librarys_with_close_matches() -> None:
    style, problems = read(
        {
            "animations": {"intro": "动感放大", "outro": {"name": "Kira游动", "duration": 0.4}},
            "transition": {"name": "3D空间", "duration": 1},
            "filters": [{"name": "lofi ii", "intensity": 60}],
            "effects": [{"name": "DV界面"}],
        }
    )
    assert problems == {}
    assert [a.member for a in style.animations] == [jy.IntroType.动感放大, jy.OutroType.Kira游动]
    assert style.animations[1].duration == 400_000
    assert style.transition == (jy.TransitionType._3D空间, 1_000_000)
    assert style.filters[0].member is jy.FilterType.Lofi_II
    _, problems = read({"filters": ["Lofi"], "transition": "上移动", "animations": {"intro": "x"}})
    assert "close matches: Lofi II" in problems["d.filters[0]"]
    assert "unknown transition '上移动'" in problems["d.transition"]
    assert "上移" in problems["d.transition"]
    assert "IntroType" in problems["d.animations.intro"]
    _, problems = read({"font": "Antn"}, "text")
    assert "close matches: Anton" in problems["d.font"]


def test_unknown_keys_and_bad_values_name_their_path() -> None:
    _, problems = read(
        {
            "fonts": "Anton",
            "style": {"size": -1, "colour": "#fff", "align": "middle"},
            "border": {"width": 200},
            "background": {"alpha": 0.5},
            "shadow": {"angle": 400},
            "keyframes": [{"property": "rotate", "time": 0, "value": 1}, {"property": "alpha"}],
        },
        "text",
    )
    assert "did you mean 'font'" in problems["d.fonts"]
    assert problems["d.style.size"] == "must be a number from 0.1 to 1000"
    assert "did you mean 'color'" in problems["d.style.colour"]
    assert "left, center or right" in problems["d.style.align"]
    assert problems["d.border.width"] == "must be a number from 0 to 100"
    assert "field required" in problems["d.background.color"]
    assert problems["d.shadow.angle"] == "must be a number from -180 to 180"
    assert "close matches: rotation" in problems["d.keyframes[0].property"]
    assert "apply to video, photo" in problems["d.keyframes[1].property"]
    # Kinds: what a segment cannot take is refused, not dropped.
    _, problems = read({"font": "Anton", "transition": "上移", "fade": {"in": 1}}, "audio")
    assert set(problems) == {"d.font", "d.transition"}
    _, problems = read({"fade": {"in": -1}, "effects": [{"name": "DV界面", "params": [5]}]})
    assert problems["d.fade.in"] == "must be a number of seconds 0 or more"
    assert "takes 0 params" in problems["d.effects[0].params"]


def test_raw_segments_read_microseconds() -> None:
    problems: list[FieldProblem] = []
    style = read_style({"fade": {"in": 500_000}, "start": 1}, (), "audio", problems, unit=1,
                       handled=("start",))  # fmt: skip
    assert problems == [] and style.fade == (500_000, 0)


def test_items_and_segment_styles_are_checked_at_submit() -> None:
    body = local_job(
        [{"type": "clip", "data": {"stat": 0, "fade": {"in": "1"}}}],
        segment_styles={"clip": {"volume": 2, "filter": "x"}, "nobody": {}},
    )
    found = rejected(body)
    assert "did you mean 'start'" in found["testData.items[0].data.stat"]
    assert "seconds" in found["testData.items[0].data.fade.in"]
    assert "did you mean 'filters'" in found["segment_styles.clip.filter"]
    assert "no material or raw segment" in found["segment_styles.nobody"]
    body = local_job([], segment_styles=[{"font": "Anton"}])
    assert "exactly one of" in rejected(body)["segment_styles[0]"]
    sub = {"type": "subtitle", "data": {"srt": "not srt", "track": "v"}}
    body = local_job([sub], testData={"tracks": [{"id": "v", "type": "video"}]})
    found = rejected(body)
    assert "SRT" in found["testData.items[0].data.srt"]


def test_item_values_win_over_segment_styles() -> None:
    body = local_job(
        [{"type": "tone", "data": {"volume": 0.3, "fade": {"out": 1}}}],
        segment_styles=[{"material_id": "tone", "volume": 0.5, "fade": {"in": 2}}],
    )
    (seg,) = plan_of(body).segments
    assert seg.volume == 0.3 and seg.style.fade == (0, 1_000_000) and seg.style.volume is None


# --- writing: as the library writes it -------------------------------------------------------


def strip(node: Any) -> Any:
    """The draft JSON without the ids both sides make up afresh."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in ("id", "material_id", "extra_material_refs", "local_material_id", "path"):
                continue
            if key == "content" and isinstance(value, str):
                value = json.loads(value)
            out[key] = strip(value)
        return out
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


STYLED_CATEGORIES = (
    "material_animations",
    "transitions",
    "audio_fades",
    "effects",
    "video_effects",
    "texts",
)


def library_draft(calls: Any) -> dict[str, Any]:
    """The same segments made with pyJianYingDraft's own calls, on a script of its own."""
    with tempfile.TemporaryDirectory() as root:
        script = jy.DraftFolder(root).create_draft("ref", 1920, 1080, 30)
        calls(script)
        content: dict[str, Any] = json.loads(script.dumps())
    return content


def same_as_library(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    for category in STYLED_CATEGORIES:
        assert strip(ours["materials"][category]) == strip(theirs["materials"][category]), category
    known = {m.get("id") for items in theirs["materials"].values() if isinstance(items, list)
             for m in items if isinstance(m, dict)}  # fmt: skip
    for mine, ref in zip(ours["tracks"], theirs["tracks"], strict=True):
        for a, b in zip(mine["segments"], ref["segments"], strict=True):
            for key in ("common_keyframes", "clip", "volume", "uniform_scale"):
                assert strip(a.get(key)) == strip(b.get(key)), key
            # Refs to what the library never writes (a text's speed) are dropped by draftdl.
            assert len(a["extra_material_refs"]) == len(
                [r for r in b["extra_material_refs"] if r in known]
            )


FULL_ITEMS = [
    {
        "type": "clip",
        "data": {
            "track": "v", "start": 0, "duration": 2,
            "fade": {"in": 0.5, "out": 0.25},
            "animations": {"intro": "动感放大", "outro": {"name": "Kira游动", "duration": 0.5}},
            "transition": {"name": "上移", "duration": 0.4},
            "filters": [{"name": "Lofi II", "intensity": 60}],
            "effects": [{"name": "DV界面"}],
            "keyframes": [
                {"property": "alpha", "time": 0, "value": 0},
                {"property": "alpha", "time": 1, "value": 1},
                {"property": "position_x", "time": 0.5, "value": 0.2},
                {"property": "volume", "time": 1.5, "value": 0.4},
            ],
            "clip": {"rotation": 15, "flip_horizontal": True},
        },
    },
    {"type": "portrait", "data": {"track": "v", "start": 2, "duration": 1,
                                  "animations": {"group": "三分割"}}},
    {
        "type": "words",
        "data": {
            "track": "t", "start": 0, "duration": 2, "text": "Styled",
            "font": "Anton",
            "style": {"size": 12, "bold": True, "italic": True, "color": "#FF8000", "alpha": 0.9,
                      "align": "center", "letter_spacing": 2, "line_spacing": 1},
            "border": {"color": [0, 0, 1], "width": 30},
            "background": {"color": "#00FF00", "alpha": 0.5, "round_radius": 0.2},
            "shadow": {"alpha": 0.5, "angle": -30},
            "bubble": {"effect_id": "7280000000000000001", "resource_id": "7280000000000000002"},
            "text_effect": "7290000000000000003",
            "animations": {"intro": "卡拉OK", "outro": "右上弹出", "loop": "VHS"},
            "keyframes": [{"property": "rotation", "time": 0, "value": 10}],
        },
    },
    {"type": "tone", "data": {"track": "a", "start": 0, "duration": 3,
                              "keyframes": [{"property": "volume", "time": 1, "value": 0.2}]}},
]  # fmt: skip
FULL_TRACKS = [
    {"id": "v", "type": "video"},
    {"id": "t", "type": "text"},
    {"id": "a", "type": "audio"},
    {"id": "subs", "type": "text"},
]


def full_job() -> dict[str, Any]:
    items = [
        *FULL_ITEMS,
        {"type": "subtitle", "data": {"srt": SRT, "track": "subs", "start": 3,
                                      "style": {"size": 7, "color": "#FFFF00"},
                                      "border": {"width": 10}}},
    ]  # fmt: skip
    return local_job(
        items,
        testData={"tracks": FULL_TRACKS},
        segment_styles={"tone": {"fade": {"in": 1, "out": 0.5}, "volume": 0.5}},
    )


def reference_calls(script: Any) -> None:
    """What the full job asks for, in the library's own calls."""
    for name, kind in (("v", "video"), ("t", "text"), ("a", "audio"), ("subs", "text")):
        script.append_track(jy.TrackSpec(jy.TrackType[kind], name=name))
    clip = jy.VideoSegment(
        jy.VideoMaterial(str(MEDIA / "clip.mp4")), jy.Timerange(0, 2_000_000),
        clip_settings=jy.ClipSettings(rotation=15, flip_horizontal=True),
    )  # fmt: skip
    clip.add_fade(500_000, 250_000)
    clip.add_animation(jy.IntroType.动感放大)
    clip.add_animation(jy.OutroType.Kira游动, 500_000)
    clip.add_transition(jy.TransitionType.上移, duration=400_000)
    clip.add_filter(jy.FilterType.Lofi_II, 60)
    clip.add_effect(jy.VideoSceneEffectType.DV界面, [])
    clip.add_keyframe(jy.KeyframeProperty.alpha, 0, 0)
    clip.add_keyframe(jy.KeyframeProperty.alpha, 1_000_000, 1)
    clip.add_keyframe(jy.KeyframeProperty.position_x, 500_000, 0.2)
    clip.add_keyframe(jy.KeyframeProperty.volume, 1_500_000, 0.4)
    script.add_segment(clip, "v")
    portrait = jy.VideoSegment(
        jy.VideoMaterial(str(MEDIA / "portrait.mp4")), jy.Timerange(2_000_000, 1_000_000)
    )
    portrait.add_animation(jy.GroupAnimationType.三分割)
    script.add_segment(portrait, "v")
    words = jy.TextSegment(
        "Styled", jy.Timerange(0, 2_000_000), font=jy.FontType.Anton,
        style=jy.TextStyle(size=12, bold=True, italic=True, color=(1.0, 128 / 255, 0.0),
                           alpha=0.9, align=1, letter_spacing=2, line_spacing=1),
        border=jy.TextBorder(color=(0, 0, 1), width=30),
        background=jy.TextBackground(color="#00FF00", alpha=0.5, round_radius=0.2),
        shadow=jy.TextShadow(alpha=0.5, angle=-30),
    )  # fmt: skip
    words.add_bubble("7280000000000000001", "7280000000000000002")
    words.add_effect("7290000000000000003")
    words.add_animation(jy.TextIntro.卡拉OK)
    words.add_animation(jy.TextOutro.右上弹出)
    words.add_animation(jy.TextLoopAnim.VHS)
    words.add_keyframe(jy.KeyframeProperty.rotation, 0, 10)
    script.add_segment(words, "t")
    tone = jy.AudioSegment(
        jy.AudioMaterial(str(MEDIA / "tone.mp3")), jy.Timerange(0, 3_000_000), volume=0.5
    )
    tone.add_fade(1_000_000, 500_000)
    tone.add_keyframe(1_000_000, 0.2)
    script.add_segment(tone, "a")
    with tempfile.NamedTemporaryFile("w", suffix=".srt", delete=False) as srt:
        srt.write(SRT)
    reference = jy.TextSegment(
        "", jy.Timerange(0, 1_000_000),
        style=jy.TextStyle(size=7, align=1, auto_wrapping=True, color=(1.0, 1.0, 0.0)),
        border=jy.TextBorder(width=10),
    )  # fmt: skip
    script.import_srt(srt.name, "subs", time_offset=3_000_000, style_reference=reference,
                      clip_settings=jy.ClipSettings(transform_y=-0.8))  # fmt: skip
    Path(srt.name).unlink()


def test_every_feature_lands_as_the_library_writes_it(tmp_path: Path) -> None:
    draft = check_draft(build_draft(plan_of(full_job()), {}, tmp_path), tmp_path)
    same_as_library(draft.content, library_draft(reference_calls))
    subs = draft.track("subs")["segments"]
    assert [s["target_timerange"] for s in subs] == [
        {"start": 3_000_000, "duration": 1_000_000},
        {"start": 4_000_000, "duration": 1_500_000},
    ]
    (tone,) = draft.track("a")["segments"]
    assert tone["volume"] == 0.5


def test_apply_style_is_the_librarys_calls() -> None:
    problems: list[FieldProblem] = []
    style = read_style({"fade": {"in": 1}, "volume": 0.7}, (), "audio", problems)
    segment = jy.AudioSegment(jy.AudioMaterial(str(MEDIA / "tone.mp3")), jy.Timerange(0, 2_000_000))
    apply_style(segment, style)
    assert segment.fade.in_duration == 1_000_000 and segment.volume == 0.7
    assert segment.fade.fade_id in segment.extra_material_refs


# --- through the service, and the examples -------------------------------------------------


def example(name: str, base_url: str) -> dict[str, Any]:
    text = (EXAMPLES / name).read_text(encoding="utf-8").replace("{{BASE_URL}}", base_url)
    body: dict[str, Any] = json.loads(text)
    return body


@pytest.mark.parametrize(
    "name",
    ["styles-text.json", "effects-video.json", "subtitles-srt.json", "capcut-text-bubble.json"],
)
async def test_examples_are_accepted_and_build(
    name: str, service: Service, fileserver: FileServer
) -> None:
    task_id = await service.submit(example(name, fileserver.base_url))
    task = await service.wait_final(task_id)
    assert task["status"] == "completed", task
    draft = check_draft(task["draft_path"], service.services.drafts.path)
    body = example(name, fileserver.base_url)
    problems: list[FieldProblem] = []
    plan = plan_draft(body, problems)
    assert problems == []
    styled = [s for s in plan.segments if s.style] + plan.subtitles
    assert styled, "an example shows at least one style"
    if name == "subtitles-srt.json":  # the downloaded SRT and the inline one
        assert len(draft.track("Subtitles")["segments"]) == 2
        (note,) = draft.track("Notes")["segments"]
        assert note["target_timerange"] == {"start": 1_500_000, "duration": 1_500_000}
        assert "an SRT given as text" in draft.material(note["material_id"])["content"]
    if name == "capcut-text-bubble.json":  # 花字 and a bubble, in a CapCut-profile draft
        assert draft.content["platform"]["app_source"] == "cc"
        ids = {m.get("effect_id") for m in draft.content["materials"]["effects"]}
        assert {"361595", "7296357486490144036"} <= ids
    if name == "effects-video.json":
        assert draft.content["materials"]["transitions"][0]["name"] == "上移"
        assert draft.content["materials"]["effects"][0]["name"] == "Lofi II"
