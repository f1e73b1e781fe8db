"""The example n8n flow, replayed against a real server: its nodes run as n8n would run them
(the node types and expression forms it uses; anything else fails the test)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from fileserver import FileServer
from servers import LiveServer, live_server, make_settings

FLOW = Path(__file__).resolve().parents[1] / "examples" / "integrations" / "n8n-draft.json"
TOKEN = "n8n-t0ken"
EXPR = re.compile(r"\{\{\s*(.+?)\s*\}\}")
NODE_REF = re.compile(r"^\$\('([^']+)'\)\.item\.json\.(\w+)$")
JSON_REF = re.compile(r"^\$json\.(\w+)$")
MAX_STEPS = 40


class Replay:
    def __init__(self, flow: dict[str, Any], http: httpx.AsyncClient) -> None:
        self.nodes = {n["name"]: n for n in flow["nodes"]}
        self.connections = flow["connections"]
        self.http = http
        self.out: dict[str, dict[str, Any]] = {}  # each node's last output item
        self.runs: list[str] = []

    def value(self, text: Any, item: dict[str, Any]) -> Any:
        if not isinstance(text, str) or not text.startswith("="):
            return text

        def one(match: re.Match[str]) -> str:
            expr = match.group(1)
            if m := NODE_REF.match(expr):
                got = self.out[m.group(1)][m.group(2)]
            elif m := JSON_REF.match(expr):
                got = item.get(m.group(1))
            else:
                raise AssertionError(f"expression not replayed: {expr}")
            return "" if got is None else str(got)

        return EXPR.sub(one, text[1:])

    async def run(self, start: str) -> dict[str, Any]:
        todo: list[tuple[str, dict[str, Any]]] = [(start, {})]
        last: dict[str, Any] = {}
        while todo:
            assert len(self.runs) < MAX_STEPS, self.runs
            name, item = todo.pop(0)
            node = self.nodes[name]
            self.runs.append(name)
            output, branch = await self.step(node, item)
            self.out[name] = output
            last = output
            outputs = self.connections.get(name, {}).get("main", [])
            if branch < len(outputs):
                todo += [(c["node"], output) for c in outputs[branch]]
        return last

    async def step(self, node: dict[str, Any], item: dict[str, Any]) -> tuple[dict[str, Any], int]:
        kind, p = node["type"], node["parameters"]
        if kind == "n8n-nodes-base.manualTrigger":
            return {}, 0
        if kind == "n8n-nodes-base.set":
            values = p["assignments"]["assignments"]
            return {a["name"]: self.value(a["value"], item) for a in values}, 0
        if kind == "n8n-nodes-base.if":
            conditions = p["conditions"]
            results = []
            for c in conditions["conditions"]:
                assert c["operator"] == {"type": "string", "operation": "equals"}
                results.append(self.value(c["leftValue"], item) == c["rightValue"])
            ok = any(results) if conditions["combinator"] == "or" else all(results)
            return item, 0 if ok else 1
        if kind == "n8n-nodes-base.httpRequest":
            assert p["authentication"] == "genericCredentialType"
            assert p["genericAuthType"] == "httpBearerAuth"
            params = {
                q["name"]: self.value(q["value"], item)
                for q in p.get("queryParameters", {}).get("parameters", [])
            }
            body = None
            if p.get("sendBody"):
                assert p["specifyBody"] == "json"
                body = json.loads(self.value(p["jsonBody"], item))
            resp = await self.http.request(
                p["method"],
                self.value(p["url"], item),
                params=params if p.get("sendQuery") else None,
                json=body,
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=p["options"]["timeout"] / 1000,
            )
            assert resp.status_code == 200, resp.text  # n8n stops the flow on an error
            answer: dict[str, Any] = resp.json()
            return answer, 0
        raise AssertionError(f"node type not replayed: {kind}")


def flow_for(live: LiveServer, media_url: str) -> dict[str, Any]:
    flow: dict[str, Any] = json.loads(FLOW.read_text(encoding="utf-8"))
    settings = next(n for n in flow["nodes"] if n["name"] == "Settings")
    for a in settings["parameters"]["assignments"]["assignments"]:
        a["value"] = {"base_url": live.base_url, "media_url": media_url}[a["name"]]
    return flow


async def test_the_n8n_flow_reads_the_draft_path(data_dir: Path, fileserver: FileServer) -> None:
    settings = make_settings(data_dir, api_token=TOKEN)
    async with live_server(settings) as live, httpx.AsyncClient() as http:
        replay = Replay(flow_for(live, fileserver.url("/media/clip.mp4")), http)
        result = await replay.run("Start")
    assert result["status"] == "completed", result
    assert Path(result["draft_path"]).is_dir()
    assert replay.runs[:4] == ["Start", "Settings", "Submit job", "Wait for task"]
    assert replay.runs[-2:] == ["Finished?", "Draft path"]


async def test_the_n8n_flow_ends_on_a_failure_with_its_message(
    data_dir: Path, fileserver: FileServer
) -> None:
    settings = make_settings(data_dir, api_token=TOKEN)
    async with live_server(settings) as live, httpx.AsyncClient() as http:
        replay = Replay(flow_for(live, fileserver.url("/status/404/gone.mp4")), http)
        result = await replay.run("Start")
    assert result["status"] == "failed" and result["draft_path"] == ""
    assert "404" in result["error_message"]
