"""Turns a job's URLs into files: one per distinct URL, each with a safe unique local name."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePath
from urllib.parse import unquote, urlsplit

from draftdl.names import clean_text, not_a_device
from draftdl.tasks.validation import UrlRef

MAX_NAME = 120
EXTENSION = re.compile(r"^\.[A-Za-z0-9]{1,8}$")
KIND_EXTENSION = {
    "video": ".mp4",
    "audio": ".mp3",
    "music": ".mp3",
    "sound": ".mp3",
    "extract_music": ".mp3",
    "photo": ".jpg",
    "image": ".jpg",
    "picture": ".jpg",
    "sticker": ".png",
    "text": ".txt",
    "subtitle": ".srt",
}


@dataclass(frozen=True)
class PlannedFile:
    url: str
    file_name: str


def safe_name(url: str, kind: str | None) -> str:
    """A file name from a URL's decoded basename that can never leave its folder."""
    raw = unquote(urlsplit(url).path).replace("\\", "/").rsplit("/", 1)[-1]
    name = clean_text(raw)
    stem, ext = os.path.splitext(name)
    # ".aria2" is aria2's control-file suffix: never let a download take such a name.
    if not EXTENSION.match(ext) or ext.lower() == ".aria2":
        stem, ext = name, KIND_EXTENSION.get((kind or "").lower(), ".bin")
    stem = not_a_device(stem.strip(" .") or "file")
    budget = MAX_NAME - len(ext)
    while len(stem.encode("utf-8")) > budget:
        stem = stem[:-1]
    return f"{stem}{ext.lower()}"


def plan_files(refs: list[UrlRef]) -> list[PlannedFile]:
    """Each distinct URL once, in order of first use; a numeric suffix on name collisions."""
    seen_urls: set[str] = set()
    taken: set[str] = set()  # case-insensitive: the folder may be copied to Windows or macOS
    next_suffix: dict[str, int] = {}  # per base name, so 10,000 equal names stay linear
    out: list[PlannedFile] = []
    for ref in refs:
        if ref.url in seen_urls:
            continue
        seen_urls.add(ref.url)
        name = safe_name(ref.url, ref.kind)
        candidate, key = name, name.lower()
        if key in taken:
            stem, ext = os.path.splitext(name)
            n = next_suffix.get(key, 1)
            while candidate.lower() in taken:
                candidate = f"{stem}-{n}{ext}"
                n += 1
            next_suffix[key] = n
        taken.add(candidate.lower())
        out.append(PlannedFile(ref.url, candidate))
    return out


def inside(folder: Path, name: str) -> Path:
    """The file's path, refusing anything that would resolve outside ``folder``."""
    return name_inside(folder.resolve(), name)


def name_inside(base: Path, name: str) -> Path:
    """``base / name`` for a resolved ``base``, refusing a name that is not one plain part.

    A pure check, no file system call: the task's folder is new, so nothing in it can be a
    link yet, and 1,000 files must not cost 2,000 ``realpath`` walks."""
    part = PurePath(name)
    if name in ("", ".", "..") or part.anchor or part.parts != (name,):
        raise ValueError(f"file name {name!r} leaves its folder")
    return base / name
