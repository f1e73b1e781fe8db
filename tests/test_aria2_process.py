"""The aria2c child: its environment, its RPC port across restarts, the options it runs with."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from pathlib import Path

import pytest

from draftdl.aria2 import process
from servers import free_port, make_settings, running_service, until


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(): value.decode() for key, value in pairs}


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
async def test_aria2c_gets_a_clean_environment(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRAFTDL_API_TOKEN", "s3cret-api-token")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cret-cloud-key")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("https_proxy", "http://proxy.invalid:3128")
    async with running_service(make_settings(data_dir)) as svc:
        pid = svc.services.manager.pid
        assert pid is not None
        env = environ_of(pid)
    assert not [key for key in env if key.upper().startswith("DRAFTDL_")]
    assert "s3cret" not in repr(env)
    assert env["PATH"] == os.environ["PATH"]
    assert env["LC_ALL"] == "C.UTF-8"
    assert env["https_proxy"] == "http://proxy.invalid:3128"  # downloads honour the proxy


def test_the_windows_environment_keeps_what_windows_programs_need() -> None:
    given = {
        "Path": r"C:\\Windows",
        "SystemRoot": r"C:\\Windows",
        "TEMP": r"C:\\t",
        "USERPROFILE": r"C:\\Users\\me",
        "APPDATA": r"C:\\Users\\me\\AppData\\Roaming",
        "DRAFTDL_API_TOKEN": "x",
        "GITHUB_TOKEN": "y",
    }
    kept = process.aria2_environment(given, "win32")
    assert kept == {k: v for k, v in given.items() if "TOKEN" not in k}
    assert process.aria2_environment({"SYSTEMROOT": "C:", "HOME": "/h"}, "linux") == {"HOME": "/h"}


async def test_a_quick_restart_keeps_the_asked_rpc_port(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="draftdl.aria2.process")
    asked = free_port()
    settings = make_settings(data_dir, aria2_rpc_port=asked)
    for _ in range(2):
        async with running_service(settings) as svc:
            assert svc.services.manager.port == asked
            # Requests leave connections that aria2c closes at stop: TIME_WAIT on its port.
            for _ in range(3):
                assert (await svc.http.get("/api/health")).json()["aria2"]["running"]
    assert not [r for r in caplog.records if "RPC port" in r.getMessage()]


async def test_the_port_of_our_exiting_aria2c_is_waited_for(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="draftdl.aria2.process")
    asked = free_port()
    (data_dir / "aria2").mkdir(parents=True)
    (data_dir / "aria2" / "aria2.conf").write_text(f"rpc-listen-port={asked}\n")
    exiting = socket.socket()  # stands for the aria2c of the run before, still shutting down
    exiting.bind(("127.0.0.1", asked))
    exiting.listen()
    asyncio.get_running_loop().call_later(0.5, exiting.close)
    try:
        async with running_service(make_settings(data_dir, aria2_rpc_port=asked)) as svc:
            assert svc.services.manager.port == asked
    finally:
        exiting.close()
    assert not [r for r in caplog.records if "RPC port" in r.getMessage()]


async def test_a_crashed_aria2c_comes_back_on_the_port_it_had(data_dir: Path) -> None:
    async with running_service(make_settings(data_dir)) as svc:  # aria2_rpc_port=0: any
        manager = svc.services.manager
        old_pid, old_port = manager.pid, manager.port
        assert old_pid is not None and old_port is not None
        os.kill(old_pid, signal.SIGKILL)
        await until(lambda: manager.running and manager.pid not in (None, old_pid), 10)
        assert manager.port == old_port
        assert manager.get_rpc_url() == f"http://127.0.0.1:{old_port}/jsonrpc"


async def test_aria2c_accepts_every_option_we_give_it(data_dir: Path) -> None:
    settings = make_settings(data_dir, max_overall_download_limit="2M")
    async with running_service(settings) as svc:
        client = svc.services.manager.client
        options = await client.call("aria2.getGlobalOption")
    log = (data_dir / "aria2" / "aria2c.log").read_text()
    assert "Unknown option" not in log and "ERROR" not in log, log
    conf = (data_dir / "aria2" / "aria2.conf").read_text()
    given = dict(line.split("=", 1) for line in conf.splitlines())
    off = (
        "follow-metalink",
        "follow-torrent",
        "enable-dht",
        "enable-dht6",
        "bt-enable-lpd",
        "enable-peer-exchange",
    )
    for key in off:
        assert given[key] == "false", key
        assert options[key] == "false", key
    assert given["no-netrc"] == options["no-netrc"] == "true"
    assert options["max-overall-download-limit"] == str(2 * 1024 * 1024)
