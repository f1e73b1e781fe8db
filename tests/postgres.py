"""A throwaway PostgreSQL cluster on a loopback port, for the tests that need a real one
(migrations, the cluster of nodes)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import free_port


def postgres_bin() -> Path | None:
    """PostgreSQL's server programs: on PATH, or where Debian puts them."""
    found = shutil.which("pg_ctl")
    if found is not None and shutil.which("initdb") is not None:
        return Path(found).resolve().parent
    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if all((bindir / name).is_file() for name in ("pg_ctl", "initdb", "postgres")):
            return bindir
    return None


@contextlib.contextmanager
def postgres_server(root: Path) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a loopback port (as ``postgres`` when run as root:
    the server refuses root)."""
    bindir = postgres_bin()
    if bindir is None or importlib.util.find_spec("asyncpg") is None:
        pytest.skip("PostgreSQL (pg_ctl, initdb) or asyncpg is not installed")
    root.mkdir(parents=True, exist_ok=True)
    as_user: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: PostgreSQL will not start")
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
        root.chmod(0o700)
        for parent in root.parents:  # the server's user must reach its folder
            if parent == Path(parent.anchor):
                break
            parent.chmod(parent.stat().st_mode | 0o011)
    data, port = root / "pg", free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    run(str(bindir / "initdb"), "-D", str(data), "-U", "draftdl", "--auth=trust", "-E", "UTF8")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start")
    try:
        yield f"postgresql+asyncpg://draftdl@127.0.0.1:{port}/postgres"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
