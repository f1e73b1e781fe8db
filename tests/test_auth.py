"""With ``api_token`` set, every door refuses a missing or wrong token and opens to the right
one: the REST routes, the event stream, the Socket.IO handshake, the zip, the docs."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from pydantic import SecretStr

from draftdl.api.deps import configured_token, token_matches
from draftdl.app import create_app
from fileserver import FileServer
from servers import LiveServer, job, live_server, load_example, make_settings

TOKEN = "s3cret-token-for-tests"
RIGHT: dict[str, str | bytes] = {"Authorization": f"Bearer {TOKEN}"}
Headers = dict[str, str | bytes]
WRONG_ANSWERS: list[tuple[Headers, dict[str, str]]] = [
    ({}, {}),  # nothing
    ({"Authorization": "Bearer nope"}, {}),
    ({"Authorization": f"Bearer {TOKEN}x"}, {}),
    ({"Authorization": f"Basic {TOKEN}"}, {}),
    ({"Authorization": "Bearer"}, {}),
    ({"Authorization": "Bearer s3crét".encode()}, {}),  # non-ASCII: refused, not a 500
    ({}, {"token": "nope"}),
    ({}, {"token": ""}),
]
DOCS = ["/docs", "/redoc", "/openapi.json"]
# In the query where browsers cannot send headers (EventSource, the docs pages).
QUERY_TOKEN_OK = {"/api/tasks/{task_id}/progress/stream", "/api/tasks/stream", *DOCS}
ENDLESS = {"/api/tasks/stream"}  # read up to its first event  # browsers cannot send headers


@pytest.fixture
async def server(data_dir: Path, fileserver: FileServer) -> AsyncIterator[LiveServer]:
    async with live_server(make_settings(data_dir, api_token=TOKEN)) as live:
        yield live


async def completed_task(server: LiveServer, fileserver: FileServer) -> str:
    async with server.client(**RIGHT) as http:
        resp = await http.post(
            "/api/tasks/submit", json=load_example("basic-draft.json", fileserver.base_url)
        )
        assert resp.status_code == 200, resp.text
        task_id: str = resp.json()["task_id"]
    queue = server.services.queue
    sub = queue.subscribe(task_id)
    try:
        while not (await queue.get_task(task_id)).status.final:
            await sub.get()
    finally:
        queue.unsubscribe(sub)
    assert (await queue.get_task(task_id)).status.value == "completed"
    return task_id


def routes(tmp_path: Path) -> list[tuple[str, str]]:
    """Every operation of the app, from its own document, and the docs pages."""
    doc = create_app(make_settings(tmp_path, api_token=TOKEN)).openapi()
    ops = [(method.upper(), path) for path, item in doc["paths"].items() for method in item]
    assert len(ops) == 18
    ops.sort(key=lambda op: op[0] == "DELETE")  # last: the other routes need the task
    return [*ops, *(("GET", page) for page in DOCS)]


# Routes whose right-token answer is 200 on these tasks; the controls answer what the task's
# state allows (a 409 for pausing a completed task, a 422 for a missing body): never 401.
PLAIN = {"GET", "POST /api/tasks/submit", "POST /api/tasks/{task_id}/cancel"}
NEEDS_INPUT = {"GET /api/tasks/submit_with_url"}  # a 422 without its url: past the token


async def send(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    task_id: str,
    headers: Headers,
    params: dict[str, str],
) -> httpx.Response:
    url = path.replace("{task_id}", task_id)
    body: dict[str, Any] = {}
    if path.endswith("/submit"):
        body["json"] = job([])
    if path in ENDLESS:
        request = http.build_request(method, url, headers=headers, params=params)
        resp = await http.send(request, stream=True)
        try:
            if resp.status_code == 200:
                async for line in resp.aiter_lines():
                    assert line == "event: tasks_subscribed"
                    break
            else:
                await resp.aread()
        finally:
            await resp.aclose()
        return resp
    return await http.request(method, url, headers=headers, params=params, **body)


async def test_every_route_needs_the_token(
    server: LiveServer, fileserver: FileServer, tmp_path: Path
) -> None:
    done = await completed_task(server, fileserver)
    async with server.client(**RIGHT) as http:
        slow = job([fileserver.url("/slow/8M/s.bin?rate=64K")])
        running = (await http.post("/api/tasks/submit", json=slow)).json()["task_id"]
    async with server.client() as http:
        for method, path in routes(tmp_path):
            task_id = running if path.endswith("/cancel") else done
            for headers, params in WRONG_ANSWERS:
                resp = await send(http, method, path, task_id, headers, params)
                assert resp.status_code == 401, (method, path, headers, params, resp.text)
                assert resp.headers["www-authenticate"] == "Bearer"
                assert "API token" in resp.json()["detail"]
                assert TOKEN not in resp.text
            # The right token in the header opens every route.
            resp = await send(http, method, path, task_id, RIGHT, {})
            plain = method in PLAIN or f"{method} {path}" in PLAIN
            if plain and f"{method} {path}" not in NEEDS_INPUT:
                assert resp.status_code == 200, (method, path, resp.text)
            else:
                assert resp.status_code in (200, 409, 415, 422), (method, path, resp.text)
            # In the query only where a browser cannot send a header.
            resp = await send(http, method, path, task_id, {}, {"token": TOKEN})
            expected = 200 if path in QUERY_TOKEN_OK else 401
            assert resp.status_code == expected, (method, path, resp.text)


async def test_the_docs_page_hands_its_token_on(server: LiveServer) -> None:
    async with server.client() as http:
        for page in ("/docs", "/redoc"):
            resp = await http.get(page, params={"token": TOKEN})
            assert resp.status_code == 200
            assert f"/openapi.json?token={TOKEN}" in resp.text
            assert resp.headers["referrer-policy"] == "no-referrer"
            resp = await http.get(page, headers=RIGHT)
            assert resp.status_code == 200 and "?token=" not in resp.text
        resp = await http.get("/openapi.json", params={"token": TOKEN})
        assert resp.status_code == 200 and "/api/tasks/submit" in resp.json()["paths"]


async def test_docs_are_open_without_a_token(data_dir: Path) -> None:
    async with live_server(make_settings(data_dir)) as live, live.client() as http:
        for page in DOCS:
            assert (await http.get(page)).status_code == 200
        spec = (await http.get("/openapi.json")).json()
        assert "401" not in json.dumps(spec["paths"])
        # A ?token= without a configured token is not put into the page.
        resp = await http.get("/docs", params={"token": "'</script><script>alert(1)//"})
        assert resp.status_code == 200 and "alert(1)" not in resp.text


@contextlib.asynccontextmanager
async def socket(server: LiveServer, **kwargs: Any) -> AsyncIterator[socketio.AsyncClient]:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(
        server.base_url, socketio_path="/socket.io", transports=["websocket"], **kwargs
    )
    try:
        yield sio
    finally:
        await sio.disconnect()


async def test_socketio_handshake_needs_the_token(server: LiveServer) -> None:
    for kwargs in (
        {},
        {"auth": {"token": "nope"}},
        {"auth": {"token": ""}},
        {"auth": {"token": "s3crét"}},
        {"headers": {"Authorization": "Bearer nope"}},
    ):
        with pytest.raises(socketio.exceptions.ConnectionError):
            async with socket(server, **kwargs):
                pass
    for kwargs in ({"auth": {"token": TOKEN}}, {"headers": RIGHT}):
        async with socket(server, **kwargs) as sio:
            assert sio.connected


def test_an_empty_token_is_no_token(tmp_path: Path) -> None:
    """Even when an empty token reaches the settings, it never means "an empty token fits"."""
    settings = make_settings(tmp_path)
    settings.api_token = SecretStr("")
    assert configured_token(settings) is None
    assert token_matches(settings, None) and token_matches(settings, "anything")
    with_token = make_settings(tmp_path, api_token=TOKEN)
    assert configured_token(with_token) == TOKEN
    assert not token_matches(with_token, "") and not token_matches(with_token, None)
    assert not token_matches(with_token, "s3crét") and not token_matches(with_token, "\ud800")
    assert token_matches(with_token, TOKEN)
