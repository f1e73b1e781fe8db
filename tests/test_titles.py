"""Titles and finding tasks: every answer carries the rule group's title; ``GET /api/tasks``
searches it (``q``, in SQL, any case, ``%`` and ``_`` taken literally) and takes several
statuses."""

from __future__ import annotations

from typing import Any

import pytest

from draftdl.model.task import MAX_TITLE
from fileserver import FileServer
from servers import Service, job


async def listed(service: Service, **params: Any) -> dict[str, Any]:
    resp = await service.http.get("/api/tasks", params=params)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def titles(listing: dict[str, Any]) -> list[str]:
    return [t["title"] for t in listing["tasks"]]


async def test_titles_are_shown_and_searched(service: Service) -> None:
    names = ["Über Straße 2024", "über alles", "100% done", "100x done", "a_b", "axb", "视频 A"]
    for name in names:
        await service.wait_final(await service.submit(job([], title=name)))
    untitled = job([])
    del untitled["ruleGroup"]["title"]
    untitled_id = await service.submit(untitled)
    numbered = job([])
    numbered["ruleGroup"]["title"] = 2024
    await service.submit(numbered)

    view = await service.task(untitled_id)
    assert view["title"] == ""
    everything = await listed(service, limit=100)
    assert titles(everything) == ["2024", "", *reversed(names)]

    assert titles(await listed(service, q="ÜBER")) == ["über alles", "Über Straße 2024"]
    assert titles(await listed(service, q="straße")) == ["Über Straße 2024"]
    assert titles(await listed(service, q="%")) == ["100% done"]
    assert titles(await listed(service, q="_")) == ["a_b"]
    assert titles(await listed(service, q="视频")) == ["视频 A"]
    assert titles(await listed(service, q="2024")) == ["2024", "Über Straße 2024"]
    page = await listed(service, q="done", limit=1, offset=1)
    assert titles(page) == ["100% done"] and page["total"] == 2  # counted in SQL
    assert (await listed(service, q="nothing like it"))["total"] == 0
    assert titles(await listed(service, q="")) == titles(everything)[:20]

    resp = await service.http.get("/api/tasks", params={"q": "x" * 201})
    assert resp.status_code == 422, resp.text
    assert (await listed(service, q="x" * 200))["total"] == 0


async def test_a_title_is_kept_short_and_clean(service: Service) -> None:
    body = job([])
    body["ruleGroup"]["title"] = "视" * (MAX_TITLE + 50) + "\x00"
    long_id = await service.submit(body)
    body["ruleGroup"]["title"] = "a\x00b"
    nul_id = await service.submit(body)
    body["ruleGroup"]["title"] = {"title": "an object"}
    odd_id = await service.submit(body)
    assert (await service.task(long_id))["title"] == "视" * MAX_TITLE
    assert (await service.task(nul_id))["title"] == "ab"
    assert (await service.task(odd_id))["title"] == ""
    stored = await service.services.db.load_task(nul_id)
    assert stored is not None and stored.title == "ab"


async def test_several_statuses(service: Service, fileserver: FileServer) -> None:
    done = await service.submit(job([], title="done"))
    failed = await service.submit(job([fileserver.url("/status/404/gone.bin")], title="failed"))
    slow = await service.submit(job([fileserver.url("/slow/1M/s.bin?rate=10K")], title="slow"))
    for task_id in (done, failed):
        await service.wait_final(task_id)
    await service.http.post(f"/api/tasks/{slow}/cancel")

    assert titles(await listed(service, status="failed,cancelled")) == ["slow", "failed"]
    both = await service.http.get("/api/tasks?status=completed&status=cancelled")
    assert titles(both.json()) == ["slow", "done"]
    assert titles(await listed(service, status=" Failed , ")) == ["failed"]
    assert titles(await listed(service, status="failed", q="FAIL")) == ["failed"]
    assert (await listed(service, status="failed", q="slow"))["total"] == 0


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("status=finished", "'finished'"),
        ("status=failed,nope", "'nope'"),
        ("status=a&status=failed,%25", "'a', '%'"),
    ],
)
async def test_an_unknown_status_is_named(service: Service, query: str, named: str) -> None:
    resp = await service.http.get(f"/api/tasks?{query}")
    assert resp.status_code == 422, resp.text
    (problem,) = resp.json()["detail"]
    assert problem["loc"] == ["query", "status"]
    assert problem["msg"].startswith(f"unknown status {named}; the states are pending, ")
