"""draftdl for AI agents: the MCP server through the SDK's own client, against a live server.

Both ways an agent host reaches it: ``python -m draftdl mcp --server URL`` as a stdio
subprocess, and ``/mcp`` of the server itself over streamable HTTP. Real aria2c, real
downloads from the local file server, everything on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from mcp.types import CallToolResult, TextContent, TextResourceContents

from draftdl.mcp.resources import EXAMPLE_NOTES
from fileserver import FileServer
from servers import EXAMPLES, FINAL, LiveServer, Service, job, live_server, make_settings

TOKEN = "mcp-test-token"
TOOLS = {
    "submit_job",
    "get_task",
    "list_tasks",
    "cancel_task",
    "pause_task",
    "resume_task",
    "retry_task",
    "health",
}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@pytest.fixture
async def server(data_dir: Path) -> AsyncIterator[LiveServer]:
    async with live_server(make_settings(data_dir, api_token=TOKEN)) as srv:
        yield srv


@contextlib.asynccontextmanager
async def stdio_agent(base_url: str, token: str | None = TOKEN) -> AsyncIterator[Client]:
    """What an agent host does with the README's config: spawn ``draftdl mcp``."""
    env = {"DRAFTDL_SERVER": base_url}
    if "PYTHONPATH" in os.environ:  # the draftdl under test, wherever the tests took it from
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    if token is not None:
        env["DRAFTDL_API_TOKEN"] = token
    params = StdioServerParameters(command=sys.executable, args=["-m", "draftdl", "mcp"], env=env)
    async with Client(params) as client:
        yield client


@contextlib.asynccontextmanager
async def http_agent(base_url: str, token: str = TOKEN) -> AsyncIterator[Client]:
    """An agent host configured with the URL of /mcp and the token."""
    headers = {"Authorization": f"Bearer {token}"}
    # The SDK's own HTTP client (httpx2); one handed to the transport is ours to close.
    async with (
        create_mcp_http_client(headers=headers) as http,
        Client(streamable_http_client(f"{base_url}/mcp", http_client=http)) as client,
    ):
        yield client


AGENTS = {"stdio": stdio_agent, "http": http_agent}


@pytest.fixture(params=sorted(AGENTS))
def kind(request: pytest.FixtureRequest) -> str:
    """How the agent reaches draftdl. Each test enters its client itself: the SDK's task
    groups must be left in the task that entered them, which a fixture's teardown is not."""
    name: str = request.param
    return name


def connect(kind: str, server: LiveServer) -> contextlib.AbstractAsyncContextManager[Client]:
    return AGENTS[kind](server.base_url)


def text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool's structured result; a tool error fails the test with its text."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, text(result)
    assert isinstance(result.structured_content, dict), result
    # The same JSON as text, for hosts that read only the content.
    assert json.loads(text(result)) == result.structured_content
    return result.structured_content


async def read(client: Client, uri: str) -> str:
    result = await client.read_resource(uri)
    (content,) = result.contents
    assert isinstance(content, TextResourceContents)
    return content.text


async def wait_final(client: Client, task_id: str, rounds: int = 10) -> dict[str, Any]:
    """The agent's loop: get_task with a wait, again until the task ends."""
    for _ in range(rounds):
        task = await call(client, "get_task", task_id=task_id, wait_seconds=10)
        if task["status"] in FINAL:
            return task
    raise AssertionError(f"task {task_id} did not end: {task}")


async def test_tools_and_resources_are_listed(kind: str, server: LiveServer) -> None:
    async with connect(kind, server) as agent:
        tools = {t.name: t for t in (await agent.list_tools()).tools}
        assert set(tools) == TOOLS
        assert tools["submit_job"].input_schema["required"] == ["job"]
        wait = tools["get_task"].input_schema["properties"]["wait_seconds"]
        assert (wait["minimum"], wait["maximum"]) == (0, 60)
        assert tools["get_task"].annotations and tools["get_task"].annotations.read_only_hint
        uris = {str(r.uri) for r in (await agent.list_resources()).resources}
        assert uris == {"draftdl://job-format"} | {f"draftdl://examples/{n}" for n in EXAMPLE_NOTES}
        assert "materials[0].path" in await read(agent, "draftdl://job-format")


async def test_an_agent_submits_a_job_and_reads_the_draft(
    kind: str, server: LiveServer, fileserver: FileServer
) -> None:
    async with connect(kind, server) as agent:
        # What the format resource tells it: take an example, put real URLs in it.
        example = await read(agent, "draftdl://examples/basic-draft.json")
        body = json.loads(example.replace("{{BASE_URL}}", fileserver.base_url))
        submitted = await call(agent, "submit_job", job=body)
        assert submitted["status"] == "pending" and submitted["total_files"] == 3
        task = await wait_final(agent, submitted["task_id"])
        assert task["status"] == "completed", task
        draft = Path(task["draft_path"])
        assert draft.is_dir() and (draft / "draft_content.json").is_file()
        assert {f["status"] for f in task["files"]} == {"complete"}


async def test_submit_can_wait_for_the_end(kind: str, server: LiveServer) -> None:
    async with connect(kind, server) as agent:
        example = await read(agent, "draftdl://examples/seed-minimal.json")
        answer = await call(agent, "submit_job", job=json.loads(example), wait_seconds=30)
        assert answer["task"]["status"] == "completed", answer
        assert Path(answer["task"]["draft_path"]).is_dir()


async def test_a_bad_job_is_a_tool_error_naming_its_path(kind: str, server: LiveServer) -> None:
    async with connect(kind, server) as agent:
        result = await agent.call_tool("submit_job", {"job": job(["ftp://example.invalid/a.mp4"])})
        assert result.is_error
        assert "materials[0].path" in text(result) and "(HTTP 422)" in text(result), text(result)
        listed = await call(agent, "list_tasks")
        assert listed["total"] == 0  # nothing stored


async def test_errors_carry_the_servers_message(kind: str, server: LiveServer) -> None:
    async with connect(kind, server) as agent:
        result = await agent.call_tool("get_task", {"task_id": "no-such-task"})
        assert result.is_error and "(HTTP 404)" in text(result), text(result)
        result = await agent.call_tool("get_task", {"task_id": "../health"})
        assert result.is_error and "task_id" in text(result)  # one path segment, always
        result = await agent.call_tool("get_task", {"task_id": "x", "wait_seconds": 61})
        assert result.is_error and "wait_seconds" in text(result)


async def test_health(kind: str, server: LiveServer) -> None:
    async with connect(kind, server) as agent:
        health = await call(agent, "health")
        assert health["status"] == "ok" and health["aria2"]["running"]


async def test_steering_a_task(kind: str, server: LiveServer, fileserver: FileServer) -> None:
    async with connect(kind, server) as agent:
        other = await call(agent, "submit_job", job=job([], title="other"), wait_seconds=30)
        assert other["task"]["status"] == "completed"
        url = f"{fileserver.base_url}/slow/4M/a.mp4?rate=65536"
        task_id = (await call(agent, "submit_job", job=job([url], title="steered")))["task_id"]
        started = time.monotonic()  # a long-poll on a running task: it waits it out
        running = await call(agent, "get_task", task_id=task_id, wait_seconds=1)
        assert running["status"] in ("pending", "downloading")
        assert time.monotonic() - started >= 0.9
        paused = await call(agent, "pause_task", task_id=task_id)
        assert paused["status"] == "paused"
        # The API's 409, in its own words.
        result = await agent.call_tool("pause_task", {"task_id": task_id})
        assert result.is_error and "(HTTP 409)" in text(result) and "paused" in text(result)
        for query in ({"status": ["paused"]}, {"q": "STEER"}, {"status": ["failed"], "q": "e"}):
            listed = await call(agent, "list_tasks", **query)
            expected = [] if "failed" in query.get("status", ()) else [task_id]
            assert [t["task_id"] for t in listed["tasks"]] == expected, query
        page = await call(agent, "list_tasks", limit=1, offset=1)  # newest first
        assert [t["task_id"] for t in page["tasks"]] == [other["task_id"]]
        assert (page["total"], page["limit"], page["offset"]) == (2, 1, 1)
        assert (await call(agent, "resume_task", task_id=task_id))["status"] == "pending"
        cancelled = await call(agent, "cancel_task", task_id=task_id, keep_files=True)
        assert cancelled["status"] == "cancelled"
        (partial,) = (await call(agent, "get_task", task_id=task_id))["files"]
        assert Path(partial["file_path"]).exists()  # kept, as asked
        new_url = f"{fileserver.base_url}/size/64K/a.mp4"
        retried = await call(agent, "retry_task", task_id=task_id, urls={url: new_url})
        assert retried["retried_files"] == 1
        task = await wait_final(agent, task_id)
        assert task["status"] == "completed", task
        assert task["files"][0]["url"] == new_url


async def test_the_job_format_is_the_openapi_schema(kind: str, server: LiveServer) -> None:
    async with connect(kind, server) as agent:
        doc = await read(agent, "draftdl://job-format")
        match = re.search(r"```json\n(.*)\n```", doc, re.S)
        assert match, doc
        schema = json.loads(match.group(1))
        async with server.client(Authorization=f"Bearer {TOKEN}") as http:
            components = (await http.get("/openapi.json")).json()["components"]["schemas"]
        prefix = "#/components/schemas/"
        served = json.loads(json.dumps(components).replace(prefix, "#/$defs/"))
        assert {k: v for k, v in schema.items() if k not in ("$schema", "$defs")} == served[
            "JobRequest"
        ]
        assert schema["$defs"] == {name: served[name] for name in schema["$defs"]}
        assert "JobMaterial" in schema["$defs"] and "TaskView" not in schema["$defs"]


def test_packaged_examples_are_the_shared_ones() -> None:
    packaged = Path(__import__("draftdl.mcp").__file__).parent / "mcp" / "examples"
    assert sorted(p.name for p in packaged.iterdir()) == sorted(EXAMPLE_NOTES)
    for name in EXAMPLE_NOTES:
        assert (packaged / name).read_bytes() == (EXAMPLES / name).read_bytes()


async def test_stdio_with_a_wrong_token_says_what_to_do(server: LiveServer) -> None:
    async with stdio_agent(server.base_url, token="wrong") as client:
        result = await client.call_tool("health", {})
    assert result.is_error and "(HTTP 401)" in text(result)
    assert "DRAFTDL_API_TOKEN" in text(result)


async def test_stdio_without_a_server_answers_tool_errors(data_dir: Path) -> None:
    async with stdio_agent("http://127.0.0.1:9", token=None) as client:
        result = await client.call_tool("health", {})
    assert result.is_error and "cannot reach draftdl at http://127.0.0.1:9" in text(result)


async def test_mcp_needs_the_token(server: LiveServer) -> None:
    async with server.client(**MCP_HEADERS) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            resp = await http.post("/mcp", json=INITIALIZE, headers=headers)
            assert resp.status_code == 401, resp.text
            assert resp.headers["www-authenticate"] == "Bearer"
            assert "API token" in resp.json()["message"]
        resp = await http.get("/mcp")
        assert resp.status_code == 401
        resp = await http.post(
            "/mcp", json=INITIALIZE, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["result"]["serverInfo"]["name"] == "draftdl"


async def test_mcp_answers_only_the_hosts_we_serve(server: LiveServer) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", **MCP_HEADERS}
    async with server.client(**auth) as http:
        resp = await http.post("/mcp", json=INITIALIZE, headers={"Host": "evil.example"})
        assert resp.status_code == 400, resp.text
        assert "evil.example" in resp.json()["message"]
        # A page of another site cannot drive it through the user's browser either.
        resp = await http.post("/mcp", json=INITIALIZE, headers={"Origin": "http://evil.example"})
        assert resp.status_code == 403, resp.text
        resp = await http.post("/mcp", json=INITIALIZE, headers={"Host": "localhost:1"})
        assert resp.status_code == 200, resp.text


async def test_mcp_without_a_token_set_is_open_like_the_api(data_dir: Path) -> None:
    async with live_server(make_settings(data_dir)) as srv, srv.client(**MCP_HEADERS) as http:
        resp = await http.post("/mcp", json=INITIALIZE)
        assert resp.status_code == 200, resp.text


async def test_tools_on_mcp_pass_the_apis_own_token_check(server: LiveServer) -> None:
    """The door checks the token, and each tool's in-process API call is checked again, as
    any client's: it carries the caller's own token."""
    from draftdl.api import deps

    presented: list[str | None] = []
    check = deps.token_matches

    def spy(settings: Any, token: str | None) -> bool:
        presented.append(token)
        return check(settings, token)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(deps, "token_matches", spy)
        async with http_agent(server.base_url) as client:
            presented.clear()  # the handshake's requests
            assert (await call(client, "health"))["status"] == "ok"
    # The /mcp requests (the SDK's client may send more than one), then GET /api/health.
    assert len(presented) >= 2 and set(presented) == {TOKEN}, presented


async def test_mcp_lives_with_an_app_whose_lifespan_ends_in_another_task(
    service: Service,
) -> None:
    """The suite's ``service`` fixture starts the app in its setup and stops it in its
    teardown, two tasks: the SDK's task group must not mind (it lives in a task of its own)."""
    resp = await service.http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert resp.status_code == 200, resp.text
    message = {"jsonrpc": "2.0", "id": 2, "method": "tools/call"}
    message["params"] = {"name": "health", "arguments": {}}
    headers = {**MCP_HEADERS, "MCP-Protocol-Version": "2025-06-18"}
    resp = await service.http.post("/mcp", json=message, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["result"]["structuredContent"]["status"] == "ok"
