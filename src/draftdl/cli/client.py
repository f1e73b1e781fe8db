"""The CLI's view of a running server: REST calls and the SSE stream, errors made one-line."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection, Iterator
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

    def request(self, method: str, path: str, *, ok: Collection[int] = (), **kwargs: Any) -> Any:
        """The answer's JSON; an error status (other than those in ``ok``) is a ServerError."""
        with self._errors():
            resp = self.http.request(method, path, **kwargs)
        if resp.status_code >= 400 and resp.status_code not in ok:
            raise ServerError(f"{resp.status_code}: {describe(resp)}")
        try:
            return resp.json()
        except ValueError:
            raise ServerError(
                f"{resp.status_code}: {self.server} did not answer JSON (is it draftdl?)"
            ) from None

    @contextlib.contextmanager
    def stream(
        self, path: str, *, ok: Collection[int] = (), **kwargs: Any
    ) -> Iterator[httpx.Response]:
        """A GET whose body is read as it comes (a draft's zip); error statuses (other than
        those in ``ok``) raise."""
        with self._errors(), self.http.stream("GET", path, **kwargs) as resp:
            if resp.status_code >= 400 and resp.status_code not in ok:
                resp.read()
                raise ServerError(f"{resp.status_code}: {describe(resp)}")
            yield resp

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
            raise ServerError(self._unreachable()) from None
        except httpx.HTTPError as exc:
            raise ServerError(f"lost the event stream from {self.server}: {exc}") from None

    def _unreachable(self) -> str:
        return f"cannot reach draftdl at {self.server} (is `draftdl serve` running?)"

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Transport failures as one line each."""
        try:
            yield
        except httpx.ConnectError:
            raise ServerError(self._unreachable()) from None
        except httpx.HTTPError as exc:
            raise ServerError(f"request to {self.server} failed: {exc}") from None


def describe(resp: httpx.Response) -> str:
    """An error body as a person reads it: each bad field with its path."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:300] or resp.reason_phrase
    if not isinstance(body, dict):
        return str(body)[:300]
    detail = body.get("detail")
    if detail is None:
        detail = body.get("message")
    if isinstance(detail, list):
        return "; ".join(_problem(d) for d in detail) or resp.reason_phrase
    if detail is None or detail == "":
        return resp.reason_phrase
    return str(detail)


def _problem(item: object) -> str:
    """One rejected field: ``materials[0].path: not a URL`` (our path, else FastAPI's loc)."""
    if not isinstance(item, dict):
        return str(item)
    where = item.get("path") or ".".join(map(str, item.get("loc") or []))
    msg = item.get("msg") or item.get("message") or item.get("type") or "rejected"
    return f"{where}: {msg}" if where else str(msg)
