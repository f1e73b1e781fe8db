"""Harnesses for the service under test: in-process (lifespan + ASGI transport) and as a real
``draftdl serve`` process that a test may kill -9."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from draftdl.api.deps import Services
from draftdl.app import create_app
from draftdl.drafts.builder import DraftBuilder
from draftdl.settings import Settings

EXAMPLES = Path(__file__).resolve().parent / "data" / "examples"  # copied from shared/examples

FINAL = {"completed", "failed", "cancelled"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def load_example(name: str, base_url: str) -> dict[str, Any]:
    text = (EXAMPLES / name).read_text(encoding="utf-8").replace("{{BASE_URL}}", base_url)
    data: dict[str, Any] = json.loads(text)
    return data


def job(urls: list[str], title: str = "t", **extra: Any) -> dict[str, Any]:
    """A minimal valid job downloading ``urls``."""
    materials = [{"id": f"m{i}", "type": "video", "path": u} for i, u in enumerate(urls)]
    return {
        "ruleGroup": {
            "id": "g",
            "title": title,
            "rules": [{"type": "clip", "title": "c", "material_ids": [m["id"] for m in materials]}],
        },
        "materials": materials,
        "draft_config": {},
        **extra,
    }


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "aria2_rpc_port": 0,
        "poll_interval": 0.1,
        "progress_interval": 0.2,
        "flush_interval": 0.3,
        "health_check_interval": 0.5,
        "cleanup_days": 0,
        "shutdown_grace": 1.0,
        **overrides,
    }
    return Settings(**values)


async def wait_on_queue(
    services: Services,
    task_id: str,
    predicate: Callable[[dict[str, Any]], bool],
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Waits on the task's own events (no polling) until ``predicate`` holds for its view."""
    queue = services.queue
    sub = queue.subscribe(task_id)
    try:
        async with asyncio.timeout(timeout):
            while True:
                view = (await queue.get_task(task_id)).view()
                if predicate(view):
                    return view
                await sub.get()
    except TimeoutError:
        view = (await queue.get_task(task_id)).view()
        raise AssertionError(f"task never reached the condition: {view}") from None
    finally:
        queue.unsubscribe(sub)


@dataclass
class Service:
    """A running app: HTTP through the ASGI transport, parts through ``services``."""

    app: FastAPI
    http: httpx.AsyncClient
    services: Services

    async def submit(self, body: Mapping[str, Any]) -> str:
        resp = await self.http.post("/api/tasks/submit", json=body)
        assert resp.status_code == 200, resp.text
        task_id: str = resp.json()["task_id"]
        return task_id

    async def task(self, task_id: str) -> dict[str, Any]:
        resp = await self.http.get(f"/api/tasks/{task_id}")
        assert resp.status_code == 200, resp.text
        data: dict[str, Any] = resp.json()
        return data

    async def wait_task(
        self,
        task_id: str,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Waits on the task's events (no polling) until ``predicate`` holds for its view."""
        return await wait_on_queue(self.services, task_id, predicate, timeout)

    async def wait_final(self, task_id: str, timeout: float = 30.0) -> dict[str, Any]:
        return await self.wait_task(task_id, lambda t: t["status"] in FINAL, timeout)


@contextlib.asynccontextmanager
async def running_service(
    settings: Settings, builder: DraftBuilder | None = None
) -> AsyncIterator[Service]:
    app = create_app(settings, builder)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            yield Service(app, http, app.state.services)


async def until(condition: Callable[[], bool], timeout: float, step: float = 0.02) -> float:
    """Waits for a condition nothing announces (a restarted process); returns seconds taken."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(step)
    return time.monotonic() - started


class ServerProcess:
    """``python -m draftdl serve`` as a child process, for kill -9 tests."""

    def __init__(self, data_dir: Path, *args: str, **env: str) -> None:
        self.data_dir = data_dir
        self.args = args  # after ``serve``: --role worker
        self.port = free_port()
        self.env = {
            **os.environ,
            "DRAFTDL_DATA_DIR": str(data_dir),
            "DRAFTDL_PORT": str(self.port),
            "DRAFTDL_ARIA2_RPC_PORT": "0",
            "DRAFTDL_POLL_INTERVAL": "0.1",
            "DRAFTDL_PROGRESS_INTERVAL": "0.2",
            "DRAFTDL_FLUSH_INTERVAL": "0.3",
            "DRAFTDL_HEALTH_CHECK_INTERVAL": "0.5",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"server-{self.port}.log"
        self.base_url = f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 20.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "draftdl", "serve", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as http:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, self.log.read_text()
                with contextlib.suppress(httpx.TransportError):
                    resp = await http.get("/api/health")
                    body = resp.json() if resp.status_code == 200 else {}
                    if body and (body["role"] == "api" or body["aria2"]["running"]):
                        return
                await asyncio.sleep(0.05)
        raise AssertionError(f"server did not start: {self.log.read_text()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=10.0)


def aria2_pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


@dataclass
class LiveServer:
    """The app served by uvicorn on a loopback port, in the test's own event loop."""

    base_url: str
    services: Services

    def client(self, **headers: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=10.0)


@contextlib.asynccontextmanager
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    import uvicorn

    port = free_port()
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started or serving.done(), 20)
        assert server.started, "uvicorn did not start"
        yield LiveServer(f"http://127.0.0.1:{port}", app.state.services)
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 20)
