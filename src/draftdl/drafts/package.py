"""A draft as a zip, for a JianYing on another machine.

Inside the zip no path points at this server. By default media paths take JianYing's own
relative form, ``##_draftpath_placeholder_0E685133-18CE-45ED-8CB8-2904A212EC80_##/assets/<file>``:
one constant, whatever the draft id, in every draft JianYing and CapCut were seen to write
(JianYing 5.5, CapCut 2.2, 6.7, 7.8; e.g. github.com/elityy/CAA-Video draft_info.json), which the
app expands to wherever the folder is unpacked, and which ``draftdl pull`` turns into
absolute paths of the folder it unpacks. With ``root`` (the client's draft folder) they become
absolute paths under it instead, written with forward slashes as the apps write them
(``C:/Users/me/.../com.lveditor.draft/<folder>/assets/<file>``), which any version reads,
provided the folder is unpacked exactly there.

The zip is the same bytes every time it is made from the same draft (members sorted, one
fixed timestamp, fixed modes), so a download cut short can be resumed with a Range request
against a zip built again. Its last member, ``<folder>/draftdl-manifest.json``, lists every
other member with its size and SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from draftdl.drafts.draft_json import dump_bytes

TIMELINES = ("draft_content.json", "draft_info.json")
META = "draft_meta_info.json"
MANIFEST = "draftdl-manifest.json"
MANIFEST_FORMAT = 1
PLACEHOLDER = "##_draftpath_placeholder_0E685133-18CE-45ED-8CB8-2904A212EC80_##"
CHUNK = 1024 * 1024
FILE_MODE = 0o100644 << 16  # a regular file, rw-r--r--, whoever made the zip
ZipTime = tuple[int, int, int, int, int, int]
ZIP_EPOCH: ZipTime = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold


@dataclass(frozen=True)
class PackedDraft:
    """What the route sends beside the zip: its SHA-256 (hex) and size."""

    sha256: str
    size: int


def root_form(root: str) -> str:
    """The client's draft folder as the apps write paths: forward slashes, no trailing one."""
    return root.replace("\\", "/").rstrip("/") or "/"


def _rewrite(node: Any, old: str, new: str) -> Any:
    if isinstance(node, str):
        return new + node[len(old) :] if node.startswith(old) else node
    if isinstance(node, list):
        return [_rewrite(v, old, new) for v in node]
    if isinstance(node, dict):
        return {k: _rewrite(v, old, new) for k, v in node.items()}
    return node


def _zip_time(meta: dict[str, Any]) -> ZipTime:
    """One timestamp for every member: the draft's last change (UTC), so that the zip is
    the same bytes on every request whatever the files' own times."""
    modified = meta.get("tm_draft_modified")
    if not isinstance(modified, int) or isinstance(modified, bool) or modified <= 0:
        return ZIP_EPOCH
    try:
        stamp = time.gmtime(modified // 1_000_000)[:6]
    except (OverflowError, OSError, ValueError):
        return ZIP_EPOCH
    return stamp if ZIP_EPOCH <= stamp <= (2107, 12, 31, 23, 59, 58) else ZIP_EPOCH


def _info(arcname: str, when: ZipTime, compress: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, date_time=when)
    info.compress_type = compress
    info.external_attr = FILE_MODE
    return info


def _copy(src: IO[bytes], dest: IO[bytes]) -> Iterator[bytes]:
    while chunk := src.read(CHUNK):
        dest.write(chunk)
        yield chunk


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def pack_draft(folder: Path, out: Path, root: str | None = None) -> PackedDraft:
    """Writes ``folder`` (with its assets) as ``out``, paths rewritten for the client."""
    meta: dict[str, Any] = json.loads((folder / META).read_text(encoding="utf-8"))
    name = folder.name
    placeholder: str | None = None
    if root:
        base = root_form(root)
        target = f"{base}/{name}/"
        meta.update(draft_root_path=base, draft_fold_path=f"{base}/{name}")
    else:
        placeholder = PLACEHOLDER
        target = f"{placeholder}/"
        meta.update(draft_root_path="", draft_fold_path="")
    # A Windows server writes its paths with "\\", a POSIX one with "/": both are the server's.
    prefixes = {str(folder) + os.sep, folder.as_posix() + "/"}

    def fix(data: Any) -> Any:
        fixed = data
        for prefix in prefixes:
            fixed = _rewrite(fixed, prefix, target)
        if os.sep == "\\":  # a Windows server's assets\\x → assets/x, as the apps write it
            fixed = _rewrite(fixed, target + "assets\\", target + "assets/")
        return fixed

    when = _zip_time(meta)
    listed: list[dict[str, Any]] = []

    def add_bytes(archive: zipfile.ZipFile, arcname: str, data: bytes) -> None:
        archive.writestr(_info(arcname, when, zipfile.ZIP_DEFLATED), data)
        listed.append(
            {"path": arcname, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        )

    with zipfile.ZipFile(out, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            rel = path.relative_to(folder).as_posix()
            arcname = f"{name}/{rel}"
            if rel == MANIFEST:  # never a draft's own file: ours is written last
                continue
            if path.name in TIMELINES and path.parent == folder:
                content = fix(json.loads(path.read_text(encoding="utf-8")))
                add_bytes(archive, arcname, dump_bytes(content))
            elif path.name == META and path.parent == folder:
                add_bytes(archive, arcname, dump_bytes(fix(meta)))
            else:  # media are compressed already
                info = _info(arcname, when, zipfile.ZIP_STORED)
                digest = hashlib.sha256()
                with open(path, "rb") as src:
                    info.file_size = size = os.fstat(src.fileno()).st_size  # picks zip64
                    with archive.open(info, "w") as dest:
                        for chunk in _copy(src, dest):
                            digest.update(chunk)
                listed.append({"path": arcname, "size": size, "sha256": digest.hexdigest()})
        manifest = {
            "format": MANIFEST_FORMAT,
            "folder": name,
            "draft_id": meta.get("draft_id"),
            "placeholder": placeholder,
            "root": root_form(root) if root else None,
            "files": listed,
        }
        archive.writestr(
            _info(f"{name}/{MANIFEST}", when, zipfile.ZIP_DEFLATED),
            json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8"),
        )
    return PackedDraft(file_sha256(out), out.stat().st_size)
