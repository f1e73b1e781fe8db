"""``root_meta_info.json``: JianYing's list of the drafts in its draft folder.

JianYing lists what this file holds (and rescans the folder now and then). ``draftdl pull
--register`` adds one entry for the draft it unpacked, so the draft lists at once. Every
other key and entry stays as it is; the new entry takes the shape of the entries already
there (their keys, in their order, and their way of writing paths: Windows JianYing writes
``C:/…/name`` for a folder and ``C:\\…`` for the root), so it reads like one JianYing wrote.
The file as it was is copied to ``root_meta_info.json.bak`` first, and the new one replaces
it in one step (a temporary file renamed over it). JianYing keeps this list in memory while
it runs and may write it back when it quits: register while it is closed.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from draftdl.drafts.package import META
from draftdl.drafts.unpack import PullError

ROOT_META = "root_meta_info.json"
BACKUP = ROOT_META + ".bak"
LOCK = ROOT_META + ".draftdl-lock"
LOCK_WAIT = 10.0  # seconds another pull may hold the file
LOCK_STALE = 60.0  # a lock this old was left by a pull that was killed


class NothingToRegister(PullError):
    """The folder has no ``root_meta_info.json``: JianYing has not listed it yet, and will
    find the draft when it scans the folder (a file written here would hide the others)."""


def _neutral(value: Any) -> Any:
    """A value of an entry key we know nothing about, of the same type, saying nothing."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -1 if value == -1 else 0
    if isinstance(value, float):
        return 0.0
    if isinstance(value, str):
        return ""
    if isinstance(value, list):
        return []
    if isinstance(value, dict):
        return {}
    return None


def styled(path: str, sample: object) -> str:
    """``path`` written with the separators of ``sample`` (a path JianYing wrote in the same
    field), when the sample uses only one kind and ``path`` is a Windows path."""
    if not isinstance(sample, str) or not re.match(r"^([A-Za-z]:|\\\\)", path):
        return path
    if "/" in sample and "\\" not in sample:
        return path.replace("\\", "/")
    if "\\" in sample and "/" not in sample:
        return path.replace("/", "\\")
    return path


def _fold_key(path: object) -> str:
    return str(path).replace("\\", "/").rstrip("/").casefold() if isinstance(path, str) else ""


def draft_entry(
    folder: Path, meta: dict[str, Any], sample: dict[str, Any] | None, platform: str
) -> dict[str, Any]:
    """The ``all_draft_store`` entry of a draft folder, shaped like ``sample``."""
    sample = sample or {}
    timeline = "draft_info.json" if platform == "darwin" else "draft_content.json"
    sample_file = sample.get("draft_json_file")
    if isinstance(sample_file, str) and re.search(r"[/\\]draft_info\.json$", sample_file):
        timeline = "draft_info.json"
    elif isinstance(sample_file, str) and re.search(r"[/\\]draft_content\.json$", sample_file):
        timeline = "draft_content.json"
    if not (folder / timeline).is_file():
        timeline = "draft_content.json"
    cover = folder / "draft_cover.jpg"
    assets = folder / "assets"
    size = sum(p.stat().st_size for p in assets.rglob("*") if p.is_file()) if assets.is_dir() else 0
    known: dict[str, Any] = {
        "cloud_draft_cover": False,
        "cloud_draft_sync": False,
        "draft_cloud_last_action_download": False,
        "draft_cloud_purchase_info": "",
        "draft_cloud_template_id": "",
        "draft_cloud_tutorial_info": "",
        "draft_cloud_videocut_purchase_info": "",
        "draft_cover": styled(str(cover), sample.get("draft_cover")) if cover.is_file() else "",
        "draft_fold_path": styled(str(folder), sample.get("draft_fold_path")),
        "draft_id": meta.get("draft_id", ""),
        "draft_is_ai_shorts": False,
        "draft_is_cloud_temp_draft": False,
        "draft_is_invisible": False,
        "draft_is_web_article_video": False,
        "draft_json_file": styled(str(folder / timeline), sample_file),
        "draft_name": folder.name,
        "draft_new_version": meta.get("draft_new_version", ""),
        "draft_root_path": styled(str(folder.parent), sample.get("draft_root_path")),
        "draft_timeline_materials_size": size,
        "draft_type": meta.get("draft_type", ""),
        "draft_web_article_video_enter_from": "",
        "streaming_edit_draft_ready": True,
        "tm_draft_cloud_completed": "",
        "tm_draft_cloud_entry_id": -1,
        "tm_draft_cloud_modified": 0,
        "tm_draft_cloud_parent_entry_id": -1,
        "tm_draft_cloud_space_id": -1,
        "tm_draft_cloud_user_id": -1,
        "tm_draft_create": meta.get("tm_draft_create", 0),
        "tm_draft_modified": meta.get("tm_draft_modified", 0),
        "tm_draft_removed": 0,
        "tm_duration": meta.get("tm_duration", 0),
    }
    entry = {k: known.pop(k) if k in known else _neutral(v) for k, v in sample.items()}
    entry.update(known)
    return entry


def _indent(text: str) -> int | None:
    """The indentation the file uses (None: all on one line, as JianYing writes it)."""
    match = re.search(r"\n([ \t]+)\S", text)
    if match is None:
        return None
    return len(match.group(1).expandtabs(4)) or None


def _dump(data: Any, indent: int | None) -> str:
    if indent is None:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(data, ensure_ascii=False, indent=indent)


def _write_replacing(path: Path, raw: bytes) -> None:
    """``path`` becomes ``raw`` in one step: a reader sees the old file or the new one."""
    tmp = path.with_name(f"{path.name}.draftdl-tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One draftdl at a time changes the file (two pulls registering at once)."""
    lock = root / LOCK
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            break
        except FileExistsError:
            with contextlib.suppress(OSError):
                if time.time() - lock.stat().st_mtime > LOCK_STALE:
                    lock.unlink()
                    continue
            if time.monotonic() > deadline:
                raise PullError(
                    f"{lock} is held by another draftdl (remove it if none runs)"
                ) from None
            time.sleep(0.1)
    try:
        os.close(fd)
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()


def register_draft(root: Path, folder: Path, platform: str = sys.platform) -> Path:
    """Adds ``folder`` (a draft in ``root``) to ``root/root_meta_info.json``; returns the
    backup of the file as it was. An entry naming the same folder (left by a draft deleted
    outside JianYing) is replaced, so the folder is listed once."""
    index = root / ROOT_META
    if not index.is_file():
        raise NothingToRegister(f"{index} does not exist")
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PullError(f"cannot read {folder / META}: {exc}") from None
    with _locked(root):
        raw = index.read_bytes()
        bom = raw.startswith(codecs.BOM_UTF8)
        try:
            text = raw.decode("utf-8-sig")
            data = json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PullError(f"{index} is not JSON, left as it is: {exc}") from None
        store = data.get("all_draft_store", []) if isinstance(data, dict) else None
        if not isinstance(store, list):
            raise PullError(f"{index} has no all_draft_store list, left as it is")
        sample = next((e for e in reversed(store) if isinstance(e, dict)), None)
        entry = draft_entry(folder, meta, sample, platform)
        ours = _fold_key(entry["draft_fold_path"])
        kept = [
            e
            for e in store
            if not (isinstance(e, dict) and _fold_key(e.get("draft_fold_path")) == ours)
        ]
        data["all_draft_store"] = [*kept, entry]
        count = data.get("draft_ids")
        if isinstance(count, int) and not isinstance(count, bool):
            data["draft_ids"] = count + 1
        new = _dump(data, _indent(text)) + ("\n" if text.endswith("\n") else "")
        backup = root / BACKUP
        _write_replacing(backup, raw)
        _write_replacing(index, (codecs.BOM_UTF8 if bom else b"") + new.encode("utf-8"))
    return backup
