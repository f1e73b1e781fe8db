"""Raw (template) mode: raw_segments and raw_materials, as the original server's clients send
them (examples/raw-template.json: JianYing's own segment and material JSON, µs)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pyJianYingDraft as jy
import pytest

from draftcheck import Draft, check_draft
from draftdl.drafts.jianying import build_draft
from draftdl.drafts.spec import plan_draft
from draftdl.errors import DraftBuildError, FieldProblem, RequestRejected
from draftdl.tasks.validation import validate_job
from fileserver import FileServer
from servers import Service

MEDIA = Path(__file__).parent / "data" / "media"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "raw-template.json"
CLIP_US, TONE_US = 4_000_000, 6_034_000


def template_job(base: str | None = None) -> dict[str, Any]:
    """The example with its media from ``base`` (a URL), else as local paths."""
    media = f"{base}/media" if base else str(MEDIA)
    text = EXAMPLE.read_text(encoding="utf-8").replace("{{BASE_URL}}/media", media)
    body: dict[str, Any] = json.loads(text)
    return body


def build(body: dict[str, Any], root: Path) -> Draft:
    problems: list[FieldProblem] = []
    plan = plan_draft(body, problems)
    assert problems == []
    draft = check_draft(build_draft(plan, {}, root), root)
    jy.DraftFolder(str(root)).load_template(draft.folder.name)  # the library reads it back
    return draft


def old_ids(node: Any) -> set[str]:
    """Every id the request's raw JSON carries (the template's ids)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "id" and isinstance(value, str) and value.startswith("TPL-"):
                found.add(value)
            found |= old_ids(value)
    elif isinstance(node, list):
        for value in node:
            found |= old_ids(value)
    return found


def refused(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(RequestRejected) as info:
        validate_job(body, max_files=20)
    return {p.path: p.msg for p in info.value.problems}


def test_every_raw_segment_lands_with_its_values_under_fresh_ids(tmp_path: Path) -> None:
    body = template_job()
    draft = build(body, tmp_path)
    content = draft.content
    text = json.dumps(content)
    for old in old_ids(body["raw_segments"]) | old_ids(body["raw_materials"]):
        assert old not in text, f"template id {old} reached the draft"
    assert [t["name"] for t in content["tracks"]] == ["Main", "Words", "BGM"]
    raw_video, clone = draft.track("Main")["segments"]
    template = body["raw_segments"][0]["segment"]
    # The template segment: its own timing, speed, volume, keyframes and extra materials.
    assert raw_video["target_timerange"] == {"start": 0, "duration": 2_000_000}
    assert raw_video["source_timerange"] == {"start": 0, "duration": 3_000_000}
    assert raw_video["speed"] == 1.5 and raw_video["volume"] == template["volume"]
    (frames,) = raw_video["common_keyframes"]
    assert frames["property_type"] == "KFTypeAlpha"
    assert [f["values"] for f in frames["keyframe_list"]] == [[0.2], [1.0]]
    assert all(not f["id"].startswith("TPL-") for f in frames["keyframe_list"])
    refs = {
        draft.material(r).get("type"): draft.material(r) for r in raw_video["extra_material_refs"]
    }
    assert refs["speed"]["speed"] == 1.5
    (intro,) = refs["sticker_animation"]["animations"]
    assert intro["name"] == "斜切" and intro["type"] == "in" and intro["id"] == "10696371"
    assert refs["audio_fade"]["id"] in draft.content["materials"]["audio_fades"][0]["id"]
    video = draft.material(raw_video["material_id"])
    assert draft.same_file(raw_video["material_id"], MEDIA / "clip.mp4")
    assert video["duration"] == CLIP_US and video["width"] > 0
    # The test item on the template's material: a clone with the item's values.
    assert clone["id"] != raw_video["id"] and clone["material_id"] != raw_video["material_id"]
    assert set(clone["extra_material_refs"]).isdisjoint(raw_video["extra_material_refs"])
    assert clone["target_timerange"] == {"start": 3_000_000, "duration": 1_000_000}
    assert clone["source_timerange"] == {"start": 0, "duration": 1_500_000}  # at speed 1.5
    assert clone["clip"]["transform"] == {"x": 0.5, "y": -0.25}
    assert clone["clip"]["scale"] == {"x": 0.8, "y": 0.8}
    assert clone["volume"] == 0.2
    assert clone["common_keyframes"][0]["id"] != frames["id"]
    clone_refs = [draft.material(r)["type"] for r in clone["extra_material_refs"]]
    assert sorted(clone_refs) == sorted(refs)
    # A raw text with its style, and its animation from raw_materials.
    (words,) = draft.track("Words")["segments"]
    material = draft.material(words["material_id"])
    styled = json.loads(material["content"])
    assert styled["text"] == "hello"
    assert styled["styles"][0]["fill"]["content"]["solid"]["color"] == [1.0, 0.0, 0.0]
    assert styled["styles"][0]["bold"] is True
    (anim,) = [draft.material(r) for r in words["extra_material_refs"]]
    assert anim["animations"][0]["name"] == "复古打字机"
    # Audio whose material is only in raw_materials, on a track only the raw segment names.
    (tone,) = draft.track("BGM")["segments"]
    assert draft.same_file(tone["material_id"], MEDIA / "tone.mp3")
    assert draft.material(tone["material_id"])["duration"] == TONE_US
    fades = [draft.material(r) for r in tone["extra_material_refs"]]
    assert {f["type"] for f in fades} == {"speed", "audio_fade"}
    assert content["duration"] == 4_000_000


def test_two_clones_of_one_template_share_no_id(tmp_path: Path) -> None:
    body = template_job()
    items = body["testData"]["items"]
    portrait = str(MEDIA / "portrait.mp4")
    items.append(
        {"type": "clip", "data": {"start": 5, "duration": 1, "speed": 2, "path": portrait}}
    )
    draft = build(body, tmp_path)
    segments = draft.track("Main")["segments"]
    assert len(segments) == 3
    ids = [s["id"] for s in segments] + [s["material_id"] for s in segments]
    ids += [r for s in segments for r in s["extra_material_refs"]]
    assert len(ids) == len(set(ids))
    last = segments[2]
    assert last["target_timerange"] == {"start": 5_000_000, "duration": 1_000_000}
    assert last["speed"] == 2.0 and last["source_timerange"]["duration"] == 2_000_000
    assert draft.same_file(last["material_id"], portrait)
    assert draft.same_file(segments[1]["material_id"], MEDIA / "clip.mp4")
    speeds = [draft.material(r) for r in last["extra_material_refs"]]
    assert [m["speed"] for m in speeds if m["type"] == "speed"] == [2.0]


def test_a_clone_longer_than_its_media_fails_clearly(tmp_path: Path) -> None:
    body = template_job()
    body["testData"]["items"][0]["data"].update(duration=3, path=str(MEDIA / "portrait.mp4"))
    problems: list[FieldProblem] = []
    plan = plan_draft(body, problems)
    assert problems == []
    with pytest.raises(DraftBuildError) as info:
        build_draft(plan, {}, tmp_path)
    assert "testData item 0" in str(info.value) and "holds 2.00s" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_unknown_names_and_fields_are_refused_with_their_path() -> None:
    body = template_job("http://h")
    body["raw_segments"][0]["segment"]["sparkle"] = True
    body["raw_segments"][0]["colour"] = "red"
    body["raw_segments"][1]["extra_materials"] = {"glitters": []}
    body["raw_materials"][0]["data"]["font_colour"] = "#fff"
    body["raw_materials"][1]["category"] = "animations"
    body["raw_materials"][2]["note"] = "mine"
    body["raw_segments"][2]["segment"]["target_timerange"]["wobble"] = 1
    body["testData"]["items"][0]["data"]["zoom"] = 2
    found = refused(body)
    assert set(found) == {
        "raw_segments[0].segment.sparkle",
        "raw_segments[0].colour",
        "raw_segments[1].extra_materials.glitters",
        "raw_materials[0].data.font_colour",
        "raw_materials[1].category",
        "raw_segments[1].segment.extra_material_refs[0]",  # its material: raw_materials[1]
        "raw_materials[2].note",
        "raw_segments[2].segment.target_timerange.wobble",
        "testData.items[0].data.zoom",
    }, found
    assert "'sparkle'" in found["raw_segments[0].segment.sparkle"]
    assert "'glitters'" in found["raw_segments[1].extra_materials.glitters"]
    assert "'animations'" in found["raw_materials[1].category"]


def test_what_can_be_checked_before_downloading_is_refused() -> None:
    def problems(change: Any) -> dict[str, str]:
        body = template_job("http://h")
        change(body)
        return refused(body)

    def nowhere(body: dict[str, Any]) -> None:
        body["raw_materials"].pop(0)  # the text's material

    found = problems(nowhere)
    assert "'TPL-MAT-TEXT' is nowhere" in found["raw_segments[1].segment.material_id"]

    def wrong_track(body: dict[str, Any]) -> None:
        body["raw_segments"][1]["track_id"] = "main"  # a video track in testData.tracks

    assert "video track" in problems(wrong_track)["raw_segments[1].track_type"]

    def wrong_category(body: dict[str, Any]) -> None:
        body["raw_segments"][0]["material_category"] = "audios"

    assert "raw_segments[0].material_category" in problems(wrong_category)

    def overlap(body: dict[str, Any]) -> None:
        body["testData"]["items"][0]["data"]["start"] = 1.5  # the template plays 0-2 s

    assert "overlaps raw segment 0" in problems(overlap)["testData.items[0]"]

    def negative(body: dict[str, Any]) -> None:
        body["raw_segments"][2]["segment"]["target_timerange"]["start"] = -1
        body["raw_segments"][0]["segment"]["source_timerange"]["duration"] = 0
        body["raw_segments"][0]["segment"]["speed"] = 0

    assert set(problems(negative)) == {
        "raw_segments[2].segment.target_timerange.start",
        "raw_segments[0].segment.source_timerange.duration",
        "raw_segments[0].segment.speed",
    }

    def dangling(body: dict[str, Any]) -> None:
        body["raw_segments"][0]["segment"]["extra_material_refs"].append("GONE")

    assert (
        "'GONE' is nowhere" in problems(dangling)["raw_segments[0].segment.extra_material_refs[3]"]
    )

    def unused(body: dict[str, Any]) -> None:
        body["raw_materials"].append(copy.deepcopy(body["raw_materials"][1]) | {"id": "spare"})

    assert "raw_materials[3]" in problems(unused)

    def no_file(body: dict[str, Any]) -> None:
        del body["raw_materials"][2]["data"]["path"]

    assert "must name its file" in problems(no_file)["raw_materials[2].data"]

    def styled(body: dict[str, Any]) -> None:  # read for the raw segment's kind (text)
        body["segment_styles"] = {"TPL-SEG-TEXT": {"color": "#00ff00", "filters": ["Lofi II"]}}

    assert set(problems(styled)) == {"segment_styles.TPL-SEG-TEXT.filters"}

    def bad_text(body: dict[str, Any]) -> None:
        body["raw_materials"][0]["data"]["content"] = "plain words"

    assert "raw_materials[0].data.content" in problems(bad_text)


async def test_a_url_only_in_raw_materials_is_downloaded_into_the_draft(
    service: Service, fileserver: FileServer
) -> None:
    body = template_job(fileserver.base_url)
    tone = fileserver.url("/media/tone.mp3?only=raw")
    body["raw_materials"][2]["data"]["path"] = tone
    task = await service.wait_final(await service.submit(body), timeout=60)
    assert task["status"] == "completed", task["error_message"]
    assert tone in {f["url"] for f in task["files"]}
    root = service.services.drafts.path
    draft = check_draft(task["draft_path"], root)
    jy.DraftFolder(str(root)).load_template(draft.folder.name)
    (segment,) = draft.track("BGM")["segments"]
    assert draft.same_file(segment["material_id"], MEDIA / "tone.mp3")
    assert "http" not in json.dumps(draft.content["materials"]["audios"])
    assert "http" not in json.dumps(draft.content["materials"]["videos"])
    assert len(draft.track("Main")["segments"]) == 2


def test_segment_styles_land_in_raw_segments_as_the_library_writes_them(tmp_path: Path) -> None:
    body = template_job()
    body["segment_styles"] = {
        "TPL-SEG-VIDEO": {  # by segment id
            "clip": {"x": 0.25, "scale_x": 1.5, "scale_y": 1.5},
            "volume": 0.7,
            "fade": {"in": 0.5, "out": 0.25},
            "animations": {"intro": "动感放大"},
            "transition": {"name": "叠化", "duration": 0.5},
            "filters": [{"name": "Lofi II", "intensity": 60}],
        },
        "TPL-MAT-TEXT": {  # by material id
            "color": "#00ff00",
            "size": 20,
            "font": "Anton",
            "border": {"color": "#0000ff", "width": 60},
            "shadow": {"distance": 10},
        },
    }
    draft = build(body, tmp_path)
    # The same calls on normal segments, in a script built here.
    script = jy.ScriptFile(1920, 1080, 30, True)
    video = jy.VideoSegment(
        jy.VideoMaterial(str(MEDIA / "clip.mp4")),
        jy.Timerange(0, 2_000_000),
        clip_settings=jy.ClipSettings(transform_x=0.25, scale_x=1.5, scale_y=1.5),
        volume=0.7,
    )
    video.add_fade(500_000, 250_000).add_animation(jy.IntroType.动感放大)
    video.add_transition(jy.TransitionType.叠化, duration=500_000)
    video.add_filter(jy.FilterType.Lofi_II, 60)
    text = jy.TextSegment(
        "hello",
        jy.Timerange(0, 1_000_000),
        font=jy.FontType.Anton,
        style=jy.TextStyle(size=20, color=(0.0, 1.0, 0.0)),
        border=jy.TextBorder(color=(0.0, 0.0, 1.0), width=60),
        shadow=jy.TextShadow(distance=10),
    )
    for kind, segment in (("video", video), ("text", text)):
        script.add_segment(segment, script.append_track(jy.TrackSpec(jy.TrackType[kind])))
    want = json.loads(script.dumps())
    by_id = {m["id"]: (c, m) for c, ms in want["materials"].items() if isinstance(ms, list)
             for m in ms if isinstance(m, dict) and "id" in m}  # fmt: skip

    def extras(seg: dict[str, Any], materials: Any) -> dict[str, dict[str, Any]]:
        out = {}
        for ref in seg["extra_material_refs"]:
            material = materials(ref)
            out[material["type"]] = {k: v for k, v in material.items() if k != "id"}
        return out

    raw_video = draft.track("Main")["segments"][0]
    made_video = want["tracks"][0]["segments"][0]
    assert raw_video["clip"] == made_video["clip"]  # x 0.25, scale 1.5; y as the raw had it
    assert raw_video["volume"] == made_video["volume"] == 0.7
    got = extras(raw_video, draft.material)
    made = extras(made_video, lambda r: by_id[r][1])
    for kind in ("audio_fade", "sticker_animation", "transition", "filter"):
        assert got[kind] == made[kind], kind
    assert got["speed"]["speed"] == 1.5  # the raw segment's own speed stays
    kinds = [draft.material(r)["type"] for r in raw_video["extra_material_refs"]]
    assert sorted(kinds) == sorted(["speed", "sticker_animation", "audio_fade", "transition",
                                    "filter"])  # fmt: skip
    (intro,) = got["sticker_animation"]["animations"]  # replaced the template's 斜切
    assert intro["name"] == "动感放大"
    assert raw_video["common_keyframes"][0]["property_type"] == "KFTypeAlpha"  # kept
    clone = draft.track("Main")["segments"][1]  # a clone of the template: styled too
    assert clone["clip"]["transform"]["x"] == 0.5 and clone["volume"] == 0.2  # its item wins
    assert {draft.material(r)["type"] for r in clone["extra_material_refs"]} >= {"transition"}
    # The raw text: the style's fields exactly as the library writes them, the rest kept.
    (words,) = draft.track("Words")["segments"]
    material = draft.material(words["material_id"])
    made_text = by_id[want["tracks"][1]["segments"][0]["material_id"]][1]
    styled, lib = json.loads(material["content"]), json.loads(made_text["content"])
    for key in ("fill", "size", "font", "strokes", "shadows"):
        assert styled["styles"][0][key] == lib["styles"][0][key], key
    assert styled["styles"][0]["bold"] is True  # the raw template's, not the style's
    assert material["check_flag"] == 31 | 32  # the shadow's bit added
    (anim,) = [draft.material(r) for r in words["extra_material_refs"]]
    assert anim["animations"][0]["name"] == "复古打字机"
