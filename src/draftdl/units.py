"""Speeds and sizes as people and aria2 write them: bytes, or a number with K, M or G."""

from __future__ import annotations

import re

AMOUNT = re.compile(r"^(\d{1,15})([KkMmGg]?)$")
SPEED = re.compile(r"^(\d{1,12})([KkMm]?)$")  # aria2 reads K and M only
UNIT = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
MAX_SPEED = 10 * 1024**3  # bytes/s: beyond any link, and what aria2 accepts
SPEED_HELP = (
    "must be bytes per second (a whole number ≥ 0) or aria2 style like '2M' or '500K', "
    "at most 10 GiB/s"
)
SIZE_HELP = "must be a number of bytes, or with a unit like '500M' or '2G'"


def parse_amount(value: str | int) -> int:
    """'2M' → 2097152, 1024 → 1024; raises ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"negative amount: {value}")
        return value
    match = AMOUNT.match(value)
    if match is None:
        raise ValueError(f"not an amount: {value!r}")
    number, unit = match.groups()
    return int(number) * UNIT[unit.lower()]


def parse_speed(value: str | int) -> int:
    """A speed limit in bytes/s (0: unlimited); ValueError names what is wrong."""
    if isinstance(value, str) and not SPEED.match(value):
        raise ValueError(SPEED_HELP)
    try:
        speed = parse_amount(value)
    except ValueError:
        raise ValueError(SPEED_HELP) from None
    if speed > MAX_SPEED:
        raise ValueError(SPEED_HELP)
    return speed


def speed_bytes(value: str) -> int:
    """A stored limit ('2M', '0') in bytes/s; the value was checked when it was accepted."""
    return parse_amount(value)


def human_size(n: int) -> str:
    """1536 → '1.5 KiB': one family of units everywhere we print sizes."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
