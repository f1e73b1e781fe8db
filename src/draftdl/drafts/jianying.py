"""Builds a JianYing draft folder with pyJianYingDraft from a DraftPlan and the local files.

Runs in a worker thread. pymediainfo (which pyJianYingDraft probes media with) is not
thread-safe — concurrent probes give wrong results or crash (pymediainfo issue 152) — so every
probe in this process goes through one lock. The folder is built under a hidden temporary name
and renamed when complete: a failed build leaves nothing in ``drafts_root``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeAlias

import pyJianYingDraft as jy
from PIL import Image

from draftdl.drafts.spec import SECOND, DraftPlan, SegmentPlan
from draftdl.errors import DraftBuildError

# Process-wide on purpose: the library it guards keeps process-wide state.
PROBE_LOCK = threading.Lock()
UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
MAX_TITLE = 40
PICTURE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
PHOTO_DURATION = 10_800_000_000  # what the library gives a photo: 3 h, in µs

Material: TypeAlias = Any  # jy.VideoMaterial or jy.AudioMaterial; the library is untyped


def folder_title(title: str) -> str:
    """The readable part of a draft folder name: safe on Windows and macOS, short."""
    name = UNSAFE.sub("_", title).strip(" .")
    return name[:MAX_TITLE].rstrip(" .") or "draft"


def picture_material(path: str) -> Material | None:
    """A still picture as the library's material, sized by Pillow instead of MediaInfo.

    MediaInfo costs about 5 ms a file and must run one at a time; a picture needs only its
    size, which Pillow reads from the header in microseconds and in parallel. The fields are
    the ones ``VideoMaterial`` sets for a photo (pyJianYingDraft 0.3.x). Anything Pillow does
    not read as a still picture (videos, animated GIFs) returns None and is probed as usual.
    """
    if os.path.splitext(path)[1].lower() not in PICTURE_EXTENSIONS:
        return None
    try:
        with Image.open(path) as image:
            if getattr(image, "is_animated", False):
                return None
            width, height = image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    material = jy.VideoMaterial.__new__(jy.VideoMaterial)
    material.material_name = os.path.basename(path)
    material.material_id = uuid.uuid4().hex
    material.path = path
    material.crop_settings = jy.CropSettings()
    material.local_material_id = ""
    material.material_type = "photo"
    material.duration = PHOTO_DURATION
    material.width, material.height = width, height
    return material


def _seconds(us: int) -> str:
    return f"{us / SECOND:.2f}s"


class DraftWriter:
    """One build: resolves files, probes media once per file, adds tracks and segments."""

    def __init__(self, plan: DraftPlan, files: Mapping[str, str]) -> None:
        self.plan = plan
        self.files = files
        self.materials: dict[tuple[str, str], Material] = {}
        self.track_end: dict[str, int] = {}

    def local_path(self, seg: SegmentPlan) -> str:
        assert seg.source is not None
        path = self.files.get(seg.source, seg.source)
        if path.startswith(("http://", "https://")):
            raise DraftBuildError(f"material {seg.material_id!r}: {seg.source} was not downloaded")
        return os.path.abspath(path)

    def material(self, seg: SegmentPlan) -> Material:
        path = self.local_path(seg)
        key = (path, "audio" if seg.kind == "audio" else "video")
        if key in self.materials:
            return self.materials[key]
        try:
            material = picture_material(path) if seg.kind != "audio" else None
            if material is None:
                with PROBE_LOCK:
                    material = (
                        jy.AudioMaterial(path) if seg.kind == "audio" else jy.VideoMaterial(path)
                    )
        except Exception as exc:  # the library raises ValueError, KeyError, OSError...
            raise DraftBuildError(
                f"material {seg.material_id!r} ({path}): cannot read it as {seg.kind}: {exc}"
            ) from exc
        self.materials[key] = material
        return material

    def add_segments(self, script: jy.ScriptFile, refs: Mapping[str, jy.TrackRef]) -> None:
        for seg in self.plan.segments:
            ref = refs[seg.track]
            try:
                script.add_segment(self.segment(seg), ref)
            except DraftBuildError:
                raise
            except Exception as exc:
                raise DraftBuildError(
                    f"material {seg.material_id!r} on track {seg.track!r}: {exc}"
                ) from exc

    def segment(self, seg: SegmentPlan) -> Any:
        start = seg.start if seg.start is not None else self.track_end.get(seg.track, 0)
        if seg.kind == "text":
            assert seg.text is not None and seg.duration is not None
            self.track_end[seg.track] = start + seg.duration
            return jy.TextSegment(seg.text, jy.Timerange(start, seg.duration))
        material = self.material(seg)
        speed = seg.speed or 1.0
        is_still = isinstance(material, jy.VideoMaterial) and material.material_type == "photo"
        duration = seg.duration
        if duration is None:
            if is_still:
                duration = 3 * SECOND
            else:
                available = material.duration - seg.source_start
                duration = round((seg.source_duration or available) / speed)
        if not is_still:
            needed = seg.source_duration or round(duration * speed)
            if seg.source_start + needed > material.duration or needed <= 0:
                raise DraftBuildError(
                    f"material {seg.material_id!r} ({self.local_path(seg)}): the segment needs "
                    f"{_seconds(needed)} from {_seconds(seg.source_start)}, but the media "
                    f"holds {_seconds(material.duration)}"
                )
        source = None
        if seg.source_duration is not None or seg.source_start:
            source = jy.Timerange(seg.source_start, seg.source_duration or round(duration * speed))
        target = jy.Timerange(start, duration)
        self.track_end[seg.track] = start + duration
        if isinstance(material, jy.AudioMaterial):
            return jy.AudioSegment(
                material,
                target,
                source_timerange=source,
                speed=seg.speed if source is None else None,
                volume=seg.volume,
            )
        clip = jy.ClipSettings(
            scale_x=seg.scale, scale_y=seg.scale, transform_x=seg.x, transform_y=seg.y
        )
        return jy.VideoSegment(
            material,
            target,
            source_timerange=source,
            speed=seg.speed if source is None else None,
            volume=seg.volume,
            clip_settings=clip,
        )


def build_draft(plan: DraftPlan, files: Mapping[str, str], root: Path) -> Path:
    """Writes the draft; returns its folder. Raises DraftBuildError with a usable message."""
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    staging = f".building-{uuid.uuid4().hex}"
    folder = jy.DraftFolder(str(root))
    try:
        canvas = plan.canvas
        script = folder.create_draft(staging, canvas.width, canvas.height, canvas.fps)
        script.content["config"].update(plan.config)
        script.content["id"] = str(uuid.uuid4()).upper()
        refs = {
            t.key: script.append_track(jy.TrackSpec(jy.TrackType[t.kind], name=t.name))
            for t in plan.tracks
        }
        DraftWriter(plan, files).add_segments(script, refs)
        script.save()
        final = _claim_name(root, folder_title(plan.title))
        _write_meta(root / staging, final, script)
        os.rename(root / staging, final)
    except BaseException:
        shutil.rmtree(root / staging, ignore_errors=True)
        raise
    return final


def _claim_name(root: Path, title: str) -> Path:
    for _ in range(100):
        candidate = root / f"{title}_{secrets.token_hex(3)}"
        if not candidate.exists():
            return candidate
    raise DraftBuildError(f"could not find a free draft folder name in {root}")


def _write_meta(staging: Path, final: Path, script: jy.ScriptFile) -> None:
    """The library copies its template's meta as is; these fields make the draft its own."""
    meta_path = staging / "draft_meta_info.json"
    meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
    now = int(time.time() * SECOND)
    meta.update(
        draft_id=str(uuid.uuid4()).upper(),
        draft_name=final.name,
        draft_fold_path=str(final),
        draft_root_path=str(final.parent),
        tm_draft_create=now,
        tm_draft_modified=now,
        tm_duration=script.duration,
    )
    meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=4), encoding="utf-8")
    # macOS JianYing reads draft_info.json, Windows draft_content.json: write both.
    shutil.copyfile(staging / "draft_content.json", staging / "draft_info.json")
