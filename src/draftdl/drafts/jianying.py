"""Builds a JianYing draft folder with pyJianYingDraft from a DraftPlan and the local files.

The server runs it in a build worker process (drafts/pool.py), one build at a time per
process. pymediainfo (which pyJianYingDraft probes media with) is not thread-safe — concurrent
probes give wrong results or crash (pymediainfo issue 152) — so every probe in a process still
goes through one lock: in a worker it is never contended, and it keeps builds run in threads
(tools, tests, a builder without a pool) right. The folder is built in a staging folder outside
``drafts_root`` on the same file system (location.staging_dir) and renamed into the root when
complete: JianYing never lists a half-written draft, and a failed build leaves nothing.
"""

from __future__ import annotations

import errno
import json
import math
import os
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import pyJianYingDraft as jy
from PIL import Image

from draftdl.drafts.draft_json import dump_bytes, script_content
from draftdl.drafts.library_errors import explain
from draftdl.drafts.location import STAGING_PREFIX, remove_builds_of, staging_dir
from draftdl.drafts.profiles import DEFAULT_PROFILE, PROFILES, apply_profile
from draftdl.drafts.raw_writer import write_raw
from draftdl.drafts.spec import SECOND, SUBTITLE_STYLE, DraftPlan, SegmentPlan, SubtitlePlan
from draftdl.drafts.styles import apply_style, text_style
from draftdl.drafts.track_index import index_tracks
from draftdl.errors import DraftBuildError
from draftdl.names import clean_text, not_a_device
from draftdl.sources import OUTSIDE, SourcePolicy

# Process-wide on purpose: the library it guards keeps process-wide state (per worker).
PROBE_LOCK = threading.Lock()
MAX_TITLE = 40
STAGING = STAGING_PREFIX  # + the build's key + a random part; location.py sweeps old ones
PICTURE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
PHOTO_DURATION = 10_800_000_000  # what the library gives a photo: 3 h, in µs
# A picture's draft_materials entry as JianYing and CapCut write it: 5 s, no rough-cut range
# (CapCut 7.5's meta, github.com/lsu7202/clickclip_mvp draft_meta_info.json @ 43ebf056).
PHOTO_ENTRY_DURATION = 5_000_000

Material: TypeAlias = Any  # jy.VideoMaterial or jy.AudioMaterial; the library is untyped


def folder_title(title: str) -> str:
    """The readable part of a draft folder name: safe on Windows and macOS, short, and
    shown as it reads (no invisible direction marks)."""
    name = clean_text(title)[:MAX_TITLE].rstrip(" .")
    return not_a_device(name) if name else "draft"


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


def _path(loc: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _seconds(us: int) -> str:
    return f"{us / SECOND:.2f}s"


@dataclass
class MediaEntry:
    """One file in the draft's ``assets/`` and its ``draft_materials`` entry."""

    id: str
    final_path: str
    kind: str  # video, photo, music (JianYing's "metetype")
    duration: int
    width: int
    height: int
    size: int

    def meta(self, now_s: int) -> dict[str, Any]:
        photo = self.kind == "photo"
        duration = PHOTO_ENTRY_DURATION if photo else self.duration
        return {
            "ai_group_type": "",
            "create_time": now_s,
            "duration": duration,
            "extra_info": os.path.basename(self.final_path),
            "file_Path": self.final_path,
            "height": self.height,
            "id": self.id,
            "import_time": now_s,
            "import_time_ms": now_s * SECOND,
            "item_source": 1,
            "md5": "",
            "metetype": self.kind,
            "roughcut_time_range": (
                {"duration": -1, "start": -1} if photo else {"duration": duration, "start": 0}
            ),
            "sub_time_range": {"duration": -1, "start": -1},
            "type": 0,
            "width": self.width,
        }


class DraftWriter:
    """One build: places each file in ``assets/`` (hard link, else copy), probes it once,
    adds tracks and segments. Material paths name the draft's final folder, which the staging
    folder becomes when it is renamed."""

    def __init__(
        self,
        plan: DraftPlan,
        files: Mapping[str, str],
        staging: Path,
        final: Path,
        local: SourcePolicy | None = None,
    ) -> None:
        self.plan = plan
        self.files = files
        self.local = local
        self.staging = staging
        self.final = final
        self.materials: dict[tuple[str, str], Material] = {}
        self.entries: dict[str, MediaEntry] = {}  # final path → entry
        self.asset_names: dict[str, str] = {}  # source path → name in assets/
        self._taken: set[str] = set()  # those names, lower-cased
        self.track_end: dict[str, int] = {}

    def place(self, source: str) -> tuple[str, str]:
        """Puts ``source`` into the staging ``assets/``; returns (staged path, final path)."""
        name = self.asset_names.get(source)
        if name is None:
            stem, ext = os.path.splitext(os.path.basename(source))
            name, n = f"{stem}{ext}", 1
            while name.lower() in self._taken:
                name, n = f"{stem}-{n}{ext}", n + 1
            self._taken.add(name.lower())
            assets = self.staging / "assets"
            assets.mkdir(exist_ok=True)
            try:
                os.link(source, assets / name)
            except OSError:  # another file system, or no hard links there
                shutil.copy2(source, assets / name)
            self.asset_names[source] = name
        return str(self.staging / "assets" / name), str(self.final / "assets" / name)

    def local_path(self, seg: SegmentPlan) -> str:
        assert seg.source is not None
        downloaded = self.files.get(seg.source)
        if downloaded is not None:
            return os.path.abspath(downloaded)
        if seg.source.startswith(("http://", "https://")):
            raise DraftBuildError(f"material {seg.material_id!r}: {seg.source} was not downloaded")
        if self.local is None:  # a caller that builds from its own files (tests, tools)
            return os.path.abspath(seg.source)
        # Checked at submit; again here, on the path as it resolves now (a symlink swapped
        # in since is caught), and the resolved path is what is read.
        real = self.local.resolved_local(seg.source)
        if real is None:
            raise DraftBuildError(f"material {seg.material_id!r}: {OUTSIDE}")
        return str(real)

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
            if path.lower().endswith(".gif"):
                material.duration = gif_duration(path)
            staged, final = self.place(path)
        except Exception as exc:  # the library raises ValueError, KeyError, OSError...
            raise DraftBuildError(
                f"material {seg.material_id!r} ({path}): cannot read it as {seg.kind}: "
                f"{explain(exc)}"
            ) from exc
        material.path = final
        entry = self.entries.get(final)
        if entry is None:
            audio = isinstance(material, jy.AudioMaterial)
            entry = self.entries[final] = MediaEntry(
                id=str(uuid.uuid4()),
                final_path=final,
                kind="music" if audio else str(material.material_type),
                duration=int(material.duration),
                width=0 if audio else int(material.width),
                height=0 if audio else int(material.height),
                size=os.stat(staged).st_size,
            )
        if not isinstance(material, jy.AudioMaterial):
            material.local_material_id = entry.id
        self.materials[key] = material
        return material

    def add_segments(self, script: jy.ScriptFile, refs: Mapping[str, jy.TrackRef]) -> None:
        for seg in self.plan.segments:
            ref = refs[seg.track]
            try:
                script.add_segment(apply_style(self.segment(seg), seg.style), ref)
            except DraftBuildError:
                raise
            except Exception as exc:
                raise DraftBuildError(
                    f"material {seg.material_id!r} on track {seg.track!r}: {explain(exc)}"
                ) from exc
        for sub in self.plan.subtitles:
            self.subtitles(script, sub)

    def subtitles(self, script: jy.ScriptFile, sub: SubtitlePlan) -> None:
        """``ScriptFile.import_srt`` onto the item's text track, styled by a reference
        segment (the library copies its style, font, border, background, shadow, 花字)."""
        name = next(t.name for t in self.plan.tracks if t.key == sub.track)
        where = f"subtitles of {_path(sub.loc)} on track {sub.track!r}"
        if sub.url is not None:
            path = self.files.get(sub.url)
            if path is None:
                raise DraftBuildError(f"{where}: {sub.url} was not downloaded")
        else:
            assert sub.text is not None
            handle, path = tempfile.mkstemp(suffix=".srt", prefix="draftdl-")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(sub.text)
        try:
            reference = apply_style(
                jy.TextSegment(
                    "", jy.Timerange(0, SECOND), style=text_style(sub.style, SUBTITLE_STYLE)
                ),
                sub.style,
            )
            clip = jy.ClipSettings(**{"transform_y": -0.8, **sub.style.clip})
            script.import_srt(
                path, name, time_offset=sub.offset, style_reference=reference, clip_settings=clip
            )
        except Exception as exc:
            raise DraftBuildError(f"{where}: {explain(exc)}") from exc
        finally:
            if sub.url is None:
                os.unlink(path)

    def _ends(self, track: str, end: int) -> None:
        self.track_end[track] = max(self.track_end.get(track, 0), end)

    def segment(self, seg: SegmentPlan) -> Any:
        start = seg.start if seg.start is not None else self.track_end.get(seg.track, 0)
        if seg.kind == "text":
            assert seg.text is not None and seg.duration is not None
            self._ends(seg.track, start + seg.duration)
            return jy.TextSegment(seg.text, jy.Timerange(start, seg.duration))
        material = self.material(seg)
        speed = seg.speed or 1.0
        is_still = isinstance(material, jy.VideoMaterial) and material.material_type == "photo"
        duration = seg.duration
        available = material.duration - seg.source_start
        if duration is None:
            if is_still:
                duration = 3 * SECOND
            else:  # floor: the played span must never outrun the media by a rounding µs
                duration = math.floor((seg.source_duration or available) / speed)
        if not is_still:
            needed = seg.source_duration or round(duration * speed)
            if seg.duration is None and seg.source_duration is None:
                needed = min(needed, available)
            if seg.source_start + needed > material.duration or needed <= 0:
                raise DraftBuildError(
                    f"material {seg.material_id!r} ({self.local_path(seg)}): the segment needs "
                    f"{_seconds(needed)} from {_seconds(seg.source_start)}, but the media "
                    f"holds {_seconds(material.duration)}"
                )
        source = None
        if seg.source_duration is not None or seg.source_start:
            source = jy.Timerange(seg.source_start, needed if not is_still else duration)
        target = jy.Timerange(start, duration)
        self._ends(seg.track, start + duration)
        # With a source range the library derives the speed from the two lengths.
        timing = {
            "source_timerange": source,
            "speed": seg.speed if source is None else None,
            "volume": seg.volume,
        }
        if isinstance(material, jy.AudioMaterial):
            return jy.AudioSegment(material, target, **timing)
        clip = jy.ClipSettings(
            scale_x=seg.scale, scale_y=seg.scale, transform_x=seg.x, transform_y=seg.y
        )
        return jy.VideoSegment(material, target, clip_settings=clip, **timing)


def build_draft(
    plan: DraftPlan,
    files: Mapping[str, str],
    root: Path,
    key: str | None = None,
    local: SourcePolicy | None = None,
    profile: str = DEFAULT_PROFILE,
    staging_root: Path | None = None,
) -> Path:
    """Writes the draft; returns its folder. Raises DraftBuildError with a usable message.

    ``local`` says which local paths may be read (None: any, for callers that build from
    their own files). With ``key`` (the task's), the folder name is fixed: a build whose
    completion was never recorded (a kill -9, a shutdown past its grace) left that folder
    whole (it is renamed into place in one step), so running it again adopts the folder
    instead of making a copy.

    ``profile`` is the default draft profile (the job's ``draft_config.profile`` wins);
    ``staging_root`` is where to stage when it is on the root's file system (the data
    folder's ``staging/``), else a hidden folder beside the root.
    """
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    title = folder_title(plan.title)
    if key is None:
        final = _claim_name(root, title)
    else:
        final = root / f"{title}_{key}"
        if (final / "draft_content.json").is_file() and (final / "draft_meta_info.json").is_file():
            return final
        if final.exists():  # not a draft of ours: never write over it
            final = _claim_name(root, title)
    if key is not None:  # an earlier run of this very build, cut off: its leftovers go
        remove_builds_of(root, key, staging_root)
    markers = PROFILES[plan.profile or profile]
    staging_name = f"{STAGING}{key or 'x'}-{uuid.uuid4().hex}"
    stage_in = staging_dir(root, staging_root)
    staging = stage_in / staging_name
    folder = jy.DraftFolder(str(stage_in))
    try:
        canvas = plan.canvas
        script = folder.create_draft(
            staging_name, canvas.width, canvas.height, max(1, round(canvas.fps))
        )
        script.content["config"].update(plan.config)
        script.content["id"] = str(uuid.uuid4()).upper()
        refs = {
            t.key: script.append_track(jy.TrackSpec(jy.TrackType[t.kind], name=t.name))
            for t in plan.tracks
        }
        index_tracks(script)
        writer = DraftWriter(plan, files, staging, final, local)
        writer.add_segments(script, refs)
        content = script_content(script)
        write_raw(content, plan.raw, writer, {k: r.track_id for k, r in refs.items()})
        finish_content(content, writer.entries)
        content["fps"] = float(canvas.fps)  # as asked, a float as JianYing writes it
        apply_profile(content, markers)
        text = dump_bytes(content)
        # Windows JianYing reads draft_content.json, macOS draft_info.json: the same bytes.
        for name in ("draft_content.json", "draft_info.json"):
            (staging / name).write_bytes(text)
        _write_meta(staging, final, content, writer.entries)
        _move_into_place(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _move_into_place(staging: Path, final: Path) -> None:
    """One rename. Should the staging folder turn out to be on another file system after all
    (EXDEV), it is copied into a hidden folder inside the root first, then renamed."""
    try:
        os.rename(staging, final)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        near = final.parent / staging.name
        try:
            shutil.copytree(staging, near)
            os.rename(near, final)
        except BaseException:
            shutil.rmtree(near, ignore_errors=True)
            raise
        shutil.rmtree(staging, ignore_errors=True)


def finish_content(content: dict[str, Any], entries: Mapping[str, MediaEntry]) -> None:
    """What the library leaves out or gets wrong (0.3.1): audio materials point at their
    ``draft_materials`` entry too; text style ranges count UTF-16 units, as JianYing does (an
    emoji is two); a text segment refers to a speed material that is never written, so
    references to nothing are dropped; ``fps`` is a float, as JianYing writes it (30.0)."""
    fps = content.get("fps")
    if isinstance(fps, int | float) and not isinstance(fps, bool):
        content["fps"] = float(fps)
    known = {
        m["id"]
        for items in content["materials"].values()
        if isinstance(items, list)
        for m in items
        if isinstance(m, dict) and "id" in m
    }
    for track in content["tracks"]:
        for seg in track["segments"]:
            refs = seg.get("extra_material_refs")
            if isinstance(refs, list):
                seg["extra_material_refs"] = [r for r in refs if r in known]
    for audio in content["materials"].get("audios", []):
        entry = entries.get(audio.get("path", ""))
        if entry is not None:
            audio["local_material_id"] = entry.id
    for text in content["materials"].get("texts", []):
        try:
            body = json.loads(text["content"])
        except (KeyError, TypeError, ValueError):
            continue
        plain = body.get("text", "")
        units = len(plain.encode("utf-16-le")) // 2
        for style in body.get("styles", []):
            if style.get("range") == [0, len(plain)]:
                style["range"] = [0, units]
        text["content"] = json.dumps(body, ensure_ascii=False)


def gif_duration(path: str) -> int:
    """A GIF's real length in µs: the sum of its frame delays (the library multiplies the
    first frame's delay by the frame count). Browsers treat a 0 delay as 100 ms; so do we."""
    total_ms = 0
    with Image.open(path) as image:
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            delay = int(image.info.get("duration") or 0)
            total_ms += delay if delay > 0 else 100
    return total_ms * 1000


def _claim_name(root: Path, title: str) -> Path:
    for _ in range(100):
        candidate = root / f"{title}_{secrets.token_hex(4)}"
        if not candidate.exists():
            return candidate
    raise DraftBuildError(f"could not find a free draft folder name in {root}")


def _write_meta(
    staging: Path, final: Path, content: dict[str, Any], entries: Mapping[str, MediaEntry]
) -> None:
    """The library copies its template's meta as is; these fields make the draft its own."""
    meta_path = staging / "draft_meta_info.json"
    meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
    now = time.time()
    now_us = int(now * SECOND)
    meta.update(
        draft_id=str(uuid.uuid4()).upper(),
        draft_name=final.name,
        draft_fold_path=str(final),
        draft_root_path=str(final.parent),
        tm_draft_create=now_us,
        tm_draft_modified=now_us,
        tm_duration=content["duration"],
        # The bytes of the media the timeline uses, as JianYing and CapCut write it.
        draft_timeline_materials_size_=sum(e.size for e in entries.values()),
    )
    groups = meta.setdefault("draft_materials", [])
    files = next((g for g in groups if g.get("type") == 0), None)
    if files is None:
        files = {"type": 0, "value": []}
        groups.insert(0, files)
    files["value"] = [e.meta(int(now)) for e in entries.values()]
    meta_path.write_bytes(dump_bytes(meta))
