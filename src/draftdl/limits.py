"""The global speed cap set at run time, kept in the data folder so it survives a restart.

``PUT /api/settings/limits`` changes it in aria2 at once (``changeGlobalOption``) and here; at
start the kept value wins over the setting, and aria2c is started with it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from draftdl.units import parse_speed

log = logging.getLogger(__name__)

FILE = "limits.json"


def load_overall_limit(data_dir: Path) -> str | None:
    """The kept value, or None when none is kept (or it is unreadable: then it is ignored)."""
    path = data_dir / FILE
    try:
        value = json.loads(path.read_text(encoding="utf-8"))["max_overall_download_limit"]
        parse_speed(value)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return None
    return str(value)


def save_overall_limit(data_dir: Path, value: str) -> None:
    """Written whole, 0600, then moved into place: a crash never leaves half a file."""
    path = data_dir / FILE
    tmp = path.with_name(f".{FILE}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"max_overall_download_limit": value}, fh)
    os.replace(tmp, path)
