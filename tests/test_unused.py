"""Client metadata is kept and named in ``warnings``; unknown keys the builder reads are 422s."""

from __future__ import annotations

import json
from pathlib import Path

from fileserver import FileServer
from servers import job, make_settings, running_service


async def test_unused_keys_are_kept_and_listed(data_dir: Path, fileserver: FileServer) -> None:
    body = job([fileserver.url("/media/clip.mp4")])
    body["client_ref"] = {"flow": "coze", "run": 7}
    body["materials"][0]["duration_hint"] = 3
    body["testData"] = {"items": [{"type": "clip", "data": {"start": 0, "ext": ".mp4"}}]}
    expected = [
        "client_ref: not used by the draft (kept in the job)",
        "materials[0].duration_hint: not used by the draft (kept in the job)",
        "testData.items[0].data.ext: not used (a file's extension comes from its URL or its "
        "material's type)",
    ]
    async with running_service(make_settings(data_dir)) as svc:
        resp = await svc.http.post("/api/tasks/submit", json=body)
        assert resp.status_code == 200, resp.text
        assert resp.json()["warnings"] == expected
        task_id = resp.json()["task_id"]
        done = await svc.wait_final(task_id)
        assert done["status"] == "completed" and done["warnings"] == expected
        stored = json.loads((await svc.services.db.load_task(task_id)).request_json)  # type: ignore[union-attr]
        assert stored["client_ref"] == {"flow": "coze", "run": 7}  # verbatim
    async with running_service(make_settings(data_dir)) as svc:  # a restart keeps them
        listing = (await svc.http.get("/api/tasks")).json()["tasks"]
        assert [t["warnings"] for t in listing] == [expected]
        plain = await svc.submit(job([]))
        assert (await svc.task(plain))["warnings"] == []


async def test_unknown_keys_where_the_builder_reads_are_refused(
    data_dir: Path, fileserver: FileServer
) -> None:
    body = job([fileserver.url("/media/clip.mp4")])
    body["testData"] = {"items": [{"type": "clip", "data": {"start": 0, "colour": "red"}}]}
    async with running_service(make_settings(data_dir)) as svc:
        resp = await svc.http.post("/api/tasks/submit", json=body)
        assert resp.status_code == 422
        paths = [p["path"] for p in resp.json()["detail"]]
        assert paths == ["testData.items[0].data.colour"]
