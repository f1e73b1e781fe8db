"""Every failure is labelled truthfully: the HTTP status when aria2 names one, else its code."""

from __future__ import annotations

import pytest

from draftdl.aria2.models import classify, describe_error
from fileserver import FileServer
from servers import Service, job

NETWORK = "network problem (connection refused, reset or cut)"
NOT_OK = "The response status is not successful. status="


@pytest.mark.parametrize(
    ("code", "message", "text", "transient"),
    [
        (29, NOT_OK + "502", "bad gateway (HTTP 502)", True),
        (29, NOT_OK + "503", "service unavailable (HTTP 503)", True),
        (22, NOT_OK + "403", "forbidden (HTTP 403)", True),
        (22, NOT_OK + "410", "gone (HTTP 410)", False),
        (22, NOT_OK + "429", "too many requests (HTTP 429)", True),
        (22, NOT_OK + "599", "server error (HTTP 599)", True),
        (22, NOT_OK + "418", "refused (HTTP 418)", False),
        (4, "Reached max-file-not-found count=1", "not found (HTTP 404)", False),
        (24, "Authorization failed.", "authorization failed (HTTP 401)", True),
        (6, "Failed to establish connection", NETWORK, True),
        (9, None, "not enough disk space", False),
        (1, "CUID#24 - Redirect to file:///etc/passwd failed. It may not be a valid URI.",
         "the server redirected to something that is not an http(s) URL", False),
        (None, None, "download failed", True),
    ],
)  # fmt: skip
def test_one_table_labels_every_failure(
    code: int | None, message: str | None, text: str, transient: bool
) -> None:
    reason = classify(code, message)
    assert (reason.text, reason.transient) == (text, transient)
    assert describe_error(code, message).startswith(text)


async def test_real_statuses_reach_the_task_as_they_were(
    service: Service, fileserver: FileServer
) -> None:
    urls = {code: fileserver.url(f"/status/{code}/f{code}.bin") for code in (403, 404, 502, 503)}
    ids = {code: await service.submit(job([url])) for code, url in urls.items()}
    by_code = {}
    for code, task_id in ids.items():
        task = await service.wait_final(task_id)
        assert task["status"] == "failed"
        by_code[code] = task["files"][0]["error_message"]
        assert urls[code] in task["error_message"]
    assert by_code[502].startswith("bad gateway (HTTP 502)")
    assert by_code[503].startswith("service unavailable (HTTP 503)")
    assert by_code[403].startswith("forbidden (HTTP 403)")
    assert by_code[404].startswith("not found (HTTP 404)")
