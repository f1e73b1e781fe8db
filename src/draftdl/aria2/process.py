"""Aria2Manager: runs our private aria2c as a child, watches it, restarts it, stops it.

A small state machine: STOPPED → STARTING → RUNNING, back to STARTING when it dies (restart with
backoff), UNAVAILABLE while it cannot be started (the reason is kept for /api/health), REMOTE when
someone else runs aria2c (``aria2_rpc_url``) and we only check that it answers.

The child gets a clean environment (no API token, no other secrets; see ``aria2_environment``)
and a 077 umask, so the session it rewrites (URLs, options) stays 0600 like the files we write.
Its RPC port is the asked one whenever aria2c could bind it; a port that moves is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from draftdl.aria2.locate import locate_aria2c
from draftdl.aria2.models import MAX_DOWNLOAD_RESULT
from draftdl.aria2.rpc import SAVE_SESSION, Aria2Client
from draftdl.datadir import POSIX, make_private_dir, make_private_file, narrow, write_private
from draftdl.errors import Aria2Error, Aria2Unavailable
from draftdl.settings import Settings

log = logging.getLogger(__name__)

READY_TIMEOUT = 10.0
MAX_BACKOFF = 30.0
PORT_WAIT = 3.0  # for the port of our previous aria2c while it exits
# aria2c rewrites its session (URLs, options) as a new file: a 077 umask keeps it 0600. The
# umask is set by a POSIX shell that then execs aria2c (same pid): uvloop's subprocess_exec has
# no umask argument, and changing our own umask would race with files other threads create.
UMASK_LAUNCHER = ("/bin/sh", "-c", 'umask 077 && exec "$@"', "aria2c")

# What aria2c needs from our environment; everything else (DRAFTDL_API_TOKEN, cloud keys, CI
# tokens) stays with us. aria2 reads the proxy variables itself, so downloads keep working
# behind a proxy (their URLs may carry proxy credentials; those are meant for aria2c).
POSIX_ENVIRONMENT = frozenset({"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR"})
WINDOWS_ENVIRONMENT = frozenset(
    {
        "PATH",
        "PATHEXT",
        "SYSTEMROOT",
        "SYSTEMDRIVE",
        "WINDIR",
        "COMSPEC",
        "TEMP",
        "TMP",
        "USERPROFILE",
        "HOMEDRIVE",
        "HOMEPATH",
        "APPDATA",
        "LOCALAPPDATA",
        "PROGRAMDATA",
        "NUMBER_OF_PROCESSORS",
        "PROCESSOR_ARCHITECTURE",
        "LANG",
        "TZ",
    }
)
SHARED_ENVIRONMENT = frozenset(  # in either case: aria2 reads http_proxy, curl HTTP_PROXY
    {"HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "ALL_PROXY", "NO_PROXY"}
    | {"SSL_CERT_FILE", "SSL_CERT_DIR"}
)


class Aria2State(enum.StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    UNAVAILABLE = "unavailable"
    REMOTE = "remote"


def port_is_free(port: int) -> bool:
    """Whether aria2c could listen on ``port`` now, tried the way aria2 binds: with SO_REUSEADDR
    on POSIX, so connections of an aria2c that has exited (TIME_WAIT) do not count. On Windows
    that option would let the bind succeed over a live listener, so it is not set there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if POSIX:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until_free(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not port_is_free(port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def redact(secret: str) -> str:
    """Enough of a secret to tell two apart in a log, never the whole."""
    return f"{secret[:2]}…({len(secret)} chars)" if secret else ""


def load_or_create_secret(path: Path) -> str:
    """The RPC secret is random per install and lives in a 0600 file in the data folder."""
    if path.exists():
        narrow(path)
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value
    value = secrets.token_hex(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, value)
    return value


def aria2_environment(environ: Mapping[str, str], platform: str = sys.platform) -> dict[str, str]:
    """The variables aria2c is started with: what it needs to run, resolve and download."""
    windows = platform == "win32"
    keep = (WINDOWS_ENVIRONMENT if windows else POSIX_ENVIRONMENT) | SHARED_ENVIRONMENT
    out: dict[str, str] = {}
    for key, value in environ.items():
        name = key.upper() if windows else key
        if name in keep or name.upper() in SHARED_ENVIRONMENT or name.startswith("LC_"):
            out[key] = value
    return out


def conf_port(conf: Path) -> int | None:
    """The RPC port an earlier aria2c of ours was given (it may still be exiting)."""
    try:
        text = conf.read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "rpc-listen-port" and value.isdigit():
            return int(value)
    return None


def render_conf(settings: Settings, port: int, secret: str, session: Path) -> str:
    """Our own aria2.conf: loopback RPC with a secret, resumable files, names we choose."""
    options = {
        "enable-rpc": "true",
        "rpc-listen-all": "false",
        "rpc-listen-port": str(port),
        "rpc-secret": secret,
        "rpc-allow-origin-all": "false",
        "rpc-max-request-size": "16M",
        "max-concurrent-downloads": str(settings.max_concurrent_downloads),
        "max-overall-download-limit": settings.max_overall_download_limit,
        # Only the URLs we add are downloaded: a .torrent or .metalink file is saved as it is,
        # never followed, and nothing BitTorrent (DHT, peer exchange, local discovery) runs.
        "follow-torrent": "false",
        "follow-metalink": "false",
        "enable-dht": "false",
        "enable-dht6": "false",
        "enable-peer-exchange": "false",
        "bt-enable-lpd": "false",
        # ~/.netrc holds the user's passwords for other hosts: never sent to a job's URLs.
        "no-netrc": "true",
        "continue": "true",
        # false: a file without its control file is resumed from its length, not restarted.
        "allow-overwrite": "false",
        "auto-file-renaming": "false",
        "file-allocation": "none",
        "save-session": str(session),
        "save-session-interval": "1",
        "auto-save-interval": "1",
        # One try each: draftdl decides what is worth retrying, with backoff (tasks/retry.py).
        "max-tries": "1",
        "retry-wait": "1",
        "connect-timeout": "10",
        "timeout": "30",
        "max-file-not-found": "1",
        "max-download-result": str(MAX_DOWNLOAD_RESULT),  # every one of them is read
        "summary-interval": "0",
        "console-log-level": "warn",
        "enable-color": "false",
        "disable-ipv6": "true",
        "stop-with-process": str(os.getpid()),
    }
    return "".join(f"{k}={v}\n" for k, v in options.items())


class Aria2Manager:
    def __init__(self, settings: Settings, client: Aria2Client) -> None:
        self.settings = settings
        self.client = client
        self.dir = settings.aria2_dir
        self.state = Aria2State.STOPPED
        self.reason: str | None = None
        self.version: str | None = None
        self.binary: str | None = None
        self.binary_source: str | None = None
        self.port: int | None = None
        self.restarts = 0
        self._ours: set[int] = set()  # ports our earlier aria2c processes were given
        self._secret: str = ""
        self._proc: asyncio.subprocess.Process | None = None
        self._exit: asyncio.Task[int] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._ready_callbacks: list[Callable[[], None]] = []
        self._started_at = 0.0

    @property
    def managed(self) -> bool:
        return self.settings.aria2_rpc_url is None

    @property
    def running(self) -> bool:
        return self.state in (Aria2State.RUNNING, Aria2State.REMOTE) and self.reason is None

    def on_ready(self, callback: Callable[[], None]) -> None:
        """Called each time aria2 (re)starts, so lost downloads are re-added at once."""
        self._ready_callbacks.append(callback)

    def get_rpc_url(self) -> str | None:
        if not self.managed:
            return self.settings.aria2_rpc_url
        return f"http://127.0.0.1:{self.port}/jsonrpc" if self.port else None

    def get_rpc_secret(self) -> str:
        return self._secret

    async def start(self) -> bool:
        """Starts (or, in remote mode, reaches) aria2c; never raises for a missing binary."""
        if not self.managed:
            given = self.settings.aria2_rpc_secret
            self._secret = given.get_secret_value() if given else ""
            self.client.set_endpoint(self.settings.aria2_rpc_url or "", self._secret or None)
            self.state = Aria2State.REMOTE
            return await self._ping_remote()
        self._secret = await asyncio.to_thread(self._prepare_secret)
        return await self._start_child()

    def _prepare_secret(self) -> str:
        make_private_dir(self.dir)
        given = self.settings.aria2_rpc_secret
        if given is not None:
            return given.get_secret_value()
        return load_or_create_secret(self.dir / "rpc-secret")

    async def ensure_running(self) -> None:
        if not self.running:
            raise Aria2Unavailable(self.reason or f"aria2c is {self.state.value}")

    async def _ping_remote(self) -> bool:
        try:
            info = await self.client.get_version(within=3.0)
        except Aria2Error as exc:
            self.reason = f"remote aria2 at {self.settings.aria2_rpc_url} not answering: {exc}"
            return False
        first = self.version is None or self.reason is not None
        self.version = str(info.get("version"))
        self.reason = None
        if first:
            self._notify_ready()
        return True

    async def _start_child(self) -> bool:
        self.state = Aria2State.STARTING
        found = await asyncio.to_thread(locate_aria2c, self.settings.aria2c_path)
        self.binary, self.binary_source = found.path, found.source
        if found.path is None:
            self._unavailable(found.source)
            return False
        earlier = await asyncio.to_thread(conf_port, self.dir / "aria2.conf")
        if earlier is not None:
            self._ours.add(earlier)
        await asyncio.to_thread(self._kill_orphan)
        for _attempt in range(3):
            port = await asyncio.to_thread(self._choose_port)
            ok = await self._spawn(found.path, port)
            if ok:
                return True
        return False

    def _choose_port(self) -> int:
        """The asked port when aria2c can have it; after a crash, the port it had.

        A port our previous aria2c was given is waited for (up to ``PORT_WAIT``) while that
        aria2c exits. Any other port taken is logged with the reason.
        """
        asked, had = self.settings.aria2_rpc_port, self.port
        reasons: list[str] = []
        for port in dict.fromkeys(p for p in (had, asked) if p):
            if port_is_free(port):
                break
            if port in self._ours and wait_until_free(port, PORT_WAIT):
                break
            waited = f" (waited {PORT_WAIT:.0f}s)" if port in self._ours else ""
            reasons.append(f"port {port} is in use by another program{waited}")
        else:
            port = free_port()
        if asked and port != asked:
            why = "; ".join(reasons) if reasons else "kept the port aria2c had before the restart"
            log.warning("aria2 RPC port: asked %s, took %s: %s", asked, port, why)
        return port

    def _unavailable(self, reason: str) -> None:
        if reason != self.reason:
            log.warning("aria2c unavailable: %s", reason)
        self.state = Aria2State.UNAVAILABLE
        self.reason = reason

    async def _spawn(self, binary: str, port: int) -> bool:
        conf = self.dir / "aria2.conf"
        session = self.dir / "aria2.session"
        logfile = self.dir / "aria2c.log"

        def write_files() -> int:
            write_private(conf, render_conf(self.settings, port, self._secret, session))
            make_private_file(session)
            fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            narrow(logfile)
            return fd

        log_fd = await asyncio.to_thread(write_files)
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *(UMASK_LAUNCHER if POSIX else ()),
                binary,
                f"--conf-path={conf}",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                start_new_session=True,
                env=aria2_environment(os.environ),
            )
        except OSError as exc:
            self._unavailable(f"could not run {binary}: {exc}")
            return False
        finally:
            os.close(log_fd)
        self._proc = proc
        self._exit = asyncio.create_task(proc.wait(), name="aria2c-exit")
        self.port = port
        self._ours.add(port)
        self.client.set_endpoint(f"http://127.0.0.1:{port}/jsonrpc", self._secret)
        deadline = started + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._exit.done():
                tail = await asyncio.to_thread(_tail, logfile)
                self._unavailable(f"aria2c exited with code {proc.returncode} at start: {tail}")
                return False
            try:
                info = await self.client.get_version(within=1.0)
            except Aria2Error:
                await asyncio.sleep(0.05)
                continue
            self.version = str(info.get("version"))
            self.state = Aria2State.RUNNING
            self.reason = None
            self._started_at = time.monotonic()
            await asyncio.to_thread(write_private, self.dir / "aria2c.pid", str(proc.pid))
            log.info(
                "%6.2fs → aria2c %s running (pid %s, port %s, secret %s)",
                time.monotonic() - started,
                self.version,
                proc.pid,
                port,
                redact(self._secret),
            )
            self._notify_ready()
            return True
        await self._kill_child()
        self._unavailable(f"aria2c did not answer on port {port} within {READY_TIMEOUT:.0f}s")
        return False

    def _notify_ready(self) -> None:
        for callback in self._ready_callbacks:
            callback()

    def _kill_orphan(self) -> None:
        """An aria2c left by a killed server still writes our files: stop it before starting."""
        pidfile = self.dir / "aria2c.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            cmdline = b""
        if str(self.dir).encode() not in cmdline:
            pidfile.unlink(missing_ok=True)
            return
        log.warning("stopping aria2c left over from an earlier run (pid %s)", pid)
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                if _is_zombie(pid):
                    break
                time.sleep(0.05)
            else:
                continue
            break
        pidfile.unlink(missing_ok=True)

    async def _kill_child(self) -> None:
        proc, exit_task = self._proc, self._exit
        if proc is None or exit_task is None:
            return
        if not exit_task.done():
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.wait({exit_task}, timeout=5)

    async def restart(self) -> bool:
        await self._kill_child()
        self.restarts += 1
        return await self._start_child()

    def start_health_check(self) -> None:
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise(), name="aria2-health")

    async def stop_health_check(self) -> None:
        task, self._supervisor = self._supervisor, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _supervise(self) -> None:
        """Restarts a dead or hung aria2c: at once the first time, then with backoff."""
        backoff = 0.0
        interval = self.settings.health_check_interval
        misses = 0
        while True:
            try:
                if not self.managed:
                    await asyncio.sleep(interval)
                    await self._ping_remote()
                    continue
                if self.state is not Aria2State.RUNNING:
                    await asyncio.sleep(backoff)
                    backoff = min(max(backoff * 2, 0.5), MAX_BACKOFF)
                    self.restarts += 1
                    if await self._start_child():
                        misses = 0
                    continue
                assert self._exit is not None
                done, _ = await asyncio.wait({self._exit}, timeout=interval)
                if done:
                    lived = time.monotonic() - self._started_at
                    tail = await asyncio.to_thread(_tail, self.dir / "aria2c.log")
                    self._unavailable(f"aria2c exited with code {self._exit.result()}: {tail}")
                    if lived > 60:
                        backoff = 0.0
                    continue
                try:
                    await self.client.get_version(within=3.0)
                    misses = 0
                except Aria2Error as exc:
                    misses += 1
                    if misses >= 2:
                        log.warning("aria2c not answering (%s); restarting it", exc)
                        await self._kill_child()
                        self._unavailable(f"aria2c stopped answering: {exc}")
            except Exception as exc:  # a full disk, a refused kill: keep watching, retry
                log.exception("aria2c supervision step failed")
                self._unavailable(f"could not start aria2c: {exc!r}")
                await asyncio.sleep(max(backoff, 0.5))
                backoff = min(max(backoff * 2, 0.5), MAX_BACKOFF)

    async def stop(self) -> None:
        """Saves the session, then asks aria2c to exit; terminate, then kill, if it lingers.

        On POSIX, SIGTERM is aria2's own graceful shutdown and takes about 1 s, where the
        ``aria2.shutdown`` RPC takes 4 s (measured, aria2 1.36); on Windows terminate is a hard
        kill, so the RPC comes first there.
        """
        await self.stop_health_check()
        proc, exit_task = self._proc, self._exit
        if self.managed and proc is not None and exit_task is not None and not exit_task.done():
            with contextlib.suppress(Aria2Error):
                await self.client.call(SAVE_SESSION, within=3.0)
            if sys.platform == "win32":
                with contextlib.suppress(Aria2Error):
                    await self.client.shutdown()
                await asyncio.wait({exit_task}, timeout=5)
            for step in (proc.terminate, proc.kill):
                if exit_task.done():
                    break
                with contextlib.suppress(ProcessLookupError):
                    step()
                await asyncio.wait({exit_task}, timeout=5)
        if self.managed:
            await asyncio.to_thread((self.dir / "aria2c.pid").unlink, missing_ok=True)
        self._proc = None
        self.state = Aria2State.STOPPED

    def health(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "state": self.state.value,
            "managed": self.managed,
            "version": self.version,
            "pid": self._proc.pid if self._proc and self.state is Aria2State.RUNNING else None,
            "rpc_url": self.get_rpc_url(),
            "binary": self.binary,
            "binary_source": self.binary_source,
            "restarts": self.restarts,
            "reason": self.reason,
        }

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(tail) or "(empty log)"
