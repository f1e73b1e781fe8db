"""Where media may come from: local folders named in settings, never this service's ports."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from draftcheck import check_draft
from draftdl.errors import RequestRejected
from draftdl.sources import NO_LOCAL, OUTSIDE, SourcePolicy
from draftdl.tasks.validation import validate_job
from fileserver import FileServer
from servers import job, make_settings, running_service

MEDIA = Path(__file__).parent / "data" / "media"


def refusal(body: dict[str, Any], policy: SourcePolicy) -> dict[str, str]:
    with pytest.raises(RequestRejected) as info:
        validate_job(body, max_files=10, policy=policy)
    return {p.path: p.msg for p in info.value.problems}


def test_no_local_path_is_accepted_by_default(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    for path in (str(secret), "/etc/passwd", str(tmp_path / "missing.mp4")):
        assert refusal(job([path]), SourcePolicy()) == {"materials[0].path": NO_LOCAL}


def test_outside_the_roots_the_answer_does_not_tell_what_exists(tmp_path: Path) -> None:
    root = tmp_path / "media"
    root.mkdir()
    (tmp_path / "exists.mp4").write_bytes(b"x")
    (root / "link.mp4").symlink_to(tmp_path / "exists.mp4")
    policy = SourcePolicy.build([root], [], [])
    paths = [
        str(tmp_path / "exists.mp4"),
        str(tmp_path / "missing.mp4"),
        str(root / ".." / "exists.mp4"),  # .. is resolved before the check
        str(root / ".." / "missing.mp4"),
        str(root / "link.mp4"),  # a symlink out of the root is outside
        "/etc/passwd",
        "relative/../../etc/passwd",
        "C:\\Windows\\win.ini",
    ]
    answers = {p: refusal(job([p]), policy)["materials[0].path"] for p in paths}
    assert set(answers.values()) == {OUTSIDE}


def test_inside_a_root_a_missing_file_is_named(tmp_path: Path) -> None:
    policy = SourcePolicy.build([tmp_path], [], [])
    found = refusal(job([str(tmp_path / "gone.mp4")]), policy)
    assert found == {
        "materials[0].path": f"local file {str(tmp_path / 'gone.mp4')!r} does not exist"
    }


def test_test_data_paths_follow_the_same_rule(tmp_path: Path) -> None:
    body = job(["http://h/a.mp4"])
    body["testData"] = {"items": [{"type": "clip", "data": {"path": "/etc/hostname"}}]}
    assert refusal(body, SourcePolicy.build([tmp_path], [], [])) == {
        "testData.items[0].data.path": OUTSIDE
    }


def test_urls_to_our_own_ports_are_refused() -> None:
    policy = SourcePolicy.build([], [8000, 6800], [])
    for url in (
        "http://127.0.0.1:8000/api/tasks",
        "http://localhost:6800/jsonrpc",
        "http://[::1]:8000/x",
        "http://0.0.0.0:6800/jsonrpc",
        "http://127.1.2.3:8000/x",
    ):
        msg = refusal(job([url]), policy)["materials[0].path"]
        assert "draftdl's own service" in msg, url
    ok = job(["http://127.0.0.1:8001/x.mp4", "http://example.invalid:8000/x.mp4"])
    lookups: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["192.0.2.10"]

    policy = SourcePolicy.build([], [8000, 6800], [], resolver)
    assert len(validate_job(ok, max_files=10, policy=policy).urls) == 2
    assert lookups == ["example.invalid"]  # only a name on one of our ports is looked up


def test_denied_networks_are_checked_on_the_resolved_address() -> None:
    resolved = {"cdn.example": ["203.0.113.5"], "intranet.example": ["10.1.2.3"]}
    policy = SourcePolicy.build(
        [], [], ["10.0.0.0/8", "fd00::/8"], lambda host, port: resolved.get(host, [])
    )
    body = job(
        [
            "http://cdn.example/a.mp4",
            "http://intranet.example/b.mp4",
            "http://10.9.9.9/c.mp4",
            "http://[fd12::1]/d.mp4",
        ]
    )
    found = refusal(body, policy)
    assert set(found) == {"materials[1].path", "materials[2].path", "materials[3].path"}
    assert "10.0.0.0/8" in found["materials[1].path"]
    assert "url_deny_networks" in found["materials[2].path"]


async def test_a_local_file_inside_a_root_builds_and_nothing_else_is_linked(
    tmp_path: Path,
) -> None:
    root = tmp_path / "media"
    root.mkdir()
    os.link(MEDIA / "clip.mp4", root / "clip.mp4")
    settings = make_settings(tmp_path / "data", local_media_roots=[root])
    async with running_service(settings) as svc:
        body = job([str(root / "clip.mp4")])
        body["testData"] = {"items": [{"type": "clip", "data": {"start": 0, "duration": 1}}]}
        done = await svc.wait_final(await svc.submit(body))
        assert done["status"] == "completed", done
        check_draft(Path(done["draft_path"]), Path(done["draft_path"]).parent)
        resp = await svc.http.post("/api/tasks/submit", json=job(["/etc/passwd"]))
        assert resp.status_code == 422
        assert resp.json()["detail"][0]["msg"] == OUTSIDE
        assert (await svc.http.get("/api/tasks")).json()["total"] == 1


async def test_api_refuses_its_own_port_and_aria2s(tmp_path: Path, fileserver: FileServer) -> None:
    async with running_service(make_settings(tmp_path / "data", port=18765)) as svc:
        rpc_port = svc.services.manager.port
        for url in (f"http://127.0.0.1:{rpc_port}/jsonrpc", "http://localhost:18765/api/health"):
            resp = await svc.http.post("/api/tasks/submit", json=job([url]))
            assert resp.status_code == 422, url
            assert "own service" in resp.json()["detail"][0]["msg"]
        assert (await svc.http.get("/api/tasks")).json()["total"] == 0


def test_ipv4_written_as_ipv6_is_the_same_address() -> None:
    resolved = {"sneaky.example": ["::ffff:10.1.2.3"]}
    policy = SourcePolicy.build(
        [], [8000], ["10.0.0.0/8"], lambda host, port: resolved.get(host, [])
    )
    urls = [
        "http://[::ffff:10.9.9.9]/a.mp4",
        "http://[64:ff9b::a09:909]/b.mp4",  # NAT64 for 10.9.9.9
        "http://sneaky.example/c.mp4",
        "http://[::ffff:127.0.0.1]:8000/api/tasks",
        "http://[::ffff:7f00:1]:8000/api/tasks",
    ]
    found = refusal(job(urls), policy)
    assert set(found) == {f"materials[{i}].path" for i in range(5)}
    assert "draftdl's own service" in found["materials[4].path"]


def test_name_lookups_at_submit_are_bounded() -> None:
    import threading

    calls: list[str] = []
    lock = threading.Lock()

    def slow(host: str, port: int) -> list[str]:
        with lock:
            calls.append(host)
        return ["203.0.113.1"]

    policy = SourcePolicy.build([], [], ["10.0.0.0/8"], slow)
    body = job([f"http://h{i}.example/x.mp4" for i in range(100)])
    assert len(validate_job(body, max_files=200, policy=policy).urls) == 100
    assert len(calls) == 32


def test_jianying_placeholders_are_no_way_around_the_roots(tmp_path: Path) -> None:
    sneaky = "##_draftpath_placeholder_0E685133-18CE-45ED-8CB8-2904A212EC80_##/" + "../" * 20
    body = job([sneaky + "etc/passwd"])
    assert refusal(body, SourcePolicy()) == {"materials[0].path": NO_LOCAL}
    raw = job(["http://h/a.mp4"])
    raw["raw_materials"] = [{"path": sneaky + "etc/passwd", "type": "video"}]
    assert refusal(raw, SourcePolicy()) == {"raw_materials[0].path": NO_LOCAL}
    inside = sneaky.split("/")[0] + "/assets/x.mp4"
    transition = {"id": "t", "path": inside}
    raw["raw_materials"] = [{"id": "t", "category": "transitions", "data": transition}]
    raw["raw_segments"] = [
        {"track_id": "v", "track_type": "video", "material": {"id": "m", "path": "http://h/a.mp4"},
         "segment": {"id": "s", "material_id": "m", "extra_material_refs": ["t"],
                     "target_timerange": {"start": 0, "duration": 1},
                     "source_timerange": {"start": 0, "duration": 1}}},
    ]  # fmt: skip
    urls = validate_job(raw, max_files=10, policy=SourcePolicy()).urls
    assert {u.url for u in urls} == {"http://h/a.mp4"}


def test_the_builder_checks_local_paths_again_as_they_resolve_now(tmp_path: Path) -> None:
    from draftdl.drafts.jianying import build_draft
    from draftdl.drafts.spec import plan_draft
    from draftdl.errors import DraftBuildError

    root = tmp_path / "media"
    root.mkdir()
    link = root / "clip.mp4"
    link.symlink_to(MEDIA / "clip.mp4")  # outside the root: swapped in after the submit
    body = job([str(link)])
    body["testData"] = {"items": [{"type": "clip", "data": {"start": 0, "duration": 1}}]}
    plan = plan_draft(body, [])
    with pytest.raises(DraftBuildError) as info:
        build_draft(plan, {}, tmp_path / "drafts", local=SourcePolicy.build([root], [], []))
    assert str(info.value) == f"material 'm0': {OUTSIDE}"
    assert [p.name for p in (tmp_path / "drafts").iterdir()] == []
