"""The CLI's queue controls and reports against a real server and the real file server:
each command's happy path, and its errors (404 and 409 as one line, exit 3; 422 readable)."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fileserver import FileServer
from servers import FINAL, LiveServer, free_port, job, live_server, make_settings
from test_cli import CSI, downloading, draftdl, wait_task, write_job

SLOW = "/slow/8M/{name}?rate=256K"  # long enough to act on while it downloads


@pytest.fixture
async def server(data_dir: Path) -> AsyncIterator[LiveServer]:
    async with live_server(make_settings(data_dir)) as live:
        yield live


async def submit(server: LiveServer, body: dict[str, Any]) -> str:
    async with server.client() as http:
        resp = await http.post("/api/tasks/submit", json=body)
    assert resp.status_code == 200, resp.text
    task_id: str = resp.json()["task_id"]
    return task_id


async def view(server: LiveServer, task_id: str) -> dict[str, Any]:
    async with server.client() as http:
        resp = await http.get(f"/api/tasks/{task_id}")
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def final(server: LiveServer, task_id: str) -> dict[str, Any]:
    return await wait_task(server, task_id, lambda t: t["status"] in FINAL)


async def completed_task(server: LiveServer, fileserver: FileServer, title: str = "t") -> str:
    task_id = await submit(server, job([fileserver.url("/size/1K/done.bin")], title=title))
    assert (await final(server, task_id))["status"] == "completed"
    return task_id


def one_line(out: str) -> str:
    """A failure as the CLI gives it: one line, no traceback."""
    assert out.strip().count("\n") == 0, out
    assert "Traceback" not in out
    return out.strip()


async def refused(*args: str, server: str, status: int) -> str:
    """Runs a command the server refuses: exit 3 and one line carrying the status."""
    code, out = await draftdl(*args, server=server)
    line = one_line(out)
    assert code == 3, out
    assert f"{status}: " in line, line
    return line


# -- pause, resume ---------------------------------------------------------------------------


async def test_pause_and_resume(server: LiveServer, fileserver: FileServer) -> None:
    task_id = await submit(server, job([fileserver.url(SLOW.format(name="p.bin"))]))
    await wait_task(server, task_id, downloading)
    url = server.base_url

    code, out = await draftdl("pause", task_id, server=url)
    assert (code, out.strip()) == (0, f"task {task_id} paused")
    assert (await view(server, task_id))["status"] == "paused"
    line = await refused("pause", task_id, server=url, status=409)
    assert "is paused" in line

    code, out = await draftdl("resume", task_id, server=url)
    assert code == 0 and out.strip().startswith(f"task {task_id} resumed"), out
    assert (await view(server, task_id))["status"] in ("pending", "downloading")
    line = await refused("resume", task_id, server=url, status=409)
    assert re.search(r"is (pending|downloading)", line), line

    await refused("pause", "nope", server=url, status=404)
    await refused("resume", "nope", server=url, status=404)


# -- priority, limit ------------------------------------------------------------------------


async def test_priority_and_limit(server: LiveServer, fileserver: FileServer) -> None:
    task_id = await submit(server, job([fileserver.url(SLOW.format(name="l.bin"))]))
    url = server.base_url

    code, out = await draftdl("priority", task_id, "9", server=url)
    assert (code, out.strip()) == (0, f"task {task_id}: priority 9")
    assert (await view(server, task_id))["priority"] == 9
    code, out = await draftdl("priority", task_id, "-3", server=url)  # not taken for an option
    assert (code, out.strip()) == (0, f"task {task_id}: priority -3")
    assert (await view(server, task_id))["priority"] == -3

    code, out = await draftdl("limit", task_id, "2M", server=url)
    assert (code, out.strip()) == (0, f"task {task_id}: download limit 2M")
    assert (await view(server, task_id))["max_download_limit"] == "2M"
    code, out = await draftdl("limit", task_id, "none", server=url)
    assert (code, out.strip()) == (0, f"task {task_id}: no download limit")
    assert (await view(server, task_id))["max_download_limit"] is None

    line = await refused("limit", task_id, "fast", server=url, status=422)
    assert "max_download_limit: must be bytes per second" in line, line  # path: msg
    line = await refused("priority", task_id, str(2**40), server=url, status=422)
    assert "priority: " in line and "{" not in line, line

    done = await completed_task(server, fileserver)
    line = await refused("priority", done, "1", server=url, status=409)
    assert "is completed" in line
    line = await refused("limit", done, "1M", server=url, status=409)
    assert "is completed" in line
    await refused("priority", "nope", "1", server=url, status=404)
    await refused("limit", "nope", "1M", server=url, status=404)


# -- retry ----------------------------------------------------------------------------------


async def test_retry_from_a_new_url(server: LiveServer, fileserver: FileServer) -> None:
    # Both links carry "=" in their query: OLD=NEW is split where the new URL starts.
    bad = fileserver.url("/status/404/gone.bin?sig=old")
    good = fileserver.url("/size/2K/gone.bin?sig=new")
    task_id = await submit(server, job([bad]))
    assert (await final(server, task_id))["status"] == "failed"
    url = server.base_url

    line = await refused("retry", task_id, "--url", f"{bad}=ftp://x/y", server=url, status=422)
    assert "the replacement must be an http(s) URL" in line, line
    code, out = await draftdl("retry", task_id, "--url", "no-equals-sign", server=url)
    assert code == 2 and "expected OLD=NEW" in out, out

    code, out = await draftdl("retry", task_id, "--url", f"{bad}={good}", server=url)
    assert (code, out.strip()) == (0, f"task {task_id} retried: 1 file to download"), out
    code, out = await draftdl("watch", task_id, server=url)
    assert code == 0, out
    assert "file gone.bin: complete 100.0% 2.0 KiB/2.0 KiB" in out
    assert (await view(server, task_id))["files"][0]["url"] == good

    line = await refused("retry", task_id, server=url, status=409)
    assert "is completed" in line
    await refused("retry", "nope", server=url, status=404)


async def test_retry_without_new_urls(server: LiveServer, fileserver: FileServer) -> None:
    task_id = await submit(server, job([fileserver.url(SLOW.format(name="r.bin"))]))
    await wait_task(server, task_id, downloading)
    url = server.base_url
    line = await refused("retry", task_id, server=url, status=409)
    assert "is downloading" in line
    code, out = await draftdl("cancel", task_id, server=url)
    assert code == 0, out
    code, out = await draftdl("retry", task_id, server=url)
    assert (code, out.strip()) == (0, f"task {task_id} retried: 1 file to download"), out
    assert (await view(server, task_id))["status"] in ("pending", "downloading")


# -- regenerate, cancel, delete -------------------------------------------------------------


async def test_regenerate(server: LiveServer, fileserver: FileServer) -> None:
    task_id = await completed_task(server, fileserver)
    before = (await view(server, task_id))["draft_path"]
    url = server.base_url
    code, out = await draftdl("regenerate", task_id, server=url)
    assert (code, out.strip()) == (0, f"task {task_id}: the draft is built again"), out
    code, out = await draftdl("watch", task_id, server=url)
    assert code == 0, out
    after = (await view(server, task_id))["draft_path"]
    assert after and after != before and Path(after).is_dir()

    running = await submit(server, job([fileserver.url(SLOW.format(name="g.bin"))]))
    await wait_task(server, running, downloading)
    line = await refused("regenerate", running, server=url, status=409)
    assert "is downloading" in line
    await refused("regenerate", "nope", server=url, status=404)


async def test_cancel_refused(server: LiveServer, fileserver: FileServer) -> None:
    done = await completed_task(server, fileserver)
    line = await refused("cancel", done, server=server.base_url, status=409)
    assert "completed" in line
    await refused("cancel", "nope", server=server.base_url, status=404)


async def test_delete(server: LiveServer, fileserver: FileServer, data_dir: Path) -> None:
    url = server.base_url
    kept = await completed_task(server, fileserver)
    kept_draft = Path((await view(server, kept))["draft_path"])
    code, out = await draftdl("delete", kept, server=url)
    assert (code, out.strip()) == (0, f"task {kept} deleted")
    assert kept_draft.is_dir() and (data_dir / "downloads" / kept).is_dir()  # not asked

    gone = await completed_task(server, fileserver)
    draft = Path((await view(server, gone))["draft_path"])
    code, out = await draftdl("delete", gone, "--files", "--draft", server=url)
    assert (code, out.strip()) == (0, f"task {gone} deleted")
    assert not draft.exists() and not (data_dir / "downloads" / gone).exists()
    await refused("show", gone, server=url, status=404)
    await refused("delete", gone, server=url, status=404)


# -- show -----------------------------------------------------------------------------------


async def test_show(server: LiveServer, fileserver: FileServer) -> None:
    body = job(
        [fileserver.url("/size/1K/a.bin"), fileserver.url("/size/3K/b.bin")], title="two files"
    )
    task_id = await submit(server, body)
    assert (await final(server, task_id))["status"] == "completed"
    url = server.base_url

    code, out = await draftdl("show", task_id, server=url)
    assert code == 0, out
    lines = out.strip().splitlines()
    fields = dict(line.split("\t", 1) for line in lines if not line.startswith("file\t"))
    assert fields["task"] == task_id and fields["title"] == "two files"
    assert fields["status"] == "completed"
    assert fields["progress"] == "100.0% 4.0 KiB/4.0 KiB, 2/2 files"
    assert fields["limit"] == "none"
    files = [line.split("\t") for line in lines if line.startswith("file\t")]
    assert [f[1:5] for f in files] == [
        ["a.bin", "complete", "100.0%", "1.0 KiB/1.0 KiB"],
        ["b.bin", "complete", "100.0%", "3.0 KiB/3.0 KiB"],
    ]
    assert files[0][-1] == fileserver.url("/size/1K/a.bin")

    code, out = await draftdl("show", task_id, server=url, tty=True)
    assert code == 0, out
    out = CSI.sub("", out)
    assert "\t" not in out and "two files" in out and "2 files" in out
    assert re.search(r"file\s+status\s+done\s+size", out), out
    assert re.search(r"a\.bin\s+complete\s+100\.0%\s+1\.0 KiB/1\.0 KiB", out), out
    await refused("show", "nope", server=url, status=404)


# -- zip ------------------------------------------------------------------------------------


async def test_zip(server: LiveServer, fileserver: FileServer, tmp_path: Path) -> None:
    task_id = await completed_task(server, fileserver, title="草稿 一")  # a non-ASCII name
    folder = Path((await view(server, task_id))["draft_path"]).name
    url = server.base_url
    here = tmp_path / "here"
    here.mkdir()

    code, out = await draftdl("zip", task_id, server=url, cwd=here)
    assert code == 0, out
    saved = here / f"{folder}.zip"
    assert out.strip().startswith(f"wrote {folder}.zip (")
    with zipfile.ZipFile(saved) as archive:
        assert {name.split("/")[0] for name in archive.namelist()} == {folder}
    size = saved.stat().st_size

    saved.write_bytes(b"mine")
    code, out = await draftdl("zip", task_id, server=url, cwd=here)
    assert code == 1 and one_line(out).endswith(f"{folder}.zip exists (--force overwrites it)")
    assert saved.read_bytes() == b"mine"  # untouched
    code, out = await draftdl("zip", task_id, "--force", server=url, cwd=here)
    assert code == 0, out
    assert saved.stat().st_size == size

    root = "/Users/someone/JianyingPro/drafts"
    code, out = await draftdl(
        "zip", task_id, "-o", "other.zip", "--root", root, server=url, cwd=here
    )
    assert code == 0 and out.strip().startswith("wrote other.zip ("), out
    with zipfile.ZipFile(here / "other.zip") as archive:
        meta = json.loads(archive.read(f"{folder}/draft_meta_info.json"))
    assert (meta["draft_root_path"], meta["draft_fold_path"]) == (root, f"{root}/{folder}")
    code, out = await draftdl("zip", task_id, "-o", str(here), server=url)  # a folder
    assert code == 1 and "exists" in out, out

    failed = await submit(server, job([fileserver.url("/status/404/x.bin")]))
    assert (await final(server, failed))["status"] == "failed"
    line = await refused("zip", failed, server=url, status=409)
    assert "failed" in line
    await refused("zip", "nope", server=url, status=404)
    assert sorted(p.name for p in here.iterdir()) == sorted([f"{folder}.zip", "other.zip"])


# -- health, limits -------------------------------------------------------------------------


async def test_health_ok(server: LiveServer) -> None:
    code, out = await draftdl("health", server=server.base_url)
    assert code == 0, out
    lines = out.strip().splitlines()
    assert lines[0] == "status: ok"
    assert not any(line.startswith("problem:") for line in lines)
    assert any(line.startswith("aria2c: running, version ") for line in lines), out


async def test_health_degraded_is_still_printed(data_dir: Path) -> None:
    settings = make_settings(data_dir, min_free_space="999999G")
    async with live_server(settings) as live:
        code, out = await draftdl("health", server=live.base_url)
    assert code == 1, out
    lines = out.strip().splitlines()
    assert lines[0] == "status: degraded"
    assert re.match(r"problem: \d+ MiB free under .*, less than min_free_space", lines[1]), out


async def test_limits(server: LiveServer) -> None:
    url = server.base_url
    code, out = await draftdl("limits", server=url)
    assert (code, out.strip()) == (0, "overall download limit: none")
    code, out = await draftdl("limits", "10M", server=url)
    assert (code, out.strip()) == (0, "overall download limit: 10M (10.0 MiB/s)")
    code, out = await draftdl("limits", server=url)
    assert (code, out.strip()) == (0, "overall download limit: 10M (10.0 MiB/s)")
    line = await refused("limits", "fast", server=url, status=422)
    assert "max_overall_download_limit: must be bytes per second" in line, line
    code, out = await draftdl("limits", "none", server=url)
    assert (code, out.strip()) == (0, "overall download limit: none")


# -- list, submit ---------------------------------------------------------------------------


async def test_list_filters(server: LiveServer, fileserver: FileServer) -> None:
    url = server.base_url
    failed = await submit(server, job([fileserver.url("/status/404/f.bin")], title="alpha one"))
    assert (await final(server, failed))["status"] == "failed"
    cancelled = await submit(server, job([fileserver.url(SLOW.format(name="c.bin"))], title="beta"))
    code, out = await draftdl("cancel", cancelled, server=url)
    assert code == 0, out
    done = await completed_task(server, fileserver, title="Alpha two")

    def ids(out: str) -> list[str]:
        return [line.split("\t")[0] for line in out.strip().splitlines()[:-1]]

    for args in (["--status", "failed,cancelled"], ["--status", "failed", "--status", "cancelled"]):
        code, out = await draftdl("list", *args, server=url)
        assert code == 0, out
        assert ids(out) == [cancelled, failed]  # newest first
        assert out.strip().splitlines()[-1] == "2 of 2 tasks"
    code, out = await draftdl("list", "--search", "alpha", server=url)
    assert ids(out) == [done, failed]
    rows = [line.split("\t") for line in out.strip().splitlines()[:-1]]
    assert [r[1] for r in rows] == ["completed", "failed"]
    assert [r[-1] for r in rows] == ["Alpha two", "alpha one"]  # the title, last
    code, out = await draftdl("list", "--search", "alpha", "--status", "failed", server=url)
    assert ids(out) == [failed]
    code, out = await draftdl("list", "--limit", "1", "--offset", "1", server=url)
    assert ids(out) == [cancelled]
    assert out.strip().splitlines()[-1] == "1 of 3 tasks, from number 2"
    code, out = await draftdl("list", "--status", "bogus", server=url)
    assert code == 2 and "'bogus' is not one of pending" in out, out


async def test_submit_overrides_priority_and_limit(
    server: LiveServer, fileserver: FileServer, tmp_path: Path
) -> None:
    body = job([fileserver.url(SLOW.format(name="o.bin"))], priority=1, max_download_limit="1M")
    path = write_job(tmp_path, body)
    code, out = await draftdl(
        "submit", path, "--priority", "5", "--limit", "2M", server=server.base_url
    )
    assert code == 0, out
    task_id = out.split()[1]
    task = await view(server, task_id)
    assert (task["priority"], task["max_download_limit"]) == (5, "2M")
    code, out = await draftdl("submit", path, "--limit", "none", server=server.base_url)
    assert code == 0, out
    task = await view(server, out.split()[1])
    assert (task["priority"], task["max_download_limit"]) == (1, None)


# -- every command: --server, --token, an unreachable server -------------------------------

COMMANDS = [
    ["pause", "x"],
    ["resume", "x"],
    ["retry", "x"],
    ["priority", "x", "1"],
    ["limit", "x", "1M"],
    ["regenerate", "x"],
    ["delete", "x"],
    ["cancel", "x"],
    ["show", "x"],
    ["zip", "x"],
    ["health"],
    ["limits"],
    ["list", "--search", "a"],
    ["watch", "x"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
async def test_unreachable_server_is_one_line(args: list[str], tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    code, out = await draftdl(*args, "--server", nobody, server="http://127.0.0.1:1", cwd=tmp_path)
    assert code == 3, out
    assert one_line(out) == f"Error: cannot reach draftdl at {nobody} (is `draftdl serve` running?)"
    assert list(tmp_path.iterdir()) == []  # zip wrote nothing


async def test_token_on_the_new_commands(data_dir: Path) -> None:
    async with live_server(make_settings(data_dir, api_token="s3cret")) as live:
        url = live.base_url
        line = await refused("limits", server=url, status=401)
        assert "s3cret" not in line
        code, out = await draftdl("limits", "--token", "s3cret", server=url)
        assert (code, out.strip()) == (0, "overall download limit: none")
        await refused("pause", "nope", "--token", "s3cret", server=url, status=404)
        code, out = await draftdl("health", "--token", "s3cret", server=url)
        assert code == 0 and out.startswith("status: ok"), out
