"""Checks that the bytes arrived and the drafts are what the jobs asked for (untimed)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.common import BenchError, Json
from bench.service import PIC_SECONDS, dig

US = 1_000_000
DRAFT_FILES = ("draft_content.json", "draft_info.json", "draft_meta_info.json")


def verify_dir(directory: Path, expected: list[int]) -> None:
    """Count and size catch a truncated or missing file; content is checked by aria2c/HTTP."""
    if not directory.is_dir():
        raise BenchError(f"missing output dir {directory}")
    sizes = sorted(
        p.stat().st_size for p in directory.rglob("*") if p.is_file() and p.suffix != ".aria2"
    )
    if sizes != sorted(expected):
        raise BenchError(
            f"{directory}: expected {len(expected)} files of {sorted(set(expected))} bytes, "
            f"found {len(sizes)} files with sizes {sorted(set(sizes))[:5]}"
        )


def check_draft(pictures: bool, n: int, view: Json, downloads: Path) -> str | None:
    """What is wrong with a completed task's draft, or None when it is what the job asked for.

    Pictures: one video track holding ``n`` segments laid end to end, every video material a
    file in the draft's own ``assets/`` that is the task's download of that name (same size).
    Otherwise: a draft without any segment.
    """
    draft_path = dig(view, "draft_path")
    if not isinstance(draft_path, str) or not draft_path:
        return "completed without a draft_path"
    folder = Path(draft_path)
    missing = [name for name in DRAFT_FILES if not (folder / name).is_file()]
    if missing:
        return f"{folder}: missing {', '.join(missing)}"
    try:
        content = json.loads((folder / "draft_content.json").read_text(encoding="utf-8"))
        tracks = [t for t in content.get("tracks", []) if isinstance(t, dict)]
        segments = [s for t in tracks for s in t.get("segments", [])]
        if not pictures:
            return f"{len(segments)} segments in a draft without items" if segments else None
        video = [t for t in tracks if t.get("type") == "video"]
        if len(video) != 1 or len(tracks) != 1:
            return f"expected one video track, found {len(video)} of {len(tracks)} tracks"
        segs = video[0].get("segments", [])
        if len(segs) != n:
            return f"expected {n} segments, found {len(segs)}"
        step = round(PIC_SECONDS * US)
        spans = sorted(
            (s["target_timerange"]["start"], s["target_timerange"]["duration"]) for s in segs
        )
        if spans != [(i * step, step) for i in range(n)]:
            return f"segments not end to end at {PIC_SECONDS:g} s each: {spans[:3]}..."
        mats = {m["id"]: m for m in content["materials"]["videos"]}
        assets = folder.resolve() / "assets"
        for seg in segs:
            mat = mats.get(seg["material_id"])
            if mat is None:
                return f"segment {seg.get('id')} names a missing material"
            path = Path(mat["path"])
            if not path.is_file() or path.resolve().parent != assets:
                return f"material path {path} is not a file in {assets}"
            download = downloads / path.name
            if not download.is_file() or download.stat().st_size != path.stat().st_size:
                return f"material {path.name} is not the task's download {download}"
        if len({mats[seg["material_id"]]["path"] for seg in segs}) != n:
            return "segments do not use N distinct files"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"{folder}/draft_content.json: {type(exc).__name__}: {exc}"
    return None
