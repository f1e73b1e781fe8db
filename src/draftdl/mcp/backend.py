"""How the tools reach draftdl: its HTTP API, through one ``httpx.AsyncClient``.

An error answer becomes a tool error carrying the server's one-line ``message`` (the field
every error body has), so an agent reads the same words a person does.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import httpx
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

# The read timeout of a request that long-polls is its wait plus this.
SLACK = 30.0


@dataclass
class Backend:
    """The API client of one MCP server.

    ``forward_auth``: each call carries the ``Authorization`` header of the MCP request it
    serves (``/mcp``: the caller's own token, already checked at the door). Otherwise the
    client carries the token it was made with (``draftdl mcp --token``).
    """

    http: httpx.AsyncClient
    forward_auth: bool = False

    async def call(
        self,
        ctx: Context[Any, Any],
        method: str,
        path: str,
        *,
        ok: Collection[int] = (),
        wait: float = 0.0,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The answer's JSON object; an error status (other than those in ``ok``) raises
        ``ToolError`` with the server's message. ``wait``: how long the API may hold the
        answer back (a long-poll)."""
        headers = dict(headers or {})
        if self.forward_auth:
            presented = (ctx.headers or {}).get("authorization")
            if presented:
                headers["Authorization"] = presented
        timeout = httpx.Timeout(10.0, read=wait + SLACK)
        try:
            resp = await self.http.request(method, path, headers=headers, timeout=timeout, **kwargs)
        except httpx.ConnectError:
            raise ToolError(
                f"cannot reach draftdl at {self.http.base_url} (is `draftdl serve` running?)"
            ) from None
        except httpx.HTTPError as exc:
            raise ToolError(
                f"the request to draftdl at {self.http.base_url} failed: {exc}"
            ) from None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code >= 400 and resp.status_code not in ok:
            raise ToolError(self._refusal(resp, body))
        if not isinstance(body, dict):
            raise ToolError(
                f"{self.http.base_url} did not answer a JSON object (HTTP {resp.status_code}); "
                "is it draftdl?"
            )
        return body

    def _refusal(self, resp: httpx.Response, body: object) -> str:
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, str) or not message:
            detail = body.get("detail") if isinstance(body, dict) else None
            message = detail if isinstance(detail, str) and detail else resp.reason_phrase
        text = f"{message} (HTTP {resp.status_code})"
        if resp.status_code == 401 and not self.forward_auth:
            text += "; give draftdl mcp the server's token: --token or DRAFTDL_API_TOKEN"
        return text
