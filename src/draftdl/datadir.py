"""The data folder: private to its owner, and used by one server at a time.

Two servers on one folder would share one database, and each would take the other's aria2c for
one left over by a killed run and stop it. So the folder is locked with the OS's own lock
(``flock`` on POSIX, ``msvcrt.locking`` on Windows), which goes with the process: a server
killed with -9 leaves no stale lock. The holder's pid is written beside the lock, for the
message a second server gives.

It holds the task database, the aria2 RPC secret and the downloads, so it is 0700 and the files
we create in it are 0600 (POSIX; on Windows the folder's ACL decides).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from types import TracebackType

from draftdl.errors import DataDirLocked

LOCK_FILE = "draftdl.lock"
PID_FILE = "draftdl.pid"
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
POSIX = os.name == "posix"

log = logging.getLogger(__name__)


OURS = ("tasks.db", "draftdl.lock", "aria2", "downloads", "aria2.conf", "rpc-secret")


def make_private_dir(path: Path) -> None:
    """Creates ``path`` (and its parents) with mode 0700, or narrows an existing one to 0700
    when it is empty or already draftdl's (``--data-dir ~`` must not close the home folder:
    then a warning says so instead)."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    if not POSIX or path.stat().st_mode & 0o777 == PRIVATE_DIR:
        return
    if any(path.iterdir()) and not any((path / name).exists() for name in OURS):
        log.warning(
            "%s is readable by other users and holds other files: not changing its mode; "
            "use a folder of draftdl's own as data_dir",
            path,
        )
        return
    os.chmod(path, PRIVATE_DIR)


def make_private_file(path: Path) -> None:
    """Creates an empty ``path`` with mode 0600 unless it exists; narrows it to 0600 if it does."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    narrow(path)


def narrow(path: Path) -> None:
    """Mode 0600 for a file someone else created (SQLite's -wal, a file from an older run)."""
    if not POSIX:
        return
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_mode & 0o777 != PRIVATE_FILE:
            os.chmod(path, PRIVATE_FILE)


def write_private(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` with mode 0600, whatever mode the file had before."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    narrow(path)


class DataDirLock:
    """An exclusive lock on a data folder for as long as the server runs."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.lock_path = data_dir / LOCK_FILE
        self.pid_path = data_dir / PID_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Takes the lock or raises ``DataDirLocked`` naming the server that has it."""
        if self._fd is not None:
            return
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            _lock(fd)
        except OSError:
            os.close(fd)
            raise DataDirLocked(str(self.data_dir.resolve()), self.holder()) from None
        self._fd = fd
        narrow(self.lock_path)
        write_private(self.pid_path, f"{os.getpid()}\n")

    def holder(self) -> int | None:
        """The pid the holder wrote, if it has written it yet."""
        try:
            return int(self.pid_path.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self.holder() == os.getpid():
                self.pid_path.unlink(missing_ok=True)
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def hold_data_dir(
    data_dir: Path, taken: DataDirLock | None = None
) -> contextlib.AbstractContextManager[DataDirLock]:
    """The data folder, private and locked while the context lasts.

    ``taken`` is the lock ``draftdl serve`` took for this folder before starting uvicorn; it
    stays serve's to release. Raises ``DataDirLocked`` when another server holds the folder.
    """
    if taken is not None and taken.held and taken.data_dir == data_dir:
        return contextlib.nullcontext(taken)
    make_private_dir(data_dir)
    lock = DataDirLock(data_dir)
    lock.acquire()
    return lock


if sys.platform == "win32":
    import msvcrt

    def _lock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
