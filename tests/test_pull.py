"""``draftdl pull``: a real server builds a draft from the real file server; the real CLI (a
``python -m draftdl`` process) downloads, checks and unpacks it into fake JianYing draft
folders laid out as on Windows and on macOS. Resumes are real cuts and kills of the
transfer, counted at the server; zip-slip zips come from a fake server and as files."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import stat
import threading
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from draftcheck import check_draft
from draftdl.api.deps import Services
from draftdl.app import create_app
from draftdl.cli import pull as pull_cli
from draftdl.cli.main import cli
from draftdl.drafts import rootmeta
from draftdl.drafts.package import PLACEHOLDER
from draftdl.drafts.unpack import (
    PullError,
    localize,
    member_parts,
    parse_manifest,
    unpack_draft,
    verify_archive,
)
from draftdl.settings import Settings
from fileserver import FileServer
from servers import Service, free_port, job, load_example, make_settings, until
from test_cli import Cli, draftdl

WINDOWS_ROOT = "AppData/Local/JianyingPro/User Data/Projects/com.lveditor.draft"
MAC_ROOT = "Movies/JianyingPro/User Data/Projects/com.lveditor.draft"
MANIFEST = "draftdl-manifest.json"


# -- a real server whose zip answers are counted, and can be cut or held ------------------


@dataclass
class Recorder:
    """Wraps the app: records every draft.zip request (Range, If-Range, status, bytes
    sent) and can cut the next answer after ``cut_after`` bytes, or hold it there."""

    app: Any
    zips: list[dict[str, Any]] = field(default_factory=list)
    cut_after: int | None = None
    hold_after: int | None = None
    held: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)  # set at the end

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/draft.zip"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        record: dict[str, Any] = {
            "range": headers.get("range"),
            "if_range": headers.get("if-range"),
            "status": None,
            "sent": 0,
        }
        self.zips.append(record)
        cut, hold = self.cut_after, self.hold_after
        self.cut_after = self.hold_after = None
        limit = cut if cut is not None else hold

        async def watched(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
                record["headers"] = {k.decode().lower(): v.decode() for k, v in message["headers"]}
            elif message["type"] == "http.response.body" and limit is not None:
                body = message.get("body", b"")
                if record["sent"] + len(body) >= limit:
                    head = body[: limit - record["sent"]]
                    if head:
                        await send({"type": "http.response.body", "body": head, "more_body": True})
                    record["sent"] = limit
                    if hold is not None:
                        self.held.set()
                        await self.release.wait()  # or until the client is gone
                    raise ConnectionAbortedError("cut by the test")
            if message["type"] == "http.response.body":
                record["sent"] += len(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, watched)


@dataclass
class Server:
    base_url: str
    services: Services
    recorder: Recorder

    async def submit(self, body: dict[str, Any]) -> str:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as http:
            resp = await http.post("/api/tasks/submit", json=body)
        assert resp.status_code == 200, resp.text
        task_id: str = resp.json()["task_id"]
        return task_id

    async def final(self, task_id: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=90) as http:
            resp = await http.get(f"/api/tasks/{task_id}", params={"wait": 30})
        view: dict[str, Any] = resp.json()
        assert view["status"] in ("completed", "failed", "cancelled"), view
        return view

    async def zip_bytes(self, task_id: str) -> tuple[bytes, httpx.Headers]:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as http:
            resp = await http.get(f"/api/tasks/{task_id}/draft.zip")
        assert resp.status_code == 200, resp.text
        return resp.content, resp.headers


@contextlib.asynccontextmanager
async def recording_server(settings: Settings) -> AsyncIterator[Server]:
    import uvicorn

    port = free_port()
    app = create_app(settings)
    recorder = Recorder(app)
    config = uvicorn.Config(
        recorder, host="127.0.0.1", port=port, log_level="critical", lifespan="on"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started or serving.done(), 20)
        assert server.started, "uvicorn did not start"
        yield Server(f"http://127.0.0.1:{port}", app.state.services, recorder)
    finally:
        recorder.release.set()
        server.should_exit = True
        await asyncio.wait_for(serving, 20)


@pytest.fixture
async def server(data_dir: Path) -> AsyncIterator[Server]:
    async with recording_server(make_settings(data_dir)) as live:
        yield live


async def built_draft(server: Server, fileserver: FileServer) -> tuple[str, Path]:
    task_id = await server.submit(load_example("basic-draft.json", fileserver.base_url))
    task = await server.final(task_id)
    assert task["status"] == "completed", task
    return task_id, Path(task["draft_path"])


# -- fake JianYing draft folders -------------------------------------------------------------


def jianying_entry(root: Path, name: str, draft_id: str) -> dict[str, Any]:
    """An entry as JianYing writes it (its keys, in its order)."""
    fold = root / name
    return {
        "cloud_draft_cover": False,
        "cloud_draft_sync": False,
        "draft_cloud_last_action_download": False,
        "draft_cloud_purchase_info": "",
        "draft_cloud_template_id": "",
        "draft_cloud_tutorial_info": "",
        "draft_cloud_videocut_purchase_info": "",
        "draft_cover": str(fold / "draft_cover.jpg"),
        "draft_fold_path": str(fold),
        "draft_id": draft_id,
        "draft_is_ai_shorts": False,
        "draft_is_invisible": False,
        "draft_json_file": str(fold / "draft_content.json"),
        "draft_name": name,
        "draft_new_version": "",
        "draft_root_path": str(root),
        "draft_timeline_materials_size": 123456,
        "draft_type": "",
        "tm_draft_cloud_completed": "",
        "tm_draft_cloud_modified": 0,
        "tm_draft_create": 1700000000000000,
        "tm_draft_modified": 1700000001000000,
        "tm_draft_removed": 0,
        "tm_duration": 5000000,
        "some_future_flag": True,  # a key this draftdl does not know
    }


def jianying_root(base: Path, layout: str) -> Path:
    """A JianYing draft folder with two drafts of the user's and their list, written
    compact as JianYing writes it; the macOS one also has its recycle bin."""
    root = base / layout
    for name in ("7月1日", "Old draft"):
        (root / name).mkdir(parents=True)
        (root / name / "draft_content.json").write_text("{}", encoding="utf-8")
    if layout == MAC_ROOT:
        (root / ".recycle_bin").mkdir()
    data = {
        "all_draft_store": [
            jianying_entry(root, "7月1日", "0A1B2C3D-0000-4000-8000-000000000001"),
            jianying_entry(root, "Old draft", "0A1B2C3D-0000-4000-8000-000000000002"),
        ],
        "draft_ids": 2,
        "root_path": str(root),
    }
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    (root / "root_meta_info.json").write_text(text, encoding="utf-8")
    return root


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def leftovers(root: Path) -> list[str]:
    """Anything pull leaves in the root besides drafts: parts, states, staging folders."""
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".draftdl"))


def pulled_folder(out: str) -> Path:
    lines = [line for line in out.splitlines() if line.startswith("pulled: draft at ")]
    assert len(lines) == 1, out
    return Path(lines[0].removeprefix("pulled: draft at "))


def check_pulled(folder: Path, root: Path, server_draft: Path) -> None:
    """The fidelity checklist (media absolute, existing, in the folder's assets), the same
    media bytes as the server's, nothing of ours left inside."""
    draft = check_draft(folder, root)
    paths = draft.paths()
    assert len(paths) == 3  # the clip, the still (a video material) and the tone
    for media in [
        *paths,
        *(
            e["file_Path"]
            for g in draft.meta["draft_materials"]
            if g["type"] == 0
            for e in g["value"]
        ),
    ]:
        path = Path(media)
        assert path.is_absolute() and path.is_file() and path.parent == folder / "assets"
    assert sorted(p.name for p in (folder / "assets").iterdir()) == sorted(
        p.name for p in (server_draft / "assets").iterdir()
    )
    for asset in (server_draft / "assets").iterdir():
        assert (folder / "assets" / asset.name).read_bytes() == asset.read_bytes()
    assert not (folder / MANIFEST).exists()
    text = (folder / "draft_content.json").read_text(encoding="utf-8")
    assert "##_draftpath_placeholder_" not in text and str(server_draft) not in text


# -- the server: one zip, the same bytes, its digest, ranges --------------------------------


async def test_zip_is_stable_carries_its_digests_and_serves_ranges(
    service: Service, fileserver: FileServer
) -> None:
    task_id = await service.submit(load_example("basic-draft.json", fileserver.base_url))
    task = await service.wait_final(task_id)
    folder = Path(task["draft_path"])
    url = f"/api/tasks/{task_id}/draft.zip"
    first = await service.http.get(url)
    await asyncio.sleep(2.1)  # a zip's times have 2 s steps: "now" would differ by now
    second = await service.http.get(url)
    assert first.status_code == second.status_code == 200
    body = first.content
    assert second.content == body  # built again, the same bytes
    digest = hashlib.sha256(body).hexdigest()
    assert first.headers["etag"] == second.headers["etag"] == f'"{digest}"'
    b64 = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert first.headers["repr-digest"] == f"sha-256=:{b64}:"
    assert first.headers["accept-ranges"] == "bytes"
    etag = first.headers["etag"]

    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = archive.namelist()
        assert names[-1] == f"{folder.name}/{MANIFEST}"
        manifest = json.loads(archive.read(names[-1]))
        assert [f["path"] for f in manifest["files"]] == names[:-1] == sorted(names[:-1])
        for item in manifest["files"]:
            data = archive.read(item["path"])
            assert (len(data), hashlib.sha256(data).hexdigest()) == (item["size"], item["sha256"])
        assert {i.date_time for i in archive.infolist()} == {archive.infolist()[0].date_time}
    assert manifest["folder"] == folder.name and manifest["root"] is None
    # The one constant placeholder JianYing and CapCut write, whatever the draft's id.
    assert manifest["placeholder"] == PLACEHOLDER
    assert {f"{folder.name}/assets/{p.name}" for p in (folder / "assets").iterdir()} <= set(names)

    size = len(body)
    for headers, status, start, end in (
        ({"Range": "bytes=1000-", "If-Range": etag}, 206, 1000, size),
        ({"Range": "bytes=10-19"}, 206, 10, 20),
        ({"Range": "bytes=-100"}, 206, size - 100, size),
        ({"Range": f"bytes={size - 1}-{size + 50}"}, 206, size - 1, size),
    ):
        resp = await service.http.get(url, headers=headers)
        assert resp.status_code == status, (headers, resp.text)
        assert resp.content == body[start:end]
        assert resp.headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
        assert resp.headers["repr-digest"] == f"sha-256=:{b64}:"  # of the whole zip
        assert resp.headers["etag"] == etag
    for headers in (
        {"Range": "bytes=1000-", "If-Range": '"another zip"'},  # changed: the whole zip
        {"Range": "bytes=1000-", "If-Range": f"W/{etag}"},  # weak: never for ranges
        {"Range": "bytes=0-1,5-9"},  # several ranges: the whole zip
        {"Range": "bytes=20-10"},  # not a range: ignored
        {"Range": "pages=1-"},
    ):
        resp = await service.http.get(url, headers=headers)
        assert (resp.status_code, resp.content) == (200, body), headers
    resp = await service.http.get(url, headers={"Range": f"bytes={size}-", "If-Range": etag})
    assert resp.status_code == 416
    assert resp.headers["content-range"] == f"bytes */{size}"
    assert resp.json()["message"] == f"the range starts past the end of the zip ({size} bytes)"
    # With a root the paths differ, so the zip (and its digest) do too; still stable.
    rooted = [(await service.http.get(url, params={"root": "D:\\drafts"})) for _ in range(2)]
    assert rooted[0].content == rooted[1].content != body
    assert rooted[0].headers["etag"] != etag
    assert not list((service.services.settings.data_dir / "tmp").iterdir())


# -- pulling into JianYing's folders ---------------------------------------------------------


@pytest.mark.parametrize("layout", [WINDOWS_ROOT, MAC_ROOT], ids=["windows", "macos"])
async def test_pull_twice_into_a_jianying_folder(
    server: Server, fileserver: FileServer, tmp_path: Path, layout: str
) -> None:
    task_id, draft = await built_draft(server, fileserver)
    root = jianying_root(tmp_path / "home", layout)
    index_before = (root / "root_meta_info.json").read_bytes()
    others = {name: snapshot(root / name) for name in ("7月1日", "Old draft")}

    code, out = await draftdl("pull", task_id, "--root", str(root), server=server.base_url)
    assert code == 0, out
    first = pulled_folder(out)
    assert first == root / draft.name
    check_pulled(first, root, draft)
    mine = snapshot(first)

    code, out = await draftdl("pull", task_id, "--root", str(root), server=server.base_url)
    assert code == 0, out
    second = pulled_folder(out)
    assert second == root / f"{draft.name} (2)"
    check_pulled(second, root, draft)
    assert snapshot(first) == mine  # the first is untouched
    meta = [json.loads((f / "draft_meta_info.json").read_text()) for f in (first, second)]
    assert meta[0]["draft_id"] != meta[1]["draft_id"]
    assert meta[1]["draft_fold_path"] == str(second) and meta[1]["draft_name"] == second.name

    assert {name: snapshot(root / name) for name in others} == others
    assert (root / "root_meta_info.json").read_bytes() == index_before  # no --register
    assert leftovers(root) == []
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == sorted(
        ["7月1日", "Old draft", "root_meta_info.json", first.name, second.name]
    )
    assert [z["range"] for z in server.recorder.zips] == [None, None]


@pytest.mark.parametrize("platform", ["win32", "darwin"])
async def test_pull_finds_jianyings_folder_as_the_server_does(
    server: Server,
    fileserver: FileServer,
    tmp_path: Path,
    platform: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No --root: the folder JianYing uses, found in the layout of Windows (under
    LOCALAPPDATA) or macOS (under the home folder)."""
    task_id, draft = await built_draft(server, fileserver)
    home = tmp_path / "home"
    root = jianying_root(home, WINDOWS_ROOT if platform == "win32" else MAC_ROOT)
    monkeypatch.setattr(pull_cli, "PLATFORM", platform)
    env = {"HOME": str(home), "LOCALAPPDATA": str(home / "AppData" / "Local")}
    args = ["pull", task_id, "--server", server.base_url]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
    assert result.exit_code == 0, result.output
    check_pulled(pulled_folder(result.output), root, draft)


def test_detection_looks_where_jianying_keeps_its_drafts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"LOCALAPPDATA": str(home / "AppData" / "Local")}
    assert pull_cli.detect_root("darwin", env, home) == (None, [home / MAC_ROOT])
    win = jianying_root(home, WINDOWS_ROOT)
    assert pull_cli.detect_root("win32", env, home) == (win, [win])
    mac = jianying_root(home, MAC_ROOT)
    assert pull_cli.detect_root("darwin", {}, home) == (mac, [mac])
    # The custom folder JianYing records wins, as on the server.
    custom = tmp_path / "D" / "JianyingPro Drafts"
    custom.mkdir(parents=True)
    (custom / ".recycle_bin").mkdir()
    config = home / "AppData/Local/JianyingPro/User Data/Config"
    config.mkdir(parents=True)
    (config / "globalSetting").write_text(f"[General]\ncurrentCustomDraftPath={custom}\n")
    assert pull_cli.detect_root("win32", env, home)[0] == custom
    assert pull_cli.detect_root("linux", env, home) == (None, [])


async def test_without_a_folder_to_pull_into_nothing_is_asked(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    env = {"HOME": str(tmp_path)}
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["pull", "t", "--server", nobody], env=env
    )
    assert result.exit_code == 1
    assert "no JianYing draft folder found on this machine" in result.output
    assert "give it with --root DIR" in result.output
    code, out = await draftdl("pull", "t", "--root", str(tmp_path / "nope"), server=nobody)
    assert (code, out.strip()) == (1, f"Error: --root {tmp_path / 'nope'} is not a folder")
    code, out = await draftdl("pull", "t", "--root", str(tmp_path), server=nobody)
    assert code == 3 and out.strip().endswith(
        f"cannot reach draftdl at {nobody} (is `draftdl serve` running?)"
    )
    assert list(tmp_path.iterdir()) == []


# -- resuming, verifying ---------------------------------------------------------------------


async def test_a_cut_download_resumes_with_one_range_request(
    server: Server, fileserver: FileServer, tmp_path: Path
) -> None:
    task_id, draft = await built_draft(server, fileserver)
    root = jianying_root(tmp_path, WINDOWS_ROOT)
    server.recorder.cut_after = 20_000
    code, out = await draftdl("pull", task_id, "--root", str(root), server=server.base_url)
    assert code == 0, out
    assert "the download was cut at 19.5 KiB of" in out and "; resuming" in out
    check_pulled(pulled_folder(out), root, draft)
    full, cut = server.recorder.zips
    assert (full["range"], full["status"], full["sent"]) == (None, 200, 20_000)
    etag = full["headers"]["etag"]
    assert (cut["range"], cut["if_range"], cut["status"]) == ("bytes=20000-", etag, 206)
    size = int(full["headers"]["content-length"])
    assert cut["sent"] == size - 20_000
    assert leftovers(root) == []


async def killed_pull(server: Server, task_id: str, root: Path, at: int) -> Path:
    """A pull killed (SIGKILL) while the server holds its zip after ``at`` bytes: its part
    file is left, ``at`` bytes long."""
    server.recorder.hold_after = at
    cli = await Cli.start("pull", task_id, "--root", str(root), server=server.base_url)
    await asyncio.wait_for(server.recorder.held.wait(), 30)

    def parts() -> list[Path]:
        return [p for p in root.glob(".draftdl-pull-*.zip.part") if p.stat().st_size == at]

    await until(lambda: len(parts()) == 1, 10)
    (part,) = parts()
    cli.proc.kill()
    await cli.finish()
    server.recorder.held.clear()
    assert [p.name for p in root.iterdir() if p.name.startswith("Basic")] == []
    return part


async def test_a_killed_pull_resumes_from_its_part_file(
    server: Server, fileserver: FileServer, tmp_path: Path
) -> None:
    task_id, draft = await built_draft(server, fileserver)
    root = jianying_root(tmp_path, MAC_ROOT)
    part = await killed_pull(server, task_id, root, 30_000)
    assert part.stat().st_size == 30_000
    etag = server.recorder.zips[0]["headers"]["etag"]
    server.recorder.zips.clear()

    code, out = await draftdl("pull", task_id, "--root", str(root), server=server.base_url)
    assert code == 0, out
    assert "resuming the draft zip at 29.3 KiB of " in out
    check_pulled(pulled_folder(out), root, draft)
    (resumed,) = server.recorder.zips  # exactly one request, for the rest
    assert (resumed["range"], resumed["if_range"], resumed["status"]) == (
        "bytes=30000-",
        etag,
        206,
    )
    assert leftovers(root) == []


async def test_a_corrupt_part_fails_the_check_and_unpacks_nothing(
    server: Server, fileserver: FileServer, tmp_path: Path
) -> None:
    task_id, draft = await built_draft(server, fileserver)
    root = jianying_root(tmp_path, WINDOWS_ROOT)
    body, headers = await server.zip_bytes(task_id)
    part = await killed_pull(server, task_id, root, 30_000)
    data = bytearray(part.read_bytes())
    data[12_345] ^= 0xFF  # one byte of the first part went bad on disk
    part.write_bytes(bytes(data))
    before = sorted(p.name for p in root.iterdir())

    code, out = await draftdl("pull", task_id, "--root", str(root), server=server.base_url)
    assert code == 1, out
    expected = headers["etag"].strip('"')
    assert out.strip().splitlines()[-1] == (
        f"Error: the download does not match the server's SHA-256 (expected {expected}, "
        f"got {hashlib.sha256(bytes(data[:30_000]) + body[30_000:]).hexdigest()}); "
        "nothing was unpacked"
    )
    assert sorted(p.name for p in root.iterdir()) == [
        n for n in before if not n.startswith(".draftdl")
    ]  # no draft, and the bad part is gone (with its state): the next pull starts afresh
    server.recorder.zips.clear()
    code, out = await draftdl("pull", task_id, "--root", str(root), server=server.base_url)
    assert code == 0, out
    check_pulled(pulled_folder(out), root, draft)
    assert [z["range"] for z in server.recorder.zips] == [None]


# -- hostile zips ----------------------------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


META = json.dumps({"draft_id": "X", "draft_materials": []}).encode()


def write_zip(
    path: Path,
    members: list[tuple[str, bytes]],
    folder: str = "D",
    symlinks: tuple[str, ...] = (),
    listed: list[dict[str, Any]] | None = None,
) -> str:
    """A zip made to look like a draftdl one: the members, and a manifest listing them
    (or ``listed``) with their true sizes and hashes."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name)
            if name in symlinks:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, data)
        files = listed or [{"path": n, "size": len(d), "sha256": sha(d)} for n, d in members]
        manifest = {
            "format": 1,
            "folder": folder,
            "draft_id": "X",
            "placeholder": "##_draftpath_placeholder_X_##",
            "root": None,
            "files": files,
        }
        archive.writestr(f"{folder}/{MANIFEST}", json.dumps(manifest))
    return sha(path.read_bytes())


GOOD = [("D/draft_meta_info.json", META), ("D/draft_content.json", b"{}")]


@pytest.mark.parametrize(
    ("member", "why"),
    [
        ("D/../../evil.txt", "climbs out of its folder"),
        ("../evil.txt", "climbs out of its folder"),
        ("/etc/evil.txt", "is an absolute path"),
        ("C:/Windows/evil.txt", "names a drive"),
        ("C:evil.txt", "names a drive"),
        ("D\\..\\..\\evil.txt", "holds a backslash"),
        ("D/assets//evil.txt", "has an empty part"),
        ("D/./evil.txt", "has an empty part"),
        ("D/assets/evil\x07.txt", "holds a control character"),
    ],
)
def test_zip_slip_members_are_refused(tmp_path: Path, member: str, why: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    path = tmp_path / "evil.zip"
    digest = write_zip(path, [*GOOD, (member, b"owned")])
    with pytest.raises(PullError) as info:
        verify_archive(path, digest)
    assert str(info.value) == f"refused: the zip's member {member!r} {why}"
    # Even a manifest that passed no check never writes outside: unpack checks again.
    manifest = parse_manifest(
        json.dumps(
            {
                "format": 1,
                "folder": "D",
                "draft_id": "X",
                "placeholder": "P",
                "root": None,
                "files": [{"path": member, "size": 5, "sha256": sha(b"owned")}],
            }
        ).encode()
    )
    with pytest.raises(PullError, match="refused"):
        unpack_draft(path, manifest, root)
    assert list(root.iterdir()) == []
    assert not any(p.name == "evil.txt" for p in tmp_path.rglob("*"))


@pytest.mark.parametrize(
    ("members", "symlinks", "message"),
    [
        (
            [*GOOD, ("D/assets/link.mp4", b"/etc/passwd")],
            ("D/assets/link.mp4",),
            "refused: the zip's member 'D/assets/link.mp4' is a symlink",
        ),
        (
            [*GOOD, ("other/evil.txt", b"x")],
            (),
            "refused: the zip's member 'other/evil.txt' is outside 'D'/",
        ),
        (
            [*GOOD, ("D/assets/A.mp4", b"1"), ("D/assets/a.mp4", b"2")],
            (),
            "refused: the zip holds 'D/assets/A.mp4' and 'D/assets/a.mp4', one file on this system",
        ),
    ],
)
def test_links_strays_and_twins_are_refused(
    tmp_path: Path, members: list[tuple[str, bytes]], symlinks: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "evil.zip"
    digest = write_zip(path, members, symlinks=symlinks)
    with pytest.raises(PullError) as info:
        verify_archive(path, digest)
    assert str(info.value) == message


def test_members_must_match_the_manifest(tmp_path: Path) -> None:
    path = tmp_path / "z.zip"
    members = [*GOOD, ("D/assets/clip.mp4", b"the clip")]
    files = [{"path": n, "size": len(d), "sha256": sha(d)} for n, d in members]
    cases = [
        (files[:2], "refused: the zip's member 'D/assets/clip.mp4' is not in its manifest"),
        (
            [*files, {"path": "D/assets/more.mp4", "size": 1, "sha256": sha(b"x")}],
            "the zip lacks 'D/assets/more.mp4', which its manifest lists",
        ),
        (
            [*files[:2], {**files[2], "sha256": sha(b"another clip")}],
            "the zip's member 'D/assets/clip.mp4' does not match its SHA-256",
        ),
        (
            [*files[:2], {**files[2], "size": 3}],
            "the zip's member 'D/assets/clip.mp4' holds more bytes, the manifest says 3",
        ),
    ]
    for listed, message in cases:
        digest = write_zip(path, members, listed=listed)
        with pytest.raises(PullError) as info:
            verify_archive(path, digest)
        assert str(info.value) == message
    digest = write_zip(path, members)
    assert [m.path for m in verify_archive(path, digest).files] == [n for n, _ in members]
    with pytest.raises(PullError, match="does not match the server's SHA-256"):
        verify_archive(path, sha(b"another zip"))


def test_names_windows_cannot_hold_are_refused_there() -> None:
    for name, why in (
        ("D/assets/aux.mp4", "is a Windows device name"),
        ("D/assets/a:b.mp4", "is not a name Windows can hold"),  # an alternate data stream
        ("D/assets/clip.mp4.", "is not a name Windows can hold"),
    ):
        with pytest.raises(PullError) as info:
            member_parts(name, windows=True)
        assert str(info.value) == f"refused: the zip's member {name!r} {why}"
        assert member_parts(name, windows=False) == tuple(name.split("/"))


class EvilServer(ThreadingHTTPServer):
    """Says the task is completed and serves a zip-slip zip with its true digests."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        super().__init__(("127.0.0.1", 0), EvilHandler)


class EvilHandler(BaseHTTPRequestHandler):
    server: EvilServer

    def do_GET(self) -> None:
        if self.path.split("?")[0].endswith("/draft.zip"):
            body = self.server.body
            digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
            headers = {
                "Content-Type": "application/zip",
                "ETag": f'"{sha(body)}"',
                "Repr-Digest": f"sha-256=:{digest}:",
            }
        else:
            body = json.dumps({"status": "completed", "progress": {}}).encode()
            headers = {"Content-Type": "application/json"}
        self.send_response(200)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def evil_server(body: bytes) -> Iterator[str]:
    httpd = EvilServer(body)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


async def test_the_cli_refuses_a_zip_slip_zip_and_leaves_nothing(tmp_path: Path) -> None:
    root = jianying_root(tmp_path / "home", WINDOWS_ROOT)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    path = tmp_path / "evil.zip"
    write_zip(path, [*GOOD, ("D/../../../evil.txt", b"owned")])
    with evil_server(path.read_bytes()) as url:
        code, out = await draftdl("pull", "t", "--root", str(root), server=url)
    assert code == 1, out
    assert out.strip().splitlines()[-1] == (
        "Error: refused: the zip's member 'D/../../../evil.txt' climbs out of its folder; "
        "nothing was unpacked"
    )
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    assert not any(p.name == "evil.txt" for p in tmp_path.rglob("*"))


# -- paths written for this machine ----------------------------------------------------------


def test_paths_are_written_as_the_machine_writes_them() -> None:
    ph = "##_draftpath_placeholder_X_##"
    win = PureWindowsPath(
        "C:/Users/me/AppData/Local/JianyingPro/User Data/Projects/com.lveditor.draft/Basic (2)"
    )
    mac = PurePosixPath("/Users/me/Movies/JianyingPro/User Data/Projects/com.lveditor.draft/B")
    data = {"materials": {"videos": [{"path": f"{ph}/assets/clip.mp4"}]}, "other": [ph, "x"]}
    assert localize(data, ph, win) == {
        "materials": {"videos": [{"path": f"{win}\\assets\\clip.mp4"}]},
        "other": [str(win), "x"],
    }
    assert localize(data, ph, win)["materials"]["videos"][0]["path"].startswith(
        "C:\\Users\\me\\AppData\\Local\\JianyingPro\\User Data\\"
    )
    assert localize(data, ph, mac)["materials"]["videos"][0]["path"] == f"{mac}/assets/clip.mp4"
    assert localize(f"{ph}x/assets/a", ph, mac) == f"{ph}x/assets/a"  # another draft's


# -- --register ------------------------------------------------------------------------------


async def test_register_adds_one_entry_and_keeps_the_rest(
    server: Server, fileserver: FileServer, tmp_path: Path
) -> None:
    task_id, _ = await built_draft(server, fileserver)
    root = jianying_root(tmp_path / "home", WINDOWS_ROOT)
    index = root / "root_meta_info.json"
    original = index.read_bytes()
    code, out = await draftdl(
        "pull", task_id, "--root", str(root), "--register", server=server.base_url
    )
    assert code == 0, out
    folder = pulled_folder(out)
    assert out.strip().splitlines()[-1] == (
        f"registered in {index} (the old one is {root / 'root_meta_info.json.bak'})"
    )
    assert (root / "root_meta_info.json.bak").read_bytes() == original
    before, after = json.loads(original), json.loads(index.read_bytes())
    assert list(after) == list(before)  # every key, in its order
    assert after["root_path"] == before["root_path"] and after["draft_ids"] == 3
    assert after["all_draft_store"][:2] == before["all_draft_store"]
    (entry,) = after["all_draft_store"][2:]
    meta = json.loads((folder / "draft_meta_info.json").read_text())
    assert list(entry) == [
        *before["all_draft_store"][0],
        *[k for k in entry if k not in before["all_draft_store"][0]],
    ]  # the shape JianYing's entries have, then what they lack
    assert entry["draft_fold_path"] == str(folder) and entry["draft_name"] == folder.name
    assert entry["draft_root_path"] == str(root) and entry["draft_id"] == meta["draft_id"]
    assert entry["draft_json_file"] == str(folder / "draft_content.json")
    assert entry["tm_draft_create"] == meta["tm_draft_create"]
    assert entry["tm_duration"] == meta["tm_duration"] > 0
    assert entry["some_future_flag"] is False and entry["draft_cover"] == ""
    assert entry["draft_timeline_materials_size"] == sum(
        p.stat().st_size for p in (folder / "assets").iterdir()
    )
    assert b"\n" not in index.read_bytes()  # compact, as JianYing writes it
    assert "7月1日".encode() in index.read_bytes()  # UTF-8, not \\u escapes
    assert leftovers(root) == []
    assert not list(root.glob("root_meta_info.json.draftdl*"))

    # A second one: one more entry; the backup is the file just before it.
    second_before = index.read_bytes()
    code, out = await draftdl(
        "pull", task_id, "--root", str(root), "--register", server=server.base_url
    )
    assert code == 0, out
    assert (root / "root_meta_info.json.bak").read_bytes() == second_before
    store = json.loads(index.read_bytes())["all_draft_store"]
    assert [e["draft_name"] for e in store] == [
        "7月1日",
        "Old draft",
        folder.name,
        f"{folder.name} (2)",
    ]


async def test_register_never_makes_or_breaks_the_list(
    server: Server, fileserver: FileServer, tmp_path: Path
) -> None:
    task_id, _ = await built_draft(server, fileserver)
    bare = tmp_path / "bare"  # JianYing never listed it: no list is made
    bare.mkdir()
    code, out = await draftdl(
        "pull", task_id, "--root", str(bare), "--register", server=server.base_url
    )
    assert code == 0, out
    assert out.strip().splitlines()[-1] == (
        f"not registered: {bare / 'root_meta_info.json'} does not exist; JianYing lists the "
        "draft after a rescan"
    )
    assert not (bare / "root_meta_info.json").exists()
    broken = jianying_root(tmp_path / "home", MAC_ROOT)
    (broken / "root_meta_info.json").write_text('{"all_draft_store": [', encoding="utf-8")
    code, out = await draftdl(
        "pull", task_id, "--root", str(broken), "--register", server=server.base_url
    )
    assert code == 1, out
    folder = pulled_folder(out)
    assert folder.is_dir()
    assert (
        out.strip()
        .splitlines()[-1]
        .startswith(
            f"Error: the draft is at {folder} but was not registered: "
            f"{broken / 'root_meta_info.json'} is not JSON, left as it is"
        )
    )
    assert (broken / "root_meta_info.json").read_text() == '{"all_draft_store": ['
    assert not (broken / "root_meta_info.json.bak").exists()


def test_entries_take_the_path_style_jianying_uses(tmp_path: Path) -> None:
    assert rootmeta.styled("C:\\a\\b", "D:/x/y") == "C:/a/b"
    assert rootmeta.styled("C:\\a\\b", "D:\\x\\y") == "C:\\a\\b"
    assert rootmeta.styled("C:/a/b", "D:\\x") == "C:\\a\\b"
    assert rootmeta.styled("/Users/me/b", "D:\\x") == "/Users/me/b"  # not a Windows path
    assert rootmeta.styled("C:\\a", None) == "C:\\a"
    # An indented list stays indented, with a byte-order mark if it had one.
    root = tmp_path
    (root / "D" / "assets").mkdir(parents=True)
    (root / "D" / "draft_meta_info.json").write_text(json.dumps({"draft_id": "ID"}))
    (root / "D" / "draft_content.json").write_text("{}")
    text = json.dumps({"all_draft_store": [], "draft_ids": 0}, indent=2) + "\n"
    (root / "root_meta_info.json").write_bytes(b"\xef\xbb\xbf" + text.encode())
    rootmeta.register_draft(root, root / "D", "darwin")
    raw = (root / "root_meta_info.json").read_bytes()
    assert raw.startswith(b'\xef\xbb\xbf{\n  "all_draft_store": [\n    {\n') and raw.endswith(
        b"}\n"
    )
    (entry,) = json.loads(raw[3:])["all_draft_store"]
    assert entry["draft_json_file"] == str(root / "D" / "draft_content.json")  # no draft_info
    assert entry["draft_id"] == "ID" and list(entry) == sorted(entry)


# -- --watch ---------------------------------------------------------------------------------


async def test_watch_waits_for_a_running_task_then_pulls(
    server: Server, fileserver: FileServer, tmp_path: Path
) -> None:
    body = load_example("basic-draft.json", fileserver.base_url)
    body["materials"].append(
        {"id": "m_slow", "type": "video", "path": fileserver.url("/slow/1M/extra.bin?rate=256K")}
    )
    body["ruleGroup"]["rules"].append({"type": "extra", "material_ids": ["m_slow"]})
    task_id = await server.submit(body)
    root = jianying_root(tmp_path, WINDOWS_ROOT)
    code, out = await draftdl("pull", task_id, "--root", str(root), server=server.base_url)
    assert code == 4, out
    assert out.strip().endswith("its draft is not built yet (--watch waits for it)")
    assert server.recorder.zips == []

    code, out = await draftdl(
        "pull", task_id, "--root", str(root), "--watch", server=server.base_url
    )
    assert code == 0, out
    lines = out.strip().splitlines()
    assert lines[0].startswith(f"waiting for task {task_id}: ")
    task = await server.final(task_id)
    check_pulled(pulled_folder(out), root, Path(task["draft_path"]))
    assert len(server.recorder.zips) == 1


async def test_watch_on_a_failing_task_gives_the_servers_reason(
    server: Server, fileserver: FileServer, tmp_path: Path
) -> None:
    task_id = await server.submit(job([fileserver.url("/status/404/gone.mp4")]))
    root = jianying_root(tmp_path, MAC_ROOT)
    code, out = await draftdl(
        "pull", task_id, "--root", str(root), "--watch", server=server.base_url
    )
    task = await server.final(task_id)
    assert code == 1, out
    assert out.strip().splitlines()[-1] == f"Error: task {task_id} failed: {task['error_message']}"
    assert "not found (HTTP 404)" in task["error_message"]
    assert server.recorder.zips == [] and leftovers(root) == []


async def test_pull_takes_the_token(data_dir: Path, fileserver: FileServer, tmp_path: Path) -> None:
    async with recording_server(make_settings(data_dir, api_token="s3cret")) as live:
        root = tmp_path / "drafts"
        root.mkdir()
        code, out = await draftdl("pull", "nope", "--root", str(root), server=live.base_url)
        assert code == 3 and out.strip().startswith("Error: 401: "), out
        code, out = await draftdl(
            "pull", "nope", "--root", str(root), "--token", "s3cret", server=live.base_url
        )
        assert code == 3 and out.strip().startswith("Error: 404: "), out
        assert list(root.iterdir()) == []
