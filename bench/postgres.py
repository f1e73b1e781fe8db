"""A throwaway PostgreSQL cluster for CLUSTER: started once per bench run, one fresh database
per measured run, always stopped.

``initdb`` into the bench's temp dir (trust auth, user ``draftdl``), then ``pg_ctl start`` on
127.0.0.1 at a free port with ``fsync=off`` (the data is thrown away; disk flushes would only
add noise). PostgreSQL refuses to run as root, so as root the server programs run as the
``postgres`` user through ``runuser``. Databases are made with ``psql`` over TCP.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from bench.common import BenchError, free_port, log_tail

PG_USER = "draftdl"
PG_TOOL_TIMEOUT_S = 120.0


def postgres_bin() -> Path | None:
    """The folder with initdb, pg_ctl and postgres: on PATH, or where Debian puts them."""
    found = shutil.which("pg_ctl")
    if found is not None and shutil.which("initdb") is not None:
        return Path(found).resolve().parent
    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if all((bindir / name).is_file() for name in ("pg_ctl", "initdb", "postgres")):
            return bindir
    return None


def psql_path(bindir: Path) -> str | None:
    own = bindir / "psql"
    return str(own) if own.is_file() else shutil.which("psql")


def missing_tools() -> str | None:
    """Why CLUSTER cannot run here, or None."""
    bindir = postgres_bin()
    if bindir is None:
        return "PostgreSQL's initdb and pg_ctl not found"
    if psql_path(bindir) is None:
        return "psql not found"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: PostgreSQL refuses root"
    return None


@dataclass
class Postgres:
    """A running throwaway cluster: where it listens and how to make a database on it."""

    port: int
    psql: str
    log_path: Path

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database (the name must be a plain lower-case identifier); its URL."""
        if not name.replace("_", "").isalnum() or name.lower() != name:
            raise BenchError(f"not a plain database name: {name!r}")
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)

    def sql(self, statement: str) -> str:
        cmd = [
            self.psql,
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            PG_USER,
            "-d",
            "postgres",
            "-c",
            statement,
        ]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        if p.returncode != 0:
            raise BenchError(f"psql {statement!r}: {p.stderr.strip()[:300]}")
        return p.stdout


def reachable_by_others(folder: Path) -> None:
    """The server's user must traverse to its folder: the bench's own temp dir is made 0700
    by mkdtemp and gets o+x here; a system folder above it is not changed, only checked."""
    mode = folder.stat().st_mode
    folder.chmod(mode | stat.S_IXGRP | stat.S_IXOTH)
    for parent in folder.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise BenchError(f"{parent} is not searchable by the postgres user")


@contextmanager
def postgres_cluster(root: Path, ports: set[int]) -> Iterator[Postgres]:
    """initdb + pg_ctl start under ``root`` (a new folder); stopped (immediate) at exit,
    whatever ended the block, and the postmaster killed by pid if pg_ctl cannot stop it."""
    bindir = postgres_bin()
    why = missing_tools()
    if bindir is None or why is not None:
        raise BenchError(why or "PostgreSQL not found")
    psql = psql_path(bindir)
    assert psql is not None
    root.mkdir(parents=True)
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        reachable_by_others(root.parent)
        shutil.chown(root, "postgres")
        root.chmod(0o700)
    data, port, log_path = root / "data", free_port(ports), root / "server.log"

    def run(*args: str) -> None:
        try:
            subprocess.run(
                [*as_user, *args], check=True, capture_output=True, timeout=PG_TOOL_TIMEOUT_S
            )
        except subprocess.CalledProcessError as exc:
            out = (exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(
                errors="replace"
            )
            raise BenchError(
                f"{Path(args[0]).name} exit {exc.returncode}: {out.strip()[-500:]}\n"
                f"{log_tail(log_path, 10)}"
            ) from None
        except subprocess.TimeoutExpired:
            raise BenchError(f"{Path(args[0]).name} took over {PG_TOOL_TIMEOUT_S:g} s") from None

    run(str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log_path), "-w", "start")
        yield Postgres(port, psql, log_path)
    finally:
        if (data / "postmaster.pid").is_file():
            try:
                run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
            except BenchError:
                kill_postmaster(data)


def kill_postmaster(data: Path) -> None:
    """The last resort: SIGKILL the pid in postmaster.pid when it is still a postgres."""
    with suppress(OSError, ValueError, IndexError):
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        if Path(f"/proc/{pid}/comm").read_text().strip() == "postgres":
            os.kill(pid, signal.SIGKILL)
