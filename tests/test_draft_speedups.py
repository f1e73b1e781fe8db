"""What makes a large draft quick to build must not change what is built or refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pyJianYingDraft as jy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyJianYingDraft.exceptions import SegmentOverlap

import draftdl.drafts.jianying as jianying
from draftdl.drafts.draft_json import dump_bytes, plain_copy
from draftdl.drafts.track_index import TrackIndex
from test_drafts import local_job, plan_of
from test_profiles import ITEMS

SPANS = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 12)), max_size=40)


def text_track() -> Any:
    script = jy.ScriptFile(1080, 1920, 30, True)
    script.append_track(jy.TrackSpec(jy.TrackType.text, name="t"))
    return script.tracks["t"]


def outcomes(add: Any, spans: list[tuple[int, int]]) -> list[str]:
    """For each (start, duration): accepted, or the library's error text."""
    seen = []
    for start, duration in spans:
        try:
            add(jy.TextSegment("x", jy.Timerange(start, duration)))
            seen.append("ok")
        except SegmentOverlap as exc:
            seen.append(str(exc))
    return seen


@settings(max_examples=300, deadline=None)
@given(SPANS)
def test_the_index_accepts_and_refuses_what_the_library_does(spans: list[tuple[int, int]]) -> None:
    """Zero-length segments, shared edges and segments added out of order included."""
    library, indexed = text_track(), text_track()
    assert outcomes(TrackIndex(indexed).add_segment, spans) == outcomes(library.add_segment, spans)
    assert [s.target_timerange for s in indexed.segments] == [
        s.target_timerange for s in library.segments
    ]


def test_the_index_refuses_another_kind_of_segment() -> None:
    """With the library's own words."""
    track, library = text_track(), text_track()
    audio = jy.AudioSegment.__new__(jy.AudioSegment)
    with pytest.raises(TypeError) as ours:
        TrackIndex(track).add_segment(audio)
    with pytest.raises(TypeError) as theirs:
        library.add_segment(audio)
    assert str(ours.value) == str(theirs.value)
    assert track.segments == []


def test_draft_json_reads_back_as_the_standard_library_wrote_it() -> None:
    value = {"名": "剪映", "n": [1, 2.5, True, None], 3: (4, 5), "big": 2**70}
    text = dump_bytes(value)  # past 64 bits: the standard library writes it
    assert json.loads(text) == json.loads(json.dumps(value, ensure_ascii=False))
    assert "剪映".encode() in text
    small = {k: v for k, v in value.items() if k != "big"}
    assert dump_bytes(small) == orjson.dumps(
        small, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    )


def test_a_plain_copy_shares_nothing() -> None:
    shared = {"a": 1}
    value = {"x": shared, "y": shared, "t": (1, 2), 7: "seven"}
    copied = plain_copy(value)
    assert copied == {"x": {"a": 1}, "y": {"a": 1}, "t": [1, 2], "7": "seven"}
    copied["x"]["a"] = 2
    assert copied["y"]["a"] == 1
    assert plain_copy({"big": 2**70}) == {"big": 2**70}


def test_orjson_text_reads_back_as_the_standard_librarys() -> None:
    value = {
        "f": [0.1, 1e-7, 1.5e300, -0.0, 3.0, 2**63 - 1, -(2**63)],
        "s": '剪映 \u2028 "q" \\ \x01 😀',
        "n": {"a": [{"b": [[], {}]}], "t": True, "z": None},
    }
    assert json.loads(dump_bytes(value)) == json.loads(json.dumps(value, ensure_ascii=False))


def test_a_built_timeline_is_what_the_library_would_have_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clip, a still, a tone and a text (three tracks): ``script_content`` against
    ``ScriptFile.dumps`` read back, on a copy of the same script at the same moment."""
    same: list[bool] = []
    real = jianying.script_content

    def compared(script: Any) -> dict[str, Any]:
        expected = json.loads(copy.deepcopy(script).dumps())
        got = real(script)
        same.append(got == expected)
        return got

    monkeypatch.setattr(jianying, "script_content", compared)  # the name jianying calls
    folder = jianying.build_draft(plan_of(local_job(ITEMS)), {}, tmp_path)
    assert same == [True]
    content = json.loads((folder / "draft_content.json").read_text(encoding="utf-8"))
    assert len(content["tracks"]) == 3


def test_the_builder_checks_overlaps_with_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[tuple[int, int]] = []
    real = TrackIndex.overlaps

    def counted(self: TrackIndex, start: int, end: int) -> bool:
        checked.append((start, end))
        return real(self, start, end)

    monkeypatch.setattr(TrackIndex, "overlaps", counted)
    folder = jianying.build_draft(plan_of(local_job(ITEMS)), {}, tmp_path)
    content = json.loads((folder / "draft_content.json").read_text(encoding="utf-8"))
    segments = [s["target_timerange"] for t in content["tracks"] for s in t["segments"]]
    assert sorted(checked) == sorted((r["start"], r["start"] + r["duration"]) for r in segments)
    assert len(checked) == 4
