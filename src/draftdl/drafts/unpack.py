"""A downloaded draft zip, checked and unpacked into a JianYing draft folder on this machine
(the ``draftdl pull`` side of ``drafts/package.py``).

Nothing is unpacked before the whole zip matches the SHA-256 the server sent and every
member matches the manifest the zip carries (``<folder>/draftdl-manifest.json``: path, size,
SHA-256), with no member outside its one folder: no ``..``, no absolute path or drive letter,
no backslash, no symlink, no two names that one file system would take for the same file.
The draft is unpacked into a hidden folder inside the root, its paths are made absolute
paths of its final folder, and the hidden folder is renamed to the first free name of
``<name>``, ``<name> (2)``, ``<name> (3)``, …: an existing folder is never written into.

Pure pathlib and zipfile: the same code on Windows, macOS and Linux.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import time
import unicodedata
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from draftdl.drafts.draft_json import dump_bytes
from draftdl.drafts.package import CHUNK, MANIFEST, MANIFEST_FORMAT, META, TIMELINES, file_sha256
from draftdl.errors import DraftdlError
from draftdl.names import UNSAFE, WINDOWS_RESERVED

STAGING = ".draftdl-unpack-"
ON_WINDOWS = os.name == "nt"
DRIVE = re.compile(r"^[A-Za-z]:")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
MAX_COPIES = 999  # "<name> (999)" is the last name tried
STALE_AFTER = 3600.0  # a staging folder this old was left by a pull that was killed


class PullError(DraftdlError):
    """A zip that cannot be unpacked, and why, in words for the person pulling it."""


@dataclass(frozen=True)
class Member:
    path: str  # as in the zip: "<folder>/assets/clip.mp4"
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    folder: str
    draft_id: str | None
    placeholder: str | None  # the relative form the paths use, or None
    root: str | None  # the absolute root the paths use instead, or None
    files: tuple[Member, ...]

    @property
    def total_size(self) -> int:
        return sum(m.size for m in self.files)


def member_parts(name: str, windows: bool = ON_WINDOWS) -> tuple[str, ...]:
    """The parts of a member's path; PullError for any name that could land outside the
    folder it is unpacked in, or that this system cannot hold as it is."""

    def refuse(why: str) -> PullError:
        return PullError(f"refused: the zip's member {name!r} {why}")

    if not name:
        raise refuse("has no name")
    if "\\" in name:
        raise refuse("holds a backslash")
    if name.startswith("/"):
        raise refuse("is an absolute path")
    if DRIVE.match(name):
        raise refuse("names a drive")
    parts = tuple(name.split("/"))
    for part in parts:
        if part in ("", ".", ".."):
            raise refuse("climbs out of its folder" if part == ".." else "has an empty part")
        if any(unicodedata.category(ch) == "Cc" for ch in part):
            raise refuse("holds a control character")
        if windows:
            if UNSAFE.search(part) or part[-1] in ". ":
                raise refuse("is not a name Windows can hold")
            if part.split(".", 1)[0].strip().lower() in WINDOWS_RESERVED:
                raise refuse("is a Windows device name")
    return parts


def _same_file_key(path: str) -> str:
    """Two names one file system may take for one file (macOS and Windows ignore case,
    macOS normalises Unicode)."""
    return unicodedata.normalize("NFC", path).casefold()


def parse_manifest(raw: bytes) -> Manifest:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PullError(f"the zip's manifest is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise PullError(
            f"the zip's manifest is not format {MANIFEST_FORMAT} "
            "(is this draftdl much older or newer than the server?)"
        )
    folder, files = data.get("folder"), data.get("files")
    placeholder, root = data.get("placeholder"), data.get("root")
    draft_id = data.get("draft_id")
    if not isinstance(folder, str) or not isinstance(files, list):
        raise PullError("the zip's manifest has no folder or no file list")
    if not all(isinstance(v, str) or v is None for v in (placeholder, root, draft_id)):
        raise PullError("the zip's manifest is malformed (placeholder, root or draft_id)")
    members = []
    for item in files:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("path"), str)
            and isinstance(item.get("size"), int)
            and not isinstance(item.get("size"), bool)
            and item["size"] >= 0
            and isinstance(item.get("sha256"), str)
            and SHA256_HEX.match(item["sha256"])
        ):
            raise PullError(f"the zip's manifest lists a malformed file: {str(item)[:200]}")
        members.append(Member(item["path"], item["size"], item["sha256"]))
    return Manifest(folder, draft_id, placeholder, root, tuple(members))


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _hash_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, member: Member) -> None:
    """Reads a member whole: its size and SHA-256 must be the manifest's (zipfile also
    checks its CRC); never more bytes than the manifest says."""
    digest = hashlib.sha256()
    seen = 0
    try:
        with archive.open(info) as src:
            while chunk := src.read(CHUNK):
                seen += len(chunk)
                if seen > member.size:
                    break
                digest.update(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise PullError(f"the zip's member {member.path!r} cannot be read: {exc}") from None
    if seen != member.size:
        raise PullError(
            f"the zip's member {member.path!r} holds {seen if seen <= member.size else 'more'}"
            f" bytes, the manifest says {member.size}"
        )
    if digest.hexdigest() != member.sha256:
        raise PullError(f"the zip's member {member.path!r} does not match its SHA-256")


def verify_archive(path: Path, sha256: str, windows: bool = ON_WINDOWS) -> Manifest:
    """The zip's manifest, once the zip is the one the server sent and holds exactly what
    its manifest lists, each member intact; PullError naming the first problem otherwise."""
    actual = file_sha256(path)
    if actual != sha256.lower():
        raise PullError(
            f"the download does not match the server's SHA-256 (expected {sha256.lower()}, "
            f"got {actual})"
        )
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PullError(f"the download is not a readable zip: {exc}") from None
    with archive:
        infos = archive.infolist()
        seen: dict[str, str] = {}
        for info in infos:
            member_parts(info.filename, windows)
            if _is_symlink(info):
                raise PullError(f"refused: the zip's member {info.filename!r} is a symlink")
            key = _same_file_key(info.filename)
            if key in seen:
                raise PullError(
                    f"refused: the zip holds {seen[key]!r} and {info.filename!r}, "
                    "one file on this system"
                )
            seen[key] = info.filename
        manifests = [
            i for i in infos if i.filename.count("/") == 1 and i.filename.endswith("/" + MANIFEST)
        ]
        if len(manifests) != 1:
            raise PullError(
                f"the zip holds no {MANIFEST} (was it made by draftdl, and a recent one?)"
            )
        (manifest_info,) = manifests
        if manifest_info.file_size > 64 * 1024 * 1024:
            raise PullError("the zip's manifest is implausibly large")
        manifest = parse_manifest(archive.read(manifest_info))
        folder = manifest_info.filename.split("/", 1)[0]
        if manifest.folder != folder:
            raise PullError(
                f"the zip's manifest names the folder {manifest.folder!r}, the zip holds {folder!r}"
            )
        by_name = {i.filename: i for i in infos if i is not manifest_info}
        listed = {m.path: m for m in manifest.files}
        if len(listed) != len(manifest.files):
            raise PullError("the zip's manifest lists a file twice")
        for name in by_name:
            parts = member_parts(name, windows)
            if parts[0] != folder or len(parts) < 2:
                raise PullError(f"refused: the zip's member {name!r} is outside {folder!r}/")
            if name not in listed:
                raise PullError(f"refused: the zip's member {name!r} is not in its manifest")
        missing = [p for p in listed if p not in by_name]
        if missing:
            raise PullError(f"the zip lacks {missing[0]!r}, which its manifest lists")
        if f"{folder}/{META}" not in listed:
            raise PullError(f"the zip holds no {META}: it is not a JianYing draft")
        for member in manifest.files:
            _hash_member(archive, by_name[member.path], member)
    return manifest


def copy_names(name: str) -> Iterator[str]:
    """``name``, then ``name (2)``, ``name (3)``, … as Windows names copies."""
    yield name
    for n in range(2, MAX_COPIES + 1):
        yield f"{name} ({n})"


def localize(node: Any, prefix: str, folder: PurePath) -> Any:
    """Every string that is ``prefix`` or starts with ``prefix/`` (or ``prefix\\``) becomes
    the same path under ``folder``, written as this system writes paths."""
    if isinstance(node, str):
        if node == prefix:
            return str(folder)
        if node.startswith((prefix + "/", prefix + "\\")):
            rest = [p for p in re.split(r"[/\\]", node[len(prefix) + 1 :]) if p]
            return str(folder.joinpath(*rest))
        return node
    if isinstance(node, list):
        return [localize(v, prefix, folder) for v in node]
    if isinstance(node, dict):
        return {k: localize(v, prefix, folder) for k, v in node.items()}
    return node


def _old_prefix(manifest: Manifest) -> str:
    """What the zip's paths start with: the placeholder, or ``<root>/<folder>``."""
    if manifest.placeholder:
        return manifest.placeholder
    if manifest.root:
        root = manifest.root.rstrip("/\\")
        sep = "\\" if "\\" in root and "/" not in root else "/"
        return f"{root}{sep}{manifest.folder}"
    raise PullError("the zip's manifest says neither how its paths are written")


def media_paths(content: dict[str, Any]) -> list[str]:
    materials = content.get("materials")
    if not isinstance(materials, dict):
        return []
    return [
        m["path"]
        for kind in ("videos", "audios")
        for m in materials.get(kind) or []
        if isinstance(m, dict) and isinstance(m.get("path"), str) and m["path"]
    ]


def _write_json(path: Path, data: Any) -> bytes:
    raw = dump_bytes(data)
    path.write_bytes(raw)
    return raw


def _json_object(raw: bytes, name: str) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PullError(f"the draft's {name} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PullError(f"the draft's {name} is not a JSON object")
    return data


def _localize_folder(
    staging: Path,
    final: Path,
    manifest: Manifest,
    originals: dict[str, bytes],
    ids: tuple[str, str],
    now_us: int,
) -> list[str]:
    """Writes the draft's JSON (``originals``, as in the zip) into ``staging`` for its
    final folder; returns the media paths that are not files inside it (paths the server
    could not make relative)."""
    prefix = _old_prefix(manifest)
    draft_id, content_id = ids
    written: bytes | None = None
    content: dict[str, Any] = {}
    for name in TIMELINES:
        if name not in originals:
            continue
        if written is None:
            content = localize(_json_object(originals[name], name), prefix, final)
            if "id" in content:
                content["id"] = content_id
            written = _write_json(staging / name, content)
        else:  # the same timeline under both names: the same bytes
            (staging / name).write_bytes(written)
    meta = localize(_json_object(originals[META], META), prefix, final)
    meta.update(
        draft_id=draft_id,
        draft_name=final.name,
        draft_fold_path=str(final),
        draft_root_path=str(final.parent),
        tm_draft_create=now_us,
        tm_draft_modified=now_us,
    )
    _write_json(staging / META, meta)
    outside = []
    inside = str(final) + os.sep
    for media in media_paths(content):
        rel = media[len(inside) :] if media.startswith(inside) else None
        if rel is None or not (staging / rel).is_file():
            outside.append(media)
    return outside


def remove_stale_staging(root: Path, older_than: float = STALE_AFTER) -> None:
    cutoff = time.time() - older_than
    with contextlib.suppress(OSError):
        for folder in root.glob(STAGING + "*"):
            with contextlib.suppress(OSError):
                if folder.is_dir() and folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder)


@dataclass(frozen=True)
class Unpacked:
    folder: Path
    outside: list[str]  # media paths that do not name a file in the folder


def unpack_draft(
    zip_path: Path,
    manifest: Manifest,
    root: Path,
    windows: bool = ON_WINDOWS,
    now_us: int | None = None,
) -> Unpacked:
    """Unpacks a verified zip into a new folder of ``root`` (never an existing one), with
    fresh draft and content ids and absolute paths of that folder."""
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        raise PullError(f"the draft folder {root} does not exist")
    remove_stale_staging(root)
    staging = root / f"{STAGING}{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for member in manifest.files:
                parts = member_parts(member.path, windows)[1:]
                dest = staging.joinpath(*parts)
                if os.path.commonpath([staging, dest]) != str(staging):  # never, but
                    raise PullError(f"refused: the zip's member {member.path!r} climbs out")
                dest.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with archive.open(member.path) as src, open(dest, "xb") as out:
                    seen = 0
                    while chunk := src.read(CHUNK):
                        seen += len(chunk)
                        if seen > member.size:
                            break
                        digest.update(chunk)
                        out.write(chunk)
                if seen != member.size or digest.hexdigest() != member.sha256:
                    raise PullError(f"the zip's member {member.path!r} changed while unpacking")
        when = now_us if now_us is not None else time.time_ns() // 1000
        ids = (str(uuid.uuid4()).upper(), str(uuid.uuid4()).upper())
        originals = {
            name: (staging / name).read_bytes()
            for name in (*TIMELINES, META)
            if (staging / name).is_file()
        }
        for name in copy_names(manifest.folder):
            final = root / name
            if os.path.lexists(final):
                continue
            outside = _localize_folder(staging, final, manifest, originals, ids, when)
            try:
                os.rename(staging, final)  # fails on Windows, and anywhere onto a full folder
            except OSError as exc:
                if os.path.lexists(final):
                    continue  # taken meanwhile
                raise PullError(f"cannot move the draft into {final}: {exc}") from None
            return Unpacked(final, outside)
        raise PullError(f"no free folder name for {manifest.folder!r} in {root}")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
