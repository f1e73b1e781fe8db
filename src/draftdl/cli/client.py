"""The CLI's view of a running server: REST calls and the SSE stream, errors made one-line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import click
import httpx
from httpx_sse import connect_sse


class ServerError(click.ClickException):
    """Printed as one line by click, with exit code 3 (the server, not the task, failed)."""

    exit_code = 3


class ApiClient:
    def __init__(self, server: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.server = server.rstrip("/")
        self.http = httpx.Client(base_url=self.server, headers=headers, timeout=30.0)

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self.http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise ServerError(
                f"cannot reach draftdl at {self.server} (is `draftdl serve` running?)"
            ) from None
        except httpx.HTTPError as exc:
            raise ServerError(f"request to {self.server} failed: {exc}") from None
        if resp.status_code >= 400:
            raise ServerError(f"{resp.status_code}: {describe(resp)}")
        return resp.json()

    def events(self, task_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The task's SSE stream as (event, data) until it closes after the final event."""
        try:
            # The server sends a heartbeat every 15 s: 45 s of silence means it is gone.
            with connect_sse(
                self.http,
                "GET",
                f"/api/tasks/{task_id}/progress/stream",
                timeout=httpx.Timeout(10.0, read=45.0),
            ) as source:
                if source.response.status_code >= 400:
                    source.response.read()
                    raise ServerError(f"{source.response.status_code}: {describe(source.response)}")
                for sse in source.iter_sse():
                    yield sse.event, json.loads(sse.data) if sse.data else {}
        except httpx.ConnectError:
            raise ServerError(f"cannot reach draftdl at {self.server}") from None
        except httpx.HTTPError as exc:
            raise ServerError(f"lost the event stream from {self.server}: {exc}") from None


def describe(resp: httpx.Response) -> str:
    """An error body as a person reads it: each bad field with its path."""
    try:
        detail = resp.json().get("detail")
    except ValueError:
        return resp.text.strip()[:300] or resp.reason_phrase
    if isinstance(detail, list):
        return "; ".join(
            f"{d.get('path') or '.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}"
            for d in detail
            if isinstance(d, dict)
        )
    return str(detail)
