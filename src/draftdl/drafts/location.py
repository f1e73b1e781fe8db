"""Where drafts go: the user's JianYing draft folder when one is found, else ``data/drafts``.

JianYing keeps its drafts in ``com.lveditor.draft`` under its user data (Windows: in
%LOCALAPPDATA%, or a custom folder recorded as ``currentCustomDraftPath`` in
``User Data/Config/globalSetting``; macOS: under ~/Movies). A folder counts only when JianYing
has used it: it holds ``root_meta_info.json`` or ``.recycle_bin``.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DRAFT_DIR = ("User Data", "Projects", "com.lveditor.draft")
CUSTOM_KEY = re.compile(r"currentCustomDraftPath\s*[=:]\s*\"?([^\"\r\n]+?)\"?\s*,?\s*$", re.M)


@dataclass(frozen=True)
class DraftsRoot:
    path: Path
    reason: str


def is_jianying_root(folder: Path) -> bool:
    return (folder / "root_meta_info.json").is_file() or (folder / ".recycle_bin").is_dir()


def custom_draft_path(global_setting: Path) -> Path | None:
    """The custom draft folder JianYing records (the file is INI-like; JSON is read too)."""
    try:
        text = global_setting.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    try:
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("currentCustomDraftPath"), str):
            return Path(data["currentCustomDraftPath"]) if data["currentCustomDraftPath"] else None
    except ValueError:
        pass
    match = CUSTOM_KEY.search(text)
    return Path(match.group(1).strip()) if match and match.group(1).strip() else None


def candidates(platform: str, env: Mapping[str, str], home: Path) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    if platform == "win32":
        local = env.get("LOCALAPPDATA")
        base = Path(local) / "JianyingPro" if local else home / "AppData/Local/JianyingPro"
        custom = custom_draft_path(base / "User Data" / "Config" / "globalSetting")
        if custom is not None:
            found.append((custom, "JianYing's custom draft folder (currentCustomDraftPath)"))
        found.append((base.joinpath(*DRAFT_DIR), "JianYing's draft folder"))
    elif platform == "darwin":
        found.append(
            (home / "Movies" / "JianyingPro" / Path(*DRAFT_DIR), "JianYing's draft folder")
        )
    return found


def remove_stale_builds(root: Path, older_than: float = 600.0) -> int:
    """Staging folders a killed server left behind (``drafts_root`` is often JianYing's own
    draft folder, where a leftover would show up); fresh ones may be another build's."""
    removed = 0
    if not root.is_dir():
        return 0
    cutoff = time.time() - older_than
    for folder in root.glob(".building-*"):
        with contextlib.suppress(OSError):
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder)
                removed += 1
    return removed


def choose_drafts_root(
    configured: Path | None,
    fallback: Path,
    platform: str,
    env: Mapping[str, str],
    home: Path,
) -> DraftsRoot:
    if configured is not None:
        return DraftsRoot(configured, "set by drafts_root")
    for folder, what in candidates(platform, env, home):
        if folder.is_dir() and is_jianying_root(folder):
            return DraftsRoot(folder, f"{what}, found at {folder}")
    return DraftsRoot(fallback, "no JianYing draft folder found on this machine")
