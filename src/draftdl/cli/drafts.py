"""``draftdl zip``: a task's draft as a zip, for a JianYing on another machine."""

from __future__ import annotations

import contextlib
import email.message
import os
from collections.abc import Iterator
from pathlib import Path

import click

from draftdl.cli.options import connect, server_options
from draftdl.units import human_size

CHUNK = 1024 * 1024


def attachment_name(header: str | None) -> str | None:
    """The file name a Content-Disposition offers (``filename*=utf-8''…`` too), reduced to
    a bare name: a server never chooses where the file goes."""
    if not header:
        return None
    message = email.message.Message()
    message["content-disposition"] = header
    name = message.get_filename()
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return None if name in ("", ".", "..") else name


@click.command("zip")
@click.argument("task_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="The file to write, or a folder to write it in "
    "(default: the draft folder's name .zip, here).",
)
@click.option(
    "--root",
    metavar="DIR",
    help="The JianYing draft folder of the machine that opens it: media paths become "
    "absolute paths under it (default: JianYing's relative form).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@server_options
@click.pass_context
def zip_cmd(
    ctx: click.Context,
    task_id: str,
    output: Path | None,
    root: str | None,
    force: bool,
    server: str,
    token: str | None,
) -> None:
    """Download a task's draft, with its media, as a zip.

    Unpack it into the JianYing draft folder of the machine that opens it. An existing
    file is never overwritten without --force.
    """
    if output is not None and not output.is_dir():
        _refuse_existing(output, force)  # before the server builds the zip
    api = connect(ctx, server, token)
    params = {"root": root} if root else {}
    with api.stream(f"/api/tasks/{task_id}/draft.zip", params=params) as resp:
        name = attachment_name(resp.headers.get("content-disposition")) or f"{task_id}.zip"
        if output is None:
            target = Path(name)
        elif output.is_dir():
            target = output / name
        else:
            target = output
        _refuse_existing(target, force)
        written = _save(resp.iter_bytes(CHUNK), target, force)
    click.echo(f"wrote {target} ({human_size(written)})")


def _refuse_existing(target: Path, force: bool) -> None:
    if not force and target.exists():
        raise click.ClickException(f"{target} exists (--force overwrites it)")


def _save(chunks: Iterator[bytes], target: Path, force: bool) -> int:
    """Streams to ``target``; nothing is left of a download cut short, and without ``force``
    an existing file is never touched (exclusive creation), with it only replaced whole."""
    path = target.with_name(f".{target.name}.part") if force else target
    written = 0
    try:
        with open(path, "wb" if force else "xb") as out:
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
        if force:
            os.replace(path, target)
    except FileExistsError:
        raise click.ClickException(f"{target} exists (--force overwrites it)") from None
    except OSError as exc:
        with contextlib.suppress(OSError):
            path.unlink()
        raise click.ClickException(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    return written
