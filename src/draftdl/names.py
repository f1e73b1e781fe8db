"""Names for files and folders that are safe on Windows, macOS and Linux, and read as shown."""

from __future__ import annotations

import re
import unicodedata

UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
WINDOWS_RESERVED = {
    "con", "prn", "aux", "nul",
    *(f"com{i}" for i in range(1, 10)),
    *(f"lpt{i}" for i in range(1, 10)),
}  # fmt: skip


def clean_text(text: str) -> str:
    """Text for a file or folder name: NFC, no control, format or private-use characters
    (no RTL overrides or zero-width marks), none of Windows' forbidden ones, no outer dots."""
    name = unicodedata.normalize("NFC", text)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    return UNSAFE.sub("_", name).strip(" .")


def not_a_device(stem: str) -> str:
    """Windows reserves CON, NUL, COM1… before the *first* dot: 'aux.tar' is AUX too."""
    return f"_{stem}" if stem.split(".", 1)[0].strip().lower() in WINDOWS_RESERVED else stem
