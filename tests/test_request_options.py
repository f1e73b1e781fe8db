"""Request options against the real service, a real aria2c and the real file server: headers,
proxies and caps reach the host as the job, its materials and the download rules say, and
secrets (cookies, authorizations, proxy passwords) never come back out of the API, the event
stream or the logs."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
from pathlib import Path
from typing import Any

import pytest
from httpx_sse import aconnect_sse

from draftdl.tasks.options import GUARDED
from fileserver import FileServer
from servers import Service, job, live_server, make_settings, running_service

COOKIE = "sessionid=" + secrets.token_hex(12)
BEARER = "Bearer " + secrets.token_hex(12)
PASSWORD = "pw-" + secrets.token_hex(6)
SECRETS = (COOKIE, COOKIE.split("=")[1], BEARER.split()[1], PASSWORD)


def assert_no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{where} shows a secret"


async def test_headers_reach_the_host_and_secrets_never_come_back(
    data_dir: Path, fileserver: FileServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="draftdl")
    rules = [
        {"match": "127.0.0.*", "headers": {"Accept-Language": "zh-CN", "Referer": "from-rule"}},
        {"match": "*.elsewhere.example", "headers": {"X-Never": "1"}},
    ]
    settings = make_settings(data_dir, download_rules=rules)
    slow, plain = "/slow/160K/headers-a.bin", "/size/8K/headers-b.bin"
    body = job([fileserver.url(f"{slow}?rate=80K"), fileserver.url(plain)], title="Cookie Jar")
    body["download_options"] = {
        "headers": {"User-Agent": "draftdl-test/1", "Authorization": BEARER}
    }
    body["materials"][0]["download_options"] = {
        "headers": {"Referer": "https://www.douyin.com/", "Cookie": COOKIE, "Authorization": None}
    }
    async with live_server(settings) as server, server.client() as http:
        resp = await http.post("/api/tasks/submit", json=body)
        assert resp.status_code == 200, resp.text
        task_id = resp.json()["task_id"]
        events: list[str] = []
        async with aconnect_sse(http, "GET", f"/api/tasks/{task_id}/progress/stream") as source:
            events += [f"{sse.event} {sse.data}" async for sse in source.aiter_sse()]
        task = (await http.get(f"/api/tasks/{task_id}")).json()
        listing = (await http.get("/api/tasks")).text
        stored = await server.services.db.load_task(task_id)
    assert task["status"] == "completed", task
    assert task["title"] == "Cookie Jar"
    assert any(e.startswith("task_progress") for e in events), events  # it was watched live

    first, second = fileserver.headers_for(slow), fileserver.headers_for(plain)
    assert first and second
    for headers in first:  # every request of the material's file: its own options on top
        assert {k: headers.get(k) for k in ("Referer", "Cookie", "User-Agent")} == {
            "Referer": "https://www.douyin.com/",
            "Cookie": COOKIE,
            "User-Agent": "draftdl-test/1",
        }
        assert headers["Accept-Language"] == "zh-CN" and headers["X-Draftdl-Fetch"] == "aria2c"
        assert "Authorization" not in headers and "X-Never" not in headers
    for headers in second:  # the job's and the rule's only
        assert headers["Referer"] == "from-rule" and headers["Authorization"] == BEARER
        assert headers["User-Agent"] == "draftdl-test/1" and "Cookie" not in headers
        assert headers["X-Draftdl-Fetch"] == "aria2c"

    assert_no_secret("GET /api/tasks/{id}", json.dumps(task))
    assert_no_secret("GET /api/tasks", listing)
    assert_no_secret("the event stream", "\n".join(events))
    assert "accepted task" in caplog.text  # the logs were captured
    assert_no_secret("the logs", caplog.text)
    assert stored is not None and COOKIE in stored.request_json  # stored as received


async def test_a_proxy_with_credentials_and_a_material_without_one(
    service: Service, fileserver: FileServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="draftdl")
    proxy = fileserver.base_url.replace("http://", f"http://me%40home:{PASSWORD}@")
    far = "http://cdn.invalid/size/4K/via-proxy.bin"  # reachable through the proxy only
    near = fileserver.url("/size/4K/direct.bin")
    body = job([far, near])
    body["download_options"] = {"proxy": proxy}
    body["materials"][1]["download_options"] = {"proxy": None}
    task = await service.wait_final(await service.submit(body))
    assert task["status"] == "completed", task
    assert fileserver.proxied_for(far) and set(fileserver.proxied_for(far)) == {far}
    sent = base64.b64encode(f"me@home:{PASSWORD}".encode()).decode()
    assert {h["Proxy-Authorization"] for h in fileserver.headers_for(far)} == {f"Basic {sent}"}
    assert fileserver.bytes_served("/size/4K/direct.bin") == 4096
    assert fileserver.proxied_for(near) == []
    assert_no_secret("the task", json.dumps(task))
    assert_no_secret("the logs", caplog.text)


async def test_download_rules_give_a_proxy_by_host(data_dir: Path, fileserver: FileServer) -> None:
    rules = [{"match": "*.invalid", "proxy": fileserver.base_url, "headers": {"Origin": "o"}}]
    async with running_service(make_settings(data_dir, download_rules=rules)) as svc:
        far = "http://media.cdn.invalid/size/2K/ruled.bin"
        body = job([far, fileserver.url("/size/2K/unruled.bin")])
        task = await svc.wait_final(await svc.submit(body))
    assert task["status"] == "completed", task
    assert fileserver.proxied_for(far) and fileserver.headers_for(far)[0]["Origin"] == "o"
    assert "Origin" not in fileserver.headers_for("/size/2K/unruled.bin")[0]


async def cap_while_downloading(svc: Service, task_id: str) -> str:
    """aria2's max-download-limit of the task's active download, a few ticks after it began."""
    view = await svc.wait_task(task_id, lambda t: t["files"][0]["status"] == "active")
    await asyncio.sleep(10 * svc.services.settings.poll_interval)  # caps are spread by then
    options = await svc.services.queue.monitor.client.call(
        "aria2.getOption", view["files"][0]["gid"]
    )
    cap: str = options.get("max-download-limit", "0")
    return cap


async def test_a_materials_cap_holds_its_file(service: Service, fileserver: FileServer) -> None:
    body = job([fileserver.url("/slow/400K/capped.bin?rate=200K")])
    body["materials"][0]["download_options"] = {"max_download_limit": "20K"}
    task_id = await service.submit(body)
    assert await cap_while_downloading(service, task_id) == str(20 * 1024)
    await service.http.post(f"/api/tasks/{task_id}/cancel")


async def test_the_lower_of_the_task_share_and_the_file_cap_holds(
    service: Service, fileserver: FileServer
) -> None:
    body = job([fileserver.url("/slow/400K/both.bin?rate=200K")], max_download_limit="1M")
    body["materials"][0]["download_options"] = {"max_download_limit": "20K"}
    task_id = await service.submit(body)
    try:
        assert await cap_while_downloading(service, task_id) == str(20 * 1024)
    finally:
        await service.http.post(f"/api/tasks/{task_id}/cancel")


async def test_behind_the_egress_guard_headers_go_and_proxies_are_refused(
    data_dir: Path, fileserver: FileServer
) -> None:
    settings = make_settings(data_dir, url_deny_networks=["10.0.0.0/8"])
    async with running_service(settings) as svc:
        refused = job([fileserver.url("/size/1K/no.bin")])
        refused["download_options"] = {"proxy": f"http://u:{PASSWORD}@proxy.example:3128"}
        refused["materials"][0]["download_options"] = {"proxy": "http://proxy.example:3128"}
        resp = await svc.http.post("/api/tasks/submit", json=refused)
        assert resp.status_code == 422, resp.text
        found = {p["path"]: p["msg"] for p in resp.json()["detail"]}
        assert found == {
            "download_options.proxy": GUARDED,
            "materials[0].download_options.proxy": GUARDED,
        }
        assert_no_secret("the 422", resp.text)
        body = job([fileserver.url("/size/2K/guarded.bin")])
        body["materials"][0]["download_options"] = {"headers": {"Cookie": COOKIE}}
        task = await svc.wait_final(await svc.submit(body))
    assert task["status"] == "completed", task
    assert fileserver.headers_for("/size/2K/guarded.bin")[0]["Cookie"] == COOKIE
    assert fileserver.bytes_served("/size/1K/no.bin") == 0


async def test_a_recovered_task_works_its_options_out_again(
    data_dir: Path, fileserver: FileServer
) -> None:
    path = "/slow/600K/recovered.bin"
    body = job([fileserver.url(f"{path}?rate=200K")])
    body["materials"][0]["download_options"] = {"headers": {"Cookie": COOKIE, "Referer": "r"}}
    async with running_service(make_settings(data_dir)) as svc:
        task_id = await svc.submit(body)
        await svc.wait_task(task_id, lambda t: t["progress"]["downloaded_size"] > 0)
    before = len(fileserver.headers_for(path))
    async with running_service(make_settings(data_dir)) as svc:  # a new aria2c: added again
        task = await svc.wait_final(task_id)
    assert task["status"] == "completed", task
    after = fileserver.headers_for(path)[before:]
    assert after and all(h["Cookie"] == COOKIE and h["Referer"] == "r" for h in after)


def test_job_schema_documents_the_options(tmp_path: Path) -> None:
    from draftdl.api.schemas import JobRequest

    job_model = JobRequest.model_validate(
        {**job(["http://h/a"]), "download_options": {"headers": {"Referer": "r"}}}
    )
    assert job_model.download_options is not None
    schema: dict[str, Any] = JobRequest.model_json_schema()
    options = schema["$defs"]["DownloadOptions"]
    assert set(options["properties"]) == {"headers", "proxy", "max_download_limit"}
    assert options["additionalProperties"] is False


async def test_a_replaced_link_keeps_its_materials_options_and_takes_its_hosts_rules(
    data_dir: Path, fileserver: FileServer
) -> None:
    rules = [{"match": "localhost", "headers": {"X-Rule": "for localhost"}}]
    async with running_service(make_settings(data_dir, download_rules=rules)) as svc:
        old = fileserver.url("/status/404/expired.bin")
        body = job([old])
        body["materials"][0]["download_options"] = {"headers": {"Referer": "m0"}}
        task_id = await svc.submit(body)
        assert (await svc.wait_final(task_id))["status"] == "failed"
        new = fileserver.url("/size/2K/renewed.bin").replace("127.0.0.1", "localhost")
        resp = await svc.http.post(f"/api/tasks/{task_id}/retry", json={"urls": {old: new}})
        assert resp.status_code == 200, resp.text
        task = await svc.wait_final(task_id)
    assert task["status"] == "completed", task
    (before,) = fileserver.headers_for("/status/404/expired.bin")
    assert before["Referer"] == "m0" and "X-Rule" not in before
    after = fileserver.headers_for("/size/2K/renewed.bin")
    assert after and all(h["Referer"] == "m0" and h["X-Rule"] == "for localhost" for h in after)


async def test_a_file_capped_below_the_stall_floor_is_no_stall(
    data_dir: Path, fileserver: FileServer
) -> None:
    settings = make_settings(data_dir, lowest_speed="100K", stall_timeout=1.0)
    async with running_service(settings) as svc:
        body = job([fileserver.url("/size/200K/crawl.bin")])
        body["materials"][0]["download_options"] = {"max_download_limit": "40K"}
        task = await svc.wait_final(await svc.submit(body), timeout=60)
    assert task["status"] == "completed", task["error_message"]
    assert task["files"][0]["attempts"] == 1, task["files"]
