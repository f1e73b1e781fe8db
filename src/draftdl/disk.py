"""Free space where downloads land: the queue waits on it, health reports it."""

from __future__ import annotations

import shutil
from pathlib import Path


def free_space(path: Path) -> int:
    """Bytes free to us on the file system holding ``path`` (its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return shutil.disk_usage(probe).free
