"""Hostile jobs against the real service (uvicorn on a loopback port, real aria2c, real file
server, real SQLite).

Every case ends one of two ways: a 4xx whose ``detail[].path`` names the field (``body`` for a
body that is not a JSON object at all) and nothing stored, or an accepted task that ends with a
clear reason: completed, with its files byte-identical inside ``downloads/<task_id>/`` under
safe names, or failed with a message naming the URL and why. Around every test the file
system is watched: nothing may appear or change outside the data folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import unicodedata
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest

from draftcheck import check_draft
from fileserver import DEFAULT_MEDIA_DIR, FileServer, content_for
from servers import FINAL, Service, free_port, job, load_example, make_settings, until

pytestmark = pytest.mark.timeout(90)

MARK = "hxq"  # in every name a case makes up, so a stray copy anywhere is easy to spot
RESERVED = {
    "con", "prn", "aux", "nul",
    *(f"com{i}" for i in range(1, 10)),
    *(f"lpt{i}" for i in range(1, 10)),
}  # fmt: skip
# Names a hostile case could leave behind if a path escaped: none may appear outside data/.
TELLTALE = ("passwd", "win.ini", "cron", MARK)
WATCHED_FILES = ("/etc/passwd", "/etc/group", "/etc/hosts", "/etc/hostname", "/etc/crontab")
WATCHED_DIRS = ("/", "/tmp", "/var/tmp", "/etc", "/etc/cron.d", "/root")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# -- the file system around a test -----------------------------------------------------------


def _tree(root: Path, skip: Path) -> dict[str, tuple[bool, int, int]]:
    """Every path under ``root`` but ``skip``: (is a folder, mtime, size)."""
    out: dict[str, tuple[bool, int, int]] = {}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if here / d != skip]
        for name in [*dirs, *files]:
            path = here / name
            with contextlib.suppress(FileNotFoundError):
                st = path.lstat()
                out[str(path)] = (path.is_dir(), st.st_mtime_ns, st.st_size)
        with contextlib.suppress(FileNotFoundError):
            st = here.lstat()
            out[str(here)] = (True, st.st_mtime_ns, st.st_size)
    return out


def _listing(folder: str) -> set[str]:
    try:
        return set(os.listdir(folder))
    except OSError:
        return set()


def _digest(path: str) -> tuple[int, int, str] | None:
    try:
        st = os.stat(path)
        return st.st_mtime_ns, st.st_size, hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


@dataclasses.dataclass
class Snapshot:
    """What a test must not change. Strictly: the test's own temp folder but the data folder
    (a name escaping ``downloads/<task_id>/`` by three levels lands there) and the session's
    temp folder, where only the next test adds a folder. A few system files, bytes and mtime.
    Shared folders that other programs write to as well (/tmp, /, the home and working
    folders, pytest's folder of sessions): only names a hostile case could produce count."""

    tree: dict[str, tuple[bool, int, int]]
    session: set[str]
    files: dict[str, tuple[int, int, str] | None]
    listings: dict[str, set[str]]

    @classmethod
    def take(cls, own: Path, data_dir: Path) -> Snapshot:
        shared = (*WATCHED_DIRS, str(Path.cwd()), str(Path.home()), str(own.parent.parent))
        return cls(
            _tree(own, data_dir),
            _listing(str(own.parent)),
            {f: _digest(f) for f in WATCHED_FILES},
            {d: _listing(d) for d in shared},
        )

    def changes_since(self, before: Snapshot) -> list[str]:
        problems = []
        for path in sorted(self.tree.keys() - before.tree.keys()):
            problems.append(f"new path outside the data folder: {path}")
        for path in sorted(before.tree.keys() & self.tree.keys()):
            if self.tree[path] != before.tree[path] and not self.tree[path][0]:
                problems.append(f"changed outside the data folder: {path}")
        for path in sorted(before.tree.keys() - self.tree.keys()):
            problems.append(f"removed outside the data folder: {path}")
        for name in sorted(self.session ^ before.session):
            problems.append(f"added or removed in the session's temp folder: {name}")
        for path, digest in self.files.items():
            if digest != before.files[path]:
                problems.append(f"system file changed: {path}")
        for folder, names in self.listings.items():
            for name in sorted(names - before.listings[folder]):
                low = name.lower()
                if any(t in low for t in TELLTALE) or low.split(".")[0] in RESERVED:
                    problems.append(f"telltale name appeared: {os.path.join(folder, name)}")
        return problems


@contextlib.contextmanager
def nothing_written_outside(own: Path, data_dir: Path) -> Iterator[None]:
    before = Snapshot.take(own, data_dir)
    yield
    problems = Snapshot.take(own, data_dir).changes_since(before)
    assert not problems, "\n".join(problems)


# -- the service -----------------------------------------------------------------------------


class Recorder:
    """Outermost ASGI layer: every HTTP request that reaches the API, with its User-Agent, so
    a test can tell whether aria2c was ever made to fetch from our own API."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, str, int]] = []  # path, user agent, status answered

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        answered = [0]

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start":
                answered[0] = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        self.seen.append((scope["path"], headers.get("user-agent", ""), answered[0]))

    def from_aria2(self) -> list[str]:
        """Paths aria2c was answered on by the API: anything but the 403 for our own fetches.
        (aria2c can always connect: what matters is that the API answers it nothing.)"""
        return [
            path
            for path, agent, status in self.seen
            if agent.lower().startswith("aria2") and status != 403
        ]


@dataclasses.dataclass
class Hostile:
    svc: Service
    files: FileServer
    recorder: Recorder
    port: int  # the API's, which is also settings.port
    data_dir: Path
    media: Path  # the one local_media_roots folder

    @property
    def rpc_port(self) -> int:
        port = self.svc.services.manager.port
        assert port is not None
        return port

    @property
    def downloads(self) -> Path:
        return self.svc.services.settings.downloads_dir.resolve()

    async def total(self) -> int:
        resp = await self.svc.http.get("/api/tasks")
        assert resp.status_code == 200, resp.text
        total: int = resp.json()["total"]
        return total

    async def post(self, body: Any) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        return await self.svc.http.post(
            "/api/tasks/submit", content=raw, headers={"Content-Type": "application/json"}
        )


@pytest.fixture
async def hostile(tmp_path: Path, fileserver: FileServer) -> AsyncIterator[Hostile]:
    import uvicorn

    from draftdl.app import create_app

    data_dir = tmp_path / "data"
    media = tmp_path / "media"
    media.mkdir()
    (media / "ok.mp4").write_bytes((DEFAULT_MEDIA_DIR / "clip.mp4").read_bytes())
    os.symlink("/etc/passwd", media / f"{MARK}-link.mp4")  # inside the root, pointing out
    data_dir.mkdir()
    with nothing_written_outside(tmp_path, data_dir):
        port = free_port()
        settings = make_settings(data_dir, port=port, local_media_roots=[media])
        app = create_app(settings)
        recorder = Recorder(app)
        config = uvicorn.Config(recorder, host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        try:
            await until(lambda: server.started or serving.done(), 20)
            assert server.started, "uvicorn did not start"
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=30.0) as http:
                svc = Service(app, http, app.state.services)
                yield Hostile(svc, fileserver, recorder, port, data_dir, media)
                assert_downloads_folder_clean(data_dir)
        finally:
            server.should_exit = True
            await asyncio.wait_for(serving, 20)
    assert fileserver.errors == []


def assert_downloads_folder_clean(data_dir: Path) -> None:
    """downloads/ holds only task folders (named by task ids) of plain files, nothing else:
    no name escaped into downloads/ itself, no link, no sub-folder."""
    downloads = data_dir / "downloads"
    for entry in downloads.iterdir():
        assert entry.is_dir() and UUID.match(entry.name), f"stray entry in downloads/: {entry}"
        for item in entry.iterdir():
            assert item.is_file() and not item.is_symlink(), item


def problems_of(check: Callable[..., object], *args: Any) -> list[str]:
    """Runs one case's assertions; what failed, so that every case of a table is reported."""
    try:
        check(*args)
    except AssertionError as exc:
        return [str(exc).split("\n")[0]]
    return []


def assert_safe_name(name: str) -> None:
    """Safe on Linux, Windows and macOS: no separators, no control or bidi characters, no
    reserved device name (NUL.txt and NUL.tar.gz are NUL too), no dots or spaces at the ends,
    at most 255 bytes."""
    assert name not in ("", ".", ".."), f"{name!r}: a dot name"
    assert "/" not in name and "\\" not in name, f"{name!r}: a path separator"
    hidden = [f"U+{ord(ch):04X}" for ch in name if unicodedata.category(ch).startswith("C")]
    assert not hidden, f"{name!r}: control or format (bidi) characters {hidden}"
    assert not re.search(r'[<>:"|?*]', name), f"{name!r}: a character Windows refuses"
    device = name.split(".")[0].lower()
    assert device not in RESERVED, f"{name!r}: the reserved Windows device name {device.upper()}"
    assert name[-1] not in ". " and name[0] != " ", f"{name!r}: a dot or space at an end"
    assert len(name.encode("utf-8")) <= 255, f"{name!r}: longer than 255 bytes"


def refused_paths(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    assert all(p["msg"] for p in detail), detail
    return [p["path"] for p in detail]


async def final_view(h: Hostile, task_id: str, timeout: float = 30) -> dict[str, Any]:
    return await h.svc.wait_task(task_id, lambda t: t["status"] in FINAL, timeout)


def expected_bytes(url: str) -> bytes:
    """What the file server sends for a ``/size/<n>/<name>`` URL (or /disposition, /media).
    Split by hand: ``urlsplit`` drops tabs and newlines, which aria2 sends percent-encoded."""
    path = re.split(r"[?#]", url.split("://", 1)[1].partition("/")[2], maxsplit=1)[0]
    parts = path.split("/")
    if parts[0] == "media":
        return (DEFAULT_MEDIA_DIR / unquote(parts[1])).read_bytes()
    assert parts[0] in ("size", "disposition"), url
    size = int(parts[1].removesuffix("K")) * (1024 if parts[1].endswith("K") else 1)
    return content_for(unquote(parts[2]), size)


def assert_completed_inside(h: Hostile, task: dict[str, Any]) -> None:
    assert task["status"] == "completed", task
    folder = h.downloads / task["task_id"]
    for f in task["files"]:
        path = Path(f["file_path"])
        assert path.parent == folder, f
        assert path.name == f["file_name"]
        assert_safe_name(path.name)
        assert path.is_file() and not path.is_symlink()
        assert path.read_bytes() == expected_bytes(f["url"]), f["url"]


def assert_failed_naming(task: dict[str, Any], url: str, *why: str) -> None:
    assert task["status"] == "failed", task
    message = task["error_message"] or ""
    assert url in message, message
    for word in why:
        assert word in message, message


# -- bodies that are not a job ---------------------------------------------------------------


async def test_bodies_that_are_not_a_json_object_are_refused_whole(hostile: Hostile) -> None:
    h = hostile
    good = job([h.files.url(f"/size/1K/{MARK}-body.mp4")])
    text = json.dumps(good)
    deep = b'{"ruleGroup": {}, "draft_config": {"x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}}"
    cases: dict[str, tuple[bytes, str]] = {
        "not UTF-8": (b'{"ruleGroup": "\xff\xfe"}', "utf-8"),
        "Latin-1 name": (text.replace("body.mp4", "b\u00e9").encode("latin-1"), "utf-8"),
        "empty": (b"", "Expecting value"),
        "a string": (b'"ruleGroup"', "JSON object"),
        "null": (b"null", "JSON object"),
        "a list": (b"[" + text.encode() + b"]", "JSON object"),
        "NaN": (text.replace('"draft_config": {}', '"draft_config": {"fps": NaN}').encode(), "NaN"),
        "Infinity": (text.replace("{}", '{"fps": Infinity}').encode(), "Infinity"),
        "-Infinity": (text.replace("{}", '{"fps": -Infinity}').encode(), "Infinity"),
        "1e999": (text.replace("{}", '{"fps": 1e999}').encode(), "1e999"),
        "-1e999": (text.replace("{}", '{"fps": -1e999}').encode(), "1e999"),
        "5000 digits": (text.replace("{}", '{"fps": ' + "9" * 5000 + "}").encode(), "digits"),
        "nested 10,000 deep (lists)": (deep, "nested too deeply"),
        "nested 10,000 deep (objects)": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "nested"),
        "lone surrogate": (b'{"ruleGroup": {"title": "\\udc00"}}', "surrogate"),
        "NUL outside a string": (text.encode()[:-1] + b"\x00}", "JSON"),
    }
    before = await h.total()
    for name, (raw, why) in cases.items():
        resp = await h.post(raw)
        assert refused_paths(resp) == ["body"], name
        assert why in resp.json()["detail"][0]["msg"], (name, resp.text)
    assert await h.total() == before
    assert h.files.requests_for(f"/size/1K/{MARK}-body.mp4") == 0
    # A UTF-8 BOM: refusing it or reading past it are both fine (RFC 8259 §8.1); never a 500.
    resp = await h.post(b"\xef\xbb\xbf" + text.encode())
    if resp.status_code == 200:
        assert_completed_inside(h, await final_view(h, resp.json()["task_id"]))
        assert await h.total() == before + 1
    else:
        assert refused_paths(resp) == ["body"]
        assert await h.total() == before


# -- wrong types at every level --------------------------------------------------------------


def _mutated(base: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(json.dumps(base))
    node: Any = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


async def test_wrong_types_at_every_level_name_their_field(hostile: Hostile) -> None:
    h = hostile
    url = h.files.url(f"/size/1K/{MARK}-types.mp4")
    base = job([url])
    base["testData"] = {
        "tracks": [{"id": "v", "type": "video"}],
        "items": [{"type": "clip", "data": {"track": "v", "start": 0, "duration": 1}}],
    }
    mid = ("ruleGroup", "rules", 0, "material_ids", 0)
    unknown = "ruleGroup.rules[0].material_ids[0]"
    item = ("testData", "items", 0, "data")
    cases: list[tuple[tuple[Any, ...], Any, str]] = [
        (("ruleGroup",), [], "ruleGroup"),
        (("ruleGroup",), "g", "ruleGroup"),
        (("ruleGroup", "rules"), "clip", "ruleGroup.rules"),
        (("ruleGroup", "rules"), {"type": "clip"}, "ruleGroup.rules"),
        (("ruleGroup", "rules", 0), 7, "ruleGroup.rules[0]"),
        (("ruleGroup", "rules", 0, "type"), {"t": 1}, "ruleGroup.rules[0].type"),
        (("ruleGroup", "rules", 0, "material_ids"), "m0", "ruleGroup.rules[0].material_ids"),
        ((*mid,), {"id": "m0"}, unknown),
        (("materials",), "m0", "materials"),
        (("materials",), {"videos": "m0"}, "materials.videos"),
        (("materials", 0), 42, "materials[0]"),
        (("materials", 0, "id"), {"id": "m0"}, "materials[0].id"),
        (("materials", 0, "id"), ["m0"], "materials[0].id"),
        (("materials", 0, "id"), True, "materials[0].id"),
        (("materials", 0, "type"), ["video"], "materials[0].type"),
        (("materials", 0, "path"), [url], "materials[0].path"),
        (("materials", 0, "path"), {"url": url}, "materials[0].path"),
        (("materials", 0, "path"), 3.5, "materials[0].path"),
        (("testData",), [], "testData"),
        (("testData", "tracks"), {"v": "video"}, "testData.tracks"),
        (("testData", "tracks", 0), "video", "testData.tracks[0]"),
        (("testData", "tracks", 0, "id"), {"id": "v"}, "testData.tracks[0].id"),
        (("testData", "tracks", 0, "type"), 5, "testData.tracks[0].type"),
        (("testData", "items"), "clip", "testData.items"),
        (("testData", "items", 0), ["clip"], "testData.items[0]"),
        (("testData", "items", 0, "type"), {"t": "clip"}, "testData.items[0].type"),
        ((*item,), [1, 2], "testData.items[0].data"),
        ((*item,), "clip", "testData.items[0].data"),
        ((*item, "start"), "soon", "testData.items[0].data.start"),
        ((*item, "start"), 10**400, "testData.items[0].data.start"),
        ((*item, "start"), -1, "testData.items[0].data.start"),
        ((*item, "duration"), {"s": 1}, "testData.items[0].data.duration"),
        ((*item, "speed"), "fast", "testData.items[0].data.speed"),
        ((*item, "volume"), [1], "testData.items[0].data.volume"),
        ((*item, "x"), "left", "testData.items[0].data.x"),
        ((*item, "path"), 9, "testData.items[0].data.path"),
        (("draft_config",), [], "draft_config"),
        (("draft_config", "fps"), "fast", "draft_config.fps"),
        (("draft_config", "canvas_width"), -5, "draft_config.canvas_width"),
        (("priority",), "high", "priority"),
        (("priority",), 1.5, "priority"),
        (("priority",), True, "priority"),
        (("priority",), 2**70, "priority"),
        (("max_download_limit",), "fast", "max_download_limit"),
        (("max_download_limit",), -1, "max_download_limit"),
        (("max_download_limit",), {"rate": "1M"}, "max_download_limit"),
        (("deadline",), -1, "deadline"),
        (("deadline",), "soon", "deadline"),
        (("deadline",), [5], "deadline"),
    ]
    before = await h.total()
    wrong: list[str] = []
    for path, value, expected in cases:
        resp = await h.post(_mutated(base, path, value))
        # The field itself comes first; what follows from it (an item whose rule is gone) may
        # be named after it.
        got = refused_paths(resp) if resp.status_code == 422 else [f"HTTP {resp.status_code}"]
        if got[0] != expected:
            wrong.append(f"{path} = {value!r:.40}: expected {expected}, got {got} {resp.text:.200}")
    assert not wrong, "\n".join(wrong)
    assert await h.total() == before
    assert h.files.requests_for(f"/size/1K/{MARK}-types.mp4") == 0


# -- local paths -----------------------------------------------------------------------------


async def test_local_paths_outside_the_media_roots_are_refused(hostile: Hostile) -> None:
    h = hostile
    outside = [
        "/etc/passwd",
        "C:\\Windows\\win.ini",
        "C:/Windows/win.ini",
        "\\\\server\\share\\win.ini",
        "../../../../etc/passwd",
        f"{h.media}/../../../../etc/passwd",
        f"{h.media}/{MARK}-link.mp4",  # a symlink in the root that points at /etc/passwd
        "/etc/passwd\x00.mp4",
        "/proc/self/environ",
        "~/.ssh/id_rsa",
        "file:///etc/passwd",
        "FILE:/etc/passwd",
    ]
    places = [
        (("materials", 0, "path"), "materials[0].path"),
        (("raw_materials",), "raw_materials[0].path"),
        (("testData",), "testData.items[0].data.path"),
    ]
    before = await h.total()
    wrong = []
    for value in outside:
        for where, path in places:
            if where == ("raw_materials",):
                body = {**job([h.files.url("/size/1K/r.mp4")]), "raw_materials": [{"path": value}]}
            elif where == ("testData",):
                body = job([h.files.url("/size/1K/r.mp4")])
                body["testData"] = {"items": [{"type": "clip", "data": {"path": value}}]}
            else:
                body = job([value])
            resp = await h.post(body)
            got = refused_paths(resp) if resp.status_code == 422 else f"HTTP {resp.status_code}"
            if got != [path]:
                wrong.append(f"{value!r} at {path}: {got} {resp.text:.200}")
    assert not wrong, "\n".join(wrong)
    assert await h.total() == before
    # Inside the root it is taken (and linked into the draft, not copied out of data/).
    body = job([str(h.media / "ok.mp4")])
    body["testData"] = {"items": [{"type": "clip", "data": {"start": 0, "duration": 1}}]}
    task = await final_view(h, await h.svc.submit(body))
    assert task["status"] == "completed", task
    check_draft(task["draft_path"], h.svc.services.drafts.path)


# -- our own ports ---------------------------------------------------------------------------


async def test_urls_to_our_own_api_and_rpc_ports_never_reach_them(hostile: Hostile) -> None:
    h = hostile
    hosts = [
        "127.0.0.1", "localhost", "LOCALHOST", "127.0.0.2", "127.1", "0.0.0.0", "0",
        "2130706433", "0x7f.1", "0177.0.0.1", "127.000.000.001", "[::1]", "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]", "[0:0:0:0:0:ffff:127.0.0.1]", "127.0.0.1.", "localhost.",
    ]  # fmt: skip
    # Each URL its own path, so a request that gets through is told apart.
    urls: list[tuple[str, str]] = []  # (url, what a request that got through looks like)
    for port, what in ((h.port, "api"), (h.rpc_port, "rpc")):
        spelled = [f"http://{host}:{port}" for host in hosts]
        spelled += [f"HTTP://127.0.0.1:{port}", f"http://{MARK}:pw@127.0.0.1:{port}"]
        spelled += [f"http://127.0.0.1:0{port}"]
        for i, origin in enumerate(spelled):
            if what == "api":
                urls.append((f"{origin}/api/{MARK}-{len(urls)}", f"/api/{MARK}-{len(urls)}"))
            else:  # system.listMethods needs no secret: a 200 if the RPC port is reached
                urls.append((f"{origin}/jsonrpc?method=system.listMethods&id={i}", "rpc"))
    before = await h.total()
    accepted = []
    wrong = []
    for url, mark in urls:
        resp = await h.post(job([url]))
        if resp.status_code == 200:
            accepted.append((url, mark, resp.json()["task_id"]))
        elif refused_paths(resp) != ["materials[0].path"]:
            wrong.append(f"{url}: {resp.text:.200}")
        elif "own service" not in resp.json()["detail"][0]["msg"]:
            wrong.append(f"{url}: refused for another reason: {resp.text:.200}")
    for url, mark, task_id in accepted:
        # Accepted is fine only if aria2 cannot reach it (a name that does not resolve): then
        # it fails naming the URL, and not one request gets to our API or aria2's RPC.
        task = await final_view(h, task_id)
        reason = task["error_message"] or ""
        # For the RPC port, a completed task or an HTTP status in the reason means aria2c
        # talked to its own RPC port and got an answer.
        if mark == "rpc" and (task["status"] != "failed" or "HTTP " in reason):
            wrong.append(f"{url}: reached aria2's RPC port: {task['status']}, {reason!r}")
        elif mark in h.recorder.from_aria2():
            wrong.append(f"{url}: reached our API ({task['status']}, {reason!r})")
        elif task["status"] != "failed" or url not in reason:
            wrong.append(f"{url}: {task['status']}, {reason!r}")
    assert not wrong, "\n".join(wrong)
    assert await h.total() == before + len(accepted)


async def test_redirects_to_file_urls_and_to_our_own_ports_fetch_nothing(
    hostile: Hostile,
) -> None:
    h = hostile

    def redirect(code: int, name: str, to: str) -> str:
        return h.files.url(f"/redirect/{code}/{name}?to={quote(to, safe='')}")

    # aria2 answers its two introspection calls (system.listMethods, listNotifications)
    # without the secret: a public, fixed list. Every call that tells or changes anything
    # needs the secret, which a job never has.
    rpc_probe = f"http://127.0.0.1:{h.rpc_port}/jsonrpc?method=aria2.tellActive&id={MARK}"
    refused = {
        "to /etc/passwd": redirect(302, f"{MARK}-1.mp4", "file:///etc/passwd"),
        "to C:\\Windows": redirect(301, f"{MARK}-2.mp4", "file:///C:/Windows/win.ini"),
        "to a relative file URL": redirect(307, f"{MARK}-3.mp4", "file:/etc/passwd"),
        "to our API": redirect(302, f"{MARK}-4.mp4", f"http://127.0.0.1:{h.port}/api/health"),
        "to our API, by name": redirect(
            308, f"{MARK}-5.mp4", f"http://localhost:{h.port}/api/tasks"
        ),
        "to aria2's RPC": redirect(302, f"{MARK}-6.mp4", rpc_probe),
    }
    tasks = {}
    for name, url in refused.items():
        tasks[name] = (url, await h.svc.submit(job([url], title=name)))
    # A redirect to an ordinary file of another server path is followed.
    fine_target = h.files.url(f"/size/1K/{MARK}-target.mp4")
    fine = redirect(302, f"{MARK}-7.mp4", fine_target)
    fine_id = await h.svc.submit(job([fine]))
    fine_task = await final_view(h, fine_id)
    assert fine_task["status"] == "completed", fine_task
    path = Path(fine_task["files"][0]["file_path"])
    assert path.parent == h.downloads / fine_id and path.name == f"{MARK}-7.mp4"
    assert path.read_bytes() == content_for(f"{MARK}-target.mp4", 1024)
    wrong = []
    passwd = Path("/etc/passwd").read_bytes()
    for name, (url, task_id) in tasks.items():
        task = await final_view(h, task_id)
        f = task["files"][0]
        got = Path(f["file_path"]).read_bytes() if Path(f["file_path"]).is_file() else b""
        if task["status"] != "failed" or url not in (task["error_message"] or ""):
            wrong.append(f"{name}: {task['status']}, {task['error_message']!r}, file {got[:60]!r}")
        elif passwd[:20] in got or b"aria2." in got or b'"status"' in got:
            wrong.append(f"{name}: the file holds what the redirect pointed at: {got[:60]!r}")
    assert not wrong, "\n".join(wrong)
    assert h.recorder.from_aria2() == []


# -- limits: nesting, file count ---------------------------------------------------------------


async def test_deep_nesting_and_too_many_files_are_refused_by_path(hostile: Hostile) -> None:
    h = hostile
    url = h.files.url(f"/size/1K/{MARK}-limits.mp4")
    before = await h.total()
    nested: Any = {"path": url}
    for _ in range(40):
        nested = [nested]
    resp = await h.post({**job([url]), "raw_segments": [nested]})
    [path] = refused_paths(resp)
    assert path.startswith("raw_segments[0][0][0]") and "nested deeper than" in resp.text
    nested = {"path": url}
    for i in range(40):
        nested = {f"k{i}": nested}
    resp = await h.post({**job([url]), "raw_materials": nested})
    [path] = refused_paths(resp)
    assert path.startswith("raw_materials.k39.k38") and "nested deeper than" in resp.text
    # 10,001 distinct files against max_files_per_task = 10,000.
    many = [h.files.url(f"/size/1K/{MARK}-{i}.mp4") for i in range(10_001)]
    resp = await h.post(job(many))
    assert refused_paths(resp) == ["materials"]
    assert "10001 files" in resp.text and "limit is 10000" in resp.text
    # The same URL 10,001 times is one file.
    resp = await h.post(job([url] * 10_001))
    assert resp.status_code == 200, resp.text
    task = await final_view(h, resp.json()["task_id"])
    assert_completed_inside(h, task)
    assert len(task["files"]) == 1
    assert await h.total() == before + 1
    assert h.files.requests_for(f"/size/1K/{MARK}-0.mp4") == 0


# -- hostile names ---------------------------------------------------------------------------


NAME_CASES = [
    "%2e%2e%2f%2e%2e%2f{m}-passwd",
    "..%2f..%2f..%2f{m}-passwd.mp4",
    "..%5c..%5c{m}-win.ini",
    "C:%5CWindows%5C{m}-win.ini",
    "C:%2FWindows%2F{m}-win.ini",
    "%2Fetc%2F{m}-passwd",
    "{m}-a%00b.mp4",
    "{m}-line%0Abreak%0D.mp4",
    "%2e%2e",
    "%2e",
    "CON",
    "nul.txt",
    "COM1.mp4",
    "Lpt9",
    "aux.tar.gz",
    "nul.{m}.mp4",
    "{m}-" + "a" * 300 + ".mp4",
    "{m}-" + quote("视" * 100) + ".mp4",
    "{m}-" + quote("😀" * 80),
    "{m}-evil%E2%80%AEpm4.exe",
    "{m}-%E2%80%AEgpj.mp4",
    "{m}-zero%E2%80%8Bwidth%E2%81%A6.mp4",
    "{m}-trailing.mp4.%20.%20.",
    "{m}-x.aria2",
    "{m}-%3C%3E%3A%22%7C%3F%2A.mp4",
    "%20%20{m}-spaces%20%20.mp4",
]


async def test_hostile_names_are_downloaded_inside_the_task_folder(hostile: Hostile) -> None:
    h = hostile
    urls = [h.files.url("/size/1K/" + case.format(m=MARK)) for case in NAME_CASES]
    ids = [await h.svc.submit(job([url], title=f"{MARK}-{i}")) for i, url in enumerate(urls)]
    wrong = []
    for case, task_id in zip(NAME_CASES, ids, strict=True):
        task = await final_view(h, task_id)
        wrong += [f"{case}: {p}" for p in problems_of(assert_completed_inside, h, task)]
    # All in one task: names stay distinct (case and Unicode normalisation folded).
    together = [
        *urls,
        h.files.url(f"/size/1K/{MARK}-Dup.mp4"),
        h.files.url(f"/size/1K/{MARK}-dup.MP4"),
        h.files.url(f"/size/1K/{MARK}-%C3%A9.mp4"),
        h.files.url(f"/size/1K/{MARK}-e%CC%81.mp4"),
    ]
    task = await final_view(h, await h.svc.submit(job(together, title="together")))
    wrong += [f"together: {p}" for p in problems_of(assert_completed_inside, h, task)]
    names = [unicodedata.normalize("NFC", f["file_name"]).lower() for f in task["files"]]
    assert len(set(names)) == len(names) == len(together)
    assert not wrong, "\n".join(wrong)


async def test_odd_urls_end_inside_the_task_folder_or_fail_naming_the_url(
    hostile: Hostile,
) -> None:
    """Literal dot segments and absolute paths in the URL path, raw control characters and
    spaces, a name the server sets itself (Content-Disposition), broken escapes: the task
    completes with a safe name in its folder or fails naming the URL."""
    h = hostile
    base = h.files.base_url

    def disposition(name: str, filename: str) -> str:
        return f"{base}/disposition/1K/{name}?filename={quote(filename, safe='')}"

    urls = [
        f"{base}/size/1K/../../../../etc/passwd",
        f"{base}/size/1K/./../{MARK}/../../etc/passwd",
        f"{base}/etc/passwd",
        f"{base}//etc/passwd",
        f"{base}/size/1K/C:\\Windows\\win.ini\\..\\..\\{MARK}",
        f"{base}/size/1K/{MARK}-crlf.mp4\r\nX-Injected: 1",
        f"{base}/size/1K/{MARK}-sp ace.mp4",
        f"{base}/size/1K/{MARK}-ta\tb.mp4",
        f"{base}/size/1K/nu\x00l.mp4",
        f"{base}/size/1K/{MARK}-frag.mp4#../../../../etc/passwd",
        f"{base}/size/1K/{MARK}-q.mp4?name=../../../../etc/passwd",
        f"{base}/size/1K/{MARK}-" + "l" * 8000 + ".mp4",
        f"{base}/size/1K/{MARK}-%ZZ.mp4",
        f"{base}/size/1K/%ff%fe.mp4",
        disposition(f"{MARK}-cd1.mp4", "../../../../tmp/hxq-cd-passwd"),
        disposition(f"{MARK}-cd2.mp4", "/etc/cron.d/hxq"),
        disposition(f"{MARK}-cd3.mp4", "C:\\Windows\\hxq-win.ini"),
        disposition(f"{MARK}-cd4.mp4", "NUL"),
        f"{base}/status/404/{MARK}-gone.mp4",
    ]
    wrong = []
    for url in urls:
        task = await final_view(h, await h.svc.submit(job([url])))
        if task["status"] == "completed":  # the server answered with a file of its own
            found = problems_of(assert_completed_inside, h, task)
        else:
            found = problems_of(assert_failed_naming, task, url, "HTTP 404")
        wrong += [f"{url[:100]!r}: {p}" for p in found]
    # The shared example: a traversal in the material name, the URL and an item's "ext".
    example = load_example("hostile-names.json", base)
    task = await final_view(h, await h.svc.submit(example))
    url = example["materials"][0]["path"]
    found = problems_of(assert_failed_naming, task, url, "HTTP 404")
    wrong += [f"hostile-names.json: {p}" for p in found]
    assert not wrong, "\n".join(wrong)
    assert h.recorder.from_aria2() == []


async def test_hostile_material_names_and_titles_make_a_safe_draft(hostile: Hostile) -> None:
    h = hostile
    clip = h.files.url("/media/clip.mp4")
    titles = [
        "../../../../etc/cron.d/" + MARK,
        "C:\\Windows\\System32\\" + MARK,
        "CON",
        "nul.txt",
        MARK + "\u202egpj.exe",
        MARK + "\x00\x07\x1b[31m",
        MARK + "\u200b\u2066hidden\u2069",
        "视" * 300,
        " . . ",
        {"title": MARK},
    ]
    wrong = []
    for title in titles:
        body = job([clip], title="t")
        body["ruleGroup"]["title"] = title
        body["materials"][0]["name"] = f"../../../../etc/cron.d/{MARK}"
        body["testData"] = {
            "tracks": [{"id": "v", "type": "video", "title": "../" + MARK}],
            "items": [{"type": "clip", "data": {"track": "v", "start": 0, "duration": 1}}],
        }
        task = await final_view(h, await h.svc.submit(body))
        resp = await h.svc.http.get(
            f"/api/tasks/{task['task_id']}/draft.zip", params={"root": "C:\\..\\..\\" + MARK}
        )

        def check(task: dict[str, Any], resp: httpx.Response) -> None:
            assert_completed_inside(h, task)
            draft = check_draft(task["draft_path"], h.svc.services.drafts.path)
            assert_safe_name(draft.folder.name)
            for asset in (draft.folder / "assets").iterdir():
                assert_safe_name(asset.name)
            # The zip holds one folder named like the draft; no entry climbs out of it.
            assert resp.status_code == 200, resp.text
            with zipfile.ZipFile(io.BytesIO(resp.content)) as archive:
                for entry in archive.namelist():
                    top, *rest = entry.split("/")
                    assert top == draft.folder.name and rest, entry
                    assert ".." not in rest and "" not in rest and "\\" not in entry, entry

        wrong += [f"title {title!r}: {p}" for p in problems_of(check, task, resp)]
    assert not wrong, "\n".join(wrong)
