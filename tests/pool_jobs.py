"""Functions the build pool tests run in its worker processes: module-level (they are
pickled by name) and importing only the standard library, so a worker loads them quickly."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from draftdl.errors import DraftBuildError

LIBRARIES = ("pyJianYingDraft", "pymediainfo", "PIL.Image", "draftdl.drafts.builder")


def facts() -> tuple[int, bool, list[str], int]:
    """This process's id; whether pytest is loaded here (it is in a forked copy of the test
    process, not in a spawned one); which of the libraries it already holds; its nice value."""
    loaded = [m for m in LIBRARIES if m in sys.modules]
    return os.getpid(), "pytest" in sys.modules, loaded, os.nice(0)


def hold(gate: str) -> int:
    """Keeps the worker busy until the test writes to the FIFO ``gate``; ``gate``.pid says
    which process it is before that."""
    Path(f"{gate}.tmp").write_text(str(os.getpid()))
    os.replace(f"{gate}.tmp", f"{gate}.pid")
    with open(gate, "rb") as fifo:
        fifo.read()
    return os.getpid()


def fail(text: str) -> None:
    raise DraftBuildError(text)


class Unpicklable(Exception):
    """Its constructor takes two arguments but it keeps one: it does not unpickle."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a} and {b}")


def fail_oddly(a: int, b: int) -> None:
    raise Unpicklable(a, b)
