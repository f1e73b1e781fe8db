"""``draftdl pull``: a task's draft, downloaded and unpacked into this machine's JianYing
draft folder, ready to open.

The zip is downloaded to a hidden ``.part`` file in the draft folder (a download cut short
resumes from it, with ``Range`` and ``If-Range``, on its own up to three times and on the
next run after that), checked against the SHA-256 the server sent and the manifest it
carries, then unpacked by ``drafts/unpack.py`` into a new folder (never an existing one).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from draftdl.cli.client import ApiClient, ServerError
from draftdl.cli.options import connect, server_options
from draftdl.cli.watch import progress_line
from draftdl.drafts import location
from draftdl.drafts.rootmeta import ROOT_META, NothingToRegister, register_draft
from draftdl.drafts.unpack import PullError, unpack_draft, verify_archive
from draftdl.units import human_size

PLATFORM = sys.platform  # a module constant, so tests can pull as on Windows or macOS
LONG_POLL = 60  # the server's longest ?wait=
RESUMES = 3  # a download cut mid-body is resumed this many times in one run
READ_TIMEOUT = 300.0  # the server builds the whole zip before its first byte
SPARE_BYTES = 64 * 1024 * 1024  # free space kept beyond the zip and the unpacked draft
CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+)\s*$", re.IGNORECASE)
UNSATISFIED = re.compile(r"^\s*bytes\s+\*/(\d+)\s*$", re.IGNORECASE)
INTERRUPTED = 130


class PullFailed(click.ClickException):
    """One line on standard error; exit 1 (the task failed, or the zip did not check)."""


class TaskCancelled(PullFailed):
    exit_code = 2


class PullCut(PullFailed):
    """The connection failed (as the server failing does for every command: 3)."""

    exit_code = 3


class NotReady(PullFailed):
    exit_code = 4


def detect_root(
    platform: str, env: Mapping[str, str], home: Path
) -> tuple[Path | None, list[Path]]:
    """JianYing's draft folder on this machine, found as the server finds its own
    (``drafts/location.py``), and the folders looked at."""
    looked = []
    for folder, _ in location.candidates(platform, env, home):
        looked.append(folder)
        if folder.is_dir() and location.is_jianying_root(folder):
            return folder, looked
    return None, looked


def resolve_root(root: Path | None) -> Path:
    if root is not None:
        if not root.is_dir():
            raise PullFailed(f"--root {root} is not a folder")
        return Path(os.path.abspath(root))
    found, looked = detect_root(PLATFORM, os.environ, Path.home())
    if found is not None:
        return Path(os.path.abspath(found))
    where = "; ".join(str(p) for p in looked) or f"none on {PLATFORM}"
    raise PullFailed(
        f"no JianYing draft folder found on this machine (looked in: {where}); "
        "give it with --root DIR"
    )


# -- waiting for the task ----------------------------------------------------------------


def ready_task(api: ApiClient, task_id: str, watch: bool) -> dict[str, Any]:
    """The task once it is completed; with ``watch``, long-polls until it is final (the
    first look does not wait, so that a running task is reported at once)."""
    shown = ""
    params: dict[str, int] | None = None
    while True:
        asked, waited = time.monotonic(), params is not None
        task: dict[str, Any] = api.request(
            "GET",
            f"/api/tasks/{task_id}",
            params=params,
            timeout=httpx.Timeout(30.0, read=LONG_POLL + 30.0),
        )
        params = {"wait": LONG_POLL}
        status = task["status"]
        if status == "completed":
            return task
        why = task.get("error_message") or task.get("message") or ""
        if status == "failed":
            raise PullFailed(f"task {task_id} failed: {why}".rstrip(": "))
        if status == "cancelled":
            raise TaskCancelled(f"task {task_id} was cancelled")
        if not watch:
            raise NotReady(
                f"task {task_id} is {status}: its draft is not built yet (--watch waits for it)"
            )
        line = f"waiting for task {task_id}: " + progress_line(status, task["progress"])
        if line != shown:
            click.echo(line)
            shown = line
        if waited and time.monotonic() - asked < 1.0:
            time.sleep(1.0)  # a server that does not hold the request


# -- the download --------------------------------------------------------------------------


@dataclass
class PartState:
    """What a ``.part`` file is a part of: the zip with this ETag, SHA-256 and size."""

    etag: str
    sha256: str
    size: int


class Restart(Exception):
    """The part on disk is of no use (the zip changed): download from the start."""


class Cut(Exception):
    """The body stopped before its end; the bytes so far are kept."""


def repr_digest(headers: httpx.Headers) -> str | None:
    """The SHA-256 (hex) of ``Repr-Digest: sha-256=:<base64>:`` (RFC 9530)."""
    for item in headers.get("repr-digest", "").split(","):
        key, _, value = item.strip().partition("=")
        if key.strip().lower() != "sha-256":
            continue
        value = value.strip()
        if len(value) < 2 or value[0] != ":" or value[-1] != ":":
            return None
        try:
            raw = base64.b64decode(value[1:-1], validate=True)
        except ValueError:
            return None
        return raw.hex() if len(raw) == 32 else None
    return None


class Download:
    """The draft zip of one task, downloaded into ``root`` beside where it is unpacked."""

    def __init__(self, api: ApiClient, task_id: str, root: Path) -> None:
        self.api = api
        self.task_id = task_id
        key = hashlib.sha256(f"{api.server}\n{task_id}".encode()).hexdigest()[:16]
        self.part = root / f".draftdl-pull-{key}.zip.part"
        self.state_file = root / f".draftdl-pull-{key}.json"
        self.root = root
        self.console = Console()

    def discard(self) -> None:
        for path in (self.part, self.state_file):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _state(self) -> PartState | None:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            return PartState(str(data["etag"]), str(data["sha256"]), int(data["size"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def fetch(self) -> str:
        """The zip on disk (``self.part``) and its SHA-256, resuming after a cut."""
        for attempt in range(RESUMES + 2):  # one more: a Restart costs a request
            try:
                return self._attempt()
            except Restart:
                self.discard()
            except Cut as cut:
                if attempt >= RESUMES:
                    raise PullCut(
                        f"{cut}; run the same command again to resume (the part is kept "
                        f"in {self.part})"
                    ) from None
                click.echo(f"{cut}; resuming", err=True)
        raise PullFailed(f"the draft zip of task {self.task_id} kept changing while downloaded")

    def _attempt(self) -> str:
        state = self._state()
        have = self.part.stat().st_size if state and self.part.is_file() else 0
        if state is None:
            self.discard()
        headers = {"Range": f"bytes={have}-", "If-Range": state.etag} if state and have else {}
        with self.api.stream(
            f"/api/tasks/{self.task_id}/draft.zip",
            ok=(416,),
            headers=headers,
            timeout=httpx.Timeout(30.0, read=READ_TIMEOUT),
        ) as resp:
            if resp.status_code == 416:
                match = UNSATISFIED.match(resp.headers.get("content-range", ""))
                if state and match and int(match.group(1)) == have == state.size:
                    return state.sha256  # the part was whole already
                raise Restart
            sha = repr_digest(resp.headers)
            if sha is None:
                raise PullFailed(
                    "the server sent no SHA-256 of the zip (Repr-Digest): it is older than "
                    "this draftdl; use `draftdl zip` with it"
                )
            if resp.status_code == 206:
                match = CONTENT_RANGE.match(resp.headers.get("content-range", ""))
                if not (
                    state
                    and match
                    and int(match.group(1)) == have
                    and int(match.group(3)) == state.size
                    and sha == state.sha256
                ):
                    raise Restart
                mode = "ab"
            elif resp.status_code == 200:
                try:
                    size = int(resp.headers["content-length"])
                except (KeyError, ValueError):
                    raise PullFailed("the server sent the zip without its size") from None
                state = PartState(resp.headers.get("etag") or f'"{sha}"', sha, size)
                have = 0
                self.state_file.write_text(json.dumps(asdict(state)), encoding="utf-8")
                mode = "wb"
            else:
                raise ServerError(f"{resp.status_code}: an answer draftdl does not expect")
            self._room_for(state.size - have + state.size)
            self._receive(resp, mode, have, state.size)
        got = self.part.stat().st_size
        if got < state.size:  # closed early without an error
            raise Cut(f"the download stopped at {human_size(got)} of {human_size(state.size)}")
        if got > state.size:
            raise Restart
        return state.sha256

    def _room_for(self, needed: int) -> None:
        free = shutil.disk_usage(self.root).free
        if free < needed + SPARE_BYTES:
            raise PullFailed(
                f"not enough free space in {self.root}: the zip and the draft need "
                f"{human_size(needed)}, {human_size(free)} are free"
            )

    def _receive(self, resp: httpx.Response, mode: str, have: int, size: int) -> None:
        if have:
            click.echo(f"resuming the draft zip at {human_size(have)} of {human_size(size)}")
        else:
            click.echo(f"downloading the draft zip ({human_size(size)})")
        done = have
        bar = Progress(
            TextColumn("draft zip"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.console.is_terminal,
            transient=True,
        )
        with bar, open(self.part, mode) as out:
            job = bar.add_task("zip", total=size, completed=have)
            try:
                for chunk in resp.iter_bytes():  # as it comes: a cut keeps every byte
                    out.write(chunk)
                    out.flush()
                    done += len(chunk)
                    bar.update(job, completed=done)
            except httpx.HTTPError as exc:
                raise Cut(
                    f"the download was cut at {human_size(done)} of {human_size(size)} "
                    f"({exc or type(exc).__name__})"
                ) from None


# -- the command ----------------------------------------------------------------------------


@click.command("pull")
@click.argument("task_id")
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="JianYing's draft folder on this machine (default: found as the server finds "
    "its own: %LOCALAPPDATA%\\JianyingPro\\… or the custom folder on Windows, "
    "~/Movies/JianyingPro/… on macOS).",
)
@click.option("--watch", "watch", is_flag=True, help="Wait for the task to end first.")
@click.option(
    "--register",
    is_flag=True,
    help=f"Also add the draft to JianYing's {ROOT_META} (a backup is kept beside it), so "
    "it lists without a rescan. Off by default; quit JianYing first.",
)
@server_options
@click.pass_context
def pull(
    ctx: click.Context,
    task_id: str,
    root: Path | None,
    watch: bool,
    register: bool,
    server: str,
    token: str | None,
) -> None:
    """Download a task's draft and unpack it into this machine's JianYing draft folder.

    The zip is checked against the SHA-256 the server sends for it and for each of its
    files before anything is unpacked; the draft goes into a new folder named like it
    (NAME, then "NAME (2)", …: an existing draft is never overwritten), its media paths
    made absolute paths of that folder. A cut download resumes where it stopped.

    Exit 0 pulled, 1 failed (the task, or the check of the zip), 2 cancelled, 3 the
    server or the connection failed, 4 not built yet (without --watch), 130 Ctrl-C.
    """
    target = resolve_root(root)
    api = connect(ctx, server, token)
    download = Download(api, task_id, target)
    try:
        ready_task(api, task_id, watch)
        sha = download.fetch()
        try:
            manifest = verify_archive(download.part, sha)
        except PullError as exc:
            download.discard()  # it does not check: a fresh download next time
            raise PullFailed(f"{exc}; nothing was unpacked") from None
        try:
            unpacked = unpack_draft(download.part, manifest, target)
        except (PullError, OSError) as exc:  # the checked zip is kept for the next try
            raise PullFailed(
                f"cannot unpack into {target}: {exc}; the checked download is kept, "
                "the same command tries again"
            ) from None
        download.discard()
    except KeyboardInterrupt:
        if download.part.exists():
            said = f"stopped: the part is kept in {download.part}; the same command resumes"
        else:
            said = f"stopped: task {task_id} goes on in the server"
        click.echo(("\n" if sys.stderr.isatty() else "") + said, err=True)
        ctx.exit(INTERRUPTED)
    for media in unpacked.outside:
        click.echo(f"warning: a medium is not inside the draft folder: {media}", err=True)
    click.echo(f"pulled: draft at {unpacked.folder}")
    if register:
        try:
            backup = register_draft(target, unpacked.folder, PLATFORM)
        except NothingToRegister as exc:
            click.echo(f"not registered: {exc}; JianYing lists the draft after a rescan")
        except (PullError, OSError) as exc:
            raise PullFailed(
                f"the draft is at {unpacked.folder} but was not registered: {exc}"
            ) from None
        else:
            click.echo(f"registered in {target / ROOT_META} (the old one is {backup})")
