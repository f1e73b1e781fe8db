"""Where drafts go: the user's JianYing draft folder when one is found, else ``data/drafts``.

JianYing keeps its drafts in ``com.lveditor.draft`` under its user data (Windows: in
%LOCALAPPDATA%, or a custom folder recorded as ``currentCustomDraftPath`` in
``User Data/Config/globalSetting``; macOS: under ~/Movies). A folder counts only when JianYing
has used it: it holds ``root_meta_info.json`` or ``.recycle_bin``. CapCut keeps the same layout
under ``CapCut`` instead of ``JianyingPro``; the draft profile says which app is looked for.

Drafts are built in a staging folder outside the drafts root, on the same file system (the
final rename stays one atomic step), so JianYing never lists a half-written folder: the data
folder's ``staging/`` when it is on the root's device, else a hidden ``.draftdl-staging``
beside the root, else (a root that is a mount point of its own) hidden inside the root.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from draftdl.drafts.profiles import DEFAULT_PROFILE, PROFILES

DRAFT_DIR = ("User Data", "Projects", "com.lveditor.draft")
STAGING_PREFIX = ".building-"  # + the build's key + a random part
SIBLING_STAGING = ".draftdl-staging"  # beside the drafts root
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


def candidates(
    platform: str, env: Mapping[str, str], home: Path, profile: str = DEFAULT_PROFILE
) -> list[tuple[Path, str]]:
    app = PROFILES[profile].app if profile in PROFILES else PROFILES[DEFAULT_PROFILE].app
    what = "CapCut's" if app == "CapCut" else "JianYing's"
    found: list[tuple[Path, str]] = []
    if platform == "win32":
        local = env.get("LOCALAPPDATA")
        base = Path(local) / app if local else home / "AppData/Local" / app
        custom = custom_draft_path(base / "User Data" / "Config" / "globalSetting")
        if custom is not None:
            found.append((custom, f"{what} custom draft folder (currentCustomDraftPath)"))
        found.append((base.joinpath(*DRAFT_DIR), f"{what} draft folder"))
    elif platform == "darwin":
        found.append((home / "Movies" / app / Path(*DRAFT_DIR), f"{what} draft folder"))
    return found


def _device(path: Path) -> int | None:
    """The device of ``path``, or of its nearest existing ancestor (a folder not made yet)."""
    for candidate in (path, *path.parents):
        with contextlib.suppress(OSError):
            return os.stat(candidate).st_dev
    return None


def staging_dirs(root: Path, preferred: Path | None = None) -> list[Path]:
    """Where builds for ``root`` may be staged, best first: ``preferred`` (the data folder's
    ``staging/``) and the hidden sibling, each only on the root's device; the root itself
    last. Sweeps look in all of them."""
    root = Path(os.path.abspath(root))
    device = _device(root)
    found = []
    for candidate in (preferred, root.parent / SIBLING_STAGING):
        if candidate is None or candidate == root or root.parent == root:
            continue
        candidate = Path(os.path.abspath(candidate))
        if device is not None and _device(candidate) == device:
            found.append(candidate)
    found.append(root)
    return found


def staging_dir(root: Path, preferred: Path | None = None) -> Path:
    """The first of ``staging_dirs`` that exists or can be made."""
    for candidate in staging_dirs(root, preferred):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if _device(candidate) == _device(root):  # made on another device after all
            return candidate
    return Path(os.path.abspath(root))


def remove_stale_builds(
    root: Path, older_than: float = 600.0, preferred: Path | None = None
) -> int:
    """Staging folders a killed server left behind, in the staging folders and in the root
    itself (where older versions built, and which is often JianYing's own draft folder);
    fresh ones may be another build's."""
    removed = 0
    cutoff = time.time() - older_than
    for folder in staging_dirs(root, preferred):
        if not folder.is_dir():
            continue
        for leftover in folder.glob(STAGING_PREFIX + "*"):
            with contextlib.suppress(OSError):
                if leftover.is_dir() and leftover.stat().st_mtime < cutoff:
                    shutil.rmtree(leftover)
                    removed += 1
    return removed


def remove_builds_of(root: Path, key: str, preferred: Path | None = None) -> int:
    """The staging folders of one build (its key), left by an earlier run of it that was cut
    off: a killed worker or server, a shutdown past its grace."""
    removed = 0
    for folder in staging_dirs(root.resolve(), preferred):
        for leftover in folder.glob(f"{STAGING_PREFIX}{key}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
            removed += 1
    return removed


def choose_drafts_root(
    configured: Path | None,
    fallback: Path,
    platform: str,
    env: Mapping[str, str],
    home: Path,
    profile: str = DEFAULT_PROFILE,
) -> DraftsRoot:
    if configured is not None:
        return DraftsRoot(configured, "set by drafts_root")
    for folder, what in candidates(platform, env, home, profile):
        if folder.is_dir() and is_jianying_root(folder):
            return DraftsRoot(folder, f"{what}, found at {folder}")
    app = "CapCut" if profile in PROFILES and PROFILES[profile].app == "CapCut" else "JianYing"
    return DraftsRoot(fallback, f"no {app} draft folder found on this machine")
