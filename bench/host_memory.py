"""The guest's free page reporting, held off while the bench runs, and memory touched first.

On a VM whose kernel reports freed pages to the host (virtio-balloon free page reporting;
the Firecracker guests here boot with it), a page freed and then written again a few seconds
later faults back in from the host. A download workload writes its whole payload into tmpfs,
so its time then depends on how long ago the previous run freed its files, not on who
downloads: measured here, the same 1,000 x 1 MiB aria2c job with draftdl's aria2.conf took
1.57 s or 2.4-2.9 s run to run (kernel time 1.1 s or 2.4 s), and 4.8 s into pages never
touched. A service that starts for a second before it downloads lands on the slow side more
often than a bare aria2c that starts at once. Holding reporting off for the run (and touching
the memory a workload needs once, up front) makes both sides write into the same kind of
page: 1.58-1.86 s every time. The setting is put back at exit.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from bench.common import Json

ORDER = Path("/sys/module/page_reporting/parameters/page_reporting_order")
BUDDYINFO = Path("/proc/buddyinfo")


def never_order() -> int:
    """One past the largest page order the kernel has: no free block is ever that big."""
    with suppress(OSError, IndexError):
        first = BUDDYINFO.read_text().splitlines()[0]
        return len(first.split()) - 4  # "Node 0, zone DMA" then one count per order
    return 11


@contextmanager
def page_reporting_held(keep: bool) -> Iterator[Json]:
    """Yields what the JSON records: the setting found, whether reporting is off for the run
    (``off``) and whether this run turned it off (``held_off``) and put it back."""
    state: Json = {"page_reporting_order": None, "off": False, "held_off": False}
    try:
        found = int(ORDER.read_text().strip())
    except (OSError, ValueError):
        found = -1
    if found < 0:  # no such parameter, or no reporting device behind it
        state["note"] = "no free page reporting on this kernel"
        yield state
        return
    state["page_reporting_order"] = found
    off = never_order()
    if found >= off:
        state.update(off=True, note="found so")
        yield state
        return
    if keep:
        state["note"] = "--keep-page-reporting"
        yield state
        return
    try:  # put back whatever ends the run, also when raising it failed halfway
        written = _raise_order(off)
        if written is None:
            state["note"] = "could not hold it off; figures are noisier"
        else:
            state.update(held_off=True, off=written >= off, order_during_run=written)
        yield state
    finally:
        try:
            ORDER.write_text(f"{found}\n")
            state["restored"] = int(ORDER.read_text().strip()) == found
        except (OSError, ValueError):
            state["restored"] = False
        if not state["restored"]:
            print(f"could not put {ORDER} back to {found}", file=sys.stderr)


def _raise_order(off: int) -> int | None:
    """Past the largest order where the kernel allows it (some cap the value at the largest
    order itself, which still leaves all but the largest blocks unreported)."""
    for value in (off, off - 1):
        try:
            ORDER.write_text(f"{value}\n")
            return value
        except OSError:
            continue
    return None


def touch_memory(folder: Path, size: int) -> None:
    """Allocates and frees ``size`` bytes in ``folder`` (tmpfs zeroes the pages it allocates),
    so the pages the workloads' outputs get next have been backed by the host once already."""
    path = folder / "ballast.bin"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
