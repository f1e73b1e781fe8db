"""The data folder: one server at a time, private modes on what it holds."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

import pytest

from draftdl.errors import DataDirLocked
from fileserver import FileServer
from servers import ServerProcess, aria2_pid_alive, job, make_settings, running_service


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_second_server_on_the_same_folder_exits_and_the_first_carries_on(
    data_dir: Path,
) -> None:
    first = ServerProcess(data_dir)
    try:
        await first.start()
        assert first.proc is not None
        async with first.client() as http:
            aria2_pid = (await http.get("/api/health")).json()["aria2"]["pid"]
        second = ServerProcess(data_dir)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "draftdl",
            "serve",
            env=second.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert out.decode().splitlines() == [
            f"draftdl: the data folder {data_dir.resolve()} is in use by another draftdl "
            f"server (pid {first.proc.pid})"
        ]
        assert proc.returncode == 2
        assert aria2_pid_alive(aria2_pid)
        async with first.client() as http:
            health = (await http.get("/api/health")).json()
        assert health["aria2"]["running"] is True and health["aria2"]["pid"] == aria2_pid
    finally:
        first.stop()
    assert not (data_dir / "draftdl.pid").exists()


async def test_create_app_on_a_held_folder_raises_and_the_lock_goes_at_stop(
    data_dir: Path,
) -> None:
    async with running_service(make_settings(data_dir)) as svc:
        aria2_pid = svc.services.manager.pid
        assert (data_dir / "draftdl.pid").read_text().strip() == str(os.getpid())
        with pytest.raises(DataDirLocked) as caught:
            async with running_service(make_settings(data_dir)):
                raise AssertionError("a second service started on a held folder")
        assert caught.value.pid == os.getpid()
        assert str(data_dir.resolve()) in str(caught.value)
        assert svc.services.manager.running and svc.services.manager.pid == aria2_pid
    async with running_service(make_settings(data_dir)) as svc:
        assert svc.services.manager.running


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
async def test_the_folder_and_its_files_are_private(data_dir: Path, fileserver: FileServer) -> None:
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    async with running_service(make_settings(data_dir)) as svc:
        task = await svc.wait_final(await svc.submit(job([fileserver.url("/size/4K/m.bin")])))
        assert task["status"] == "completed"
        assert mode(data_dir) == 0o700
        for name in ("tasks.db", "tasks.db-wal", "tasks.db-shm", "draftdl.lock", "draftdl.pid"):
            assert mode(data_dir / name) == 0o600, name
        aria2 = data_dir / "aria2"
        for name in ("aria2.conf", "aria2.session", "aria2c.pid", "aria2c.log", "rpc-secret"):
            assert mode(aria2 / name) == 0o600, name
    # aria2c rewrites its session at exit (a new file renamed over the old one).
    assert mode(data_dir / "aria2" / "aria2.session") == 0o600
    # Files an older version left readable are narrowed at the next start.
    loose = [data_dir / "tasks.db", data_dir / "aria2" / "aria2.session"]
    for path in [data_dir, *loose]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    async with running_service(make_settings(data_dir)):
        assert mode(data_dir) == 0o700
        for path in loose:
            assert mode(path) == 0o600, path


def test_a_shared_folder_given_as_data_dir_keeps_its_mode(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from draftdl.datadir import make_private_dir

    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    (home / "notes.txt").write_text("the user's own")
    make_private_dir(home)
    assert home.stat().st_mode & 0o777 == 0o755
    assert "not changing its mode" in caplog.text
    ours = tmp_path / "data"
    ours.mkdir(mode=0o755)
    os.chmod(ours, 0o755)
    (ours / "tasks.db").write_bytes(b"")
    make_private_dir(ours)
    assert ours.stat().st_mode & 0o777 == 0o700
