"""Tokens never reach the access log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from draftdl.app import create_app
from draftdl.logsafe import RedactSecrets, redact
from servers import live_server, make_settings


async def test_a_query_token_is_masked_in_the_access_log(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    access = logging.getLogger("uvicorn.access")
    async with live_server(make_settings(data_dir, api_token="s3cret")) as live:
        # uvicorn's own config does not propagate access records: listen on the logger itself.
        level = access.level
        access.setLevel(logging.INFO)
        access.addHandler(caplog.handler)
        try:
            async with live.client() as http:
                resp = await http.get("/api/tasks/x/progress/stream?token=s3cret&x=1")
                assert resp.status_code == 404
        finally:
            access.removeHandler(caplog.handler)
            access.setLevel(level)
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any("/api/tasks/x/progress/stream?token=***&x=1" in line for line in lines), lines
    assert "s3cret" not in caplog.text


def test_the_filter_is_installed_once(tmp_path: Path) -> None:
    for _ in range(3):
        create_app(make_settings(tmp_path))
    filters = logging.getLogger("uvicorn.access").filters
    assert sum(isinstance(f, RedactSecrets) for f in filters) == 1


def test_authorization_values_are_masked() -> None:
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer ***"
    assert redact("{'authorization': 'tok'}") == "{'authorization': '***'}"
    assert redact("/socket.io/?EIO=4&transport=polling&TOKEN=a%20b") == (
        "/socket.io/?EIO=4&transport=polling&TOKEN=***"
    )
    assert redact("/api/tasks?status=done") == "/api/tasks?status=done"


def test_an_encoded_token_key_is_masked_too() -> None:
    from draftdl.logsafe import redact

    assert redact("GET /x?%74oken=s3cret&a=1") == "GET /x?%74oken=***&a=1"
    assert redact("GET /x?TOKEN=s3cret") == "GET /x?TOKEN=***"
    assert redact("GET /x?tokens=keep") == "GET /x?tokens=keep"
