"""Dependencies: the parts built in ``create_app``, reached through ``app.state``.

Every dependency is ``async def``: FastAPI runs a plain ``def`` in its thread pool, a thread
hop per dependency per request for code that never blocks."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from draftdl.aria2.process import Aria2Manager
from draftdl.db.repo import Database
from draftdl.drafts.location import DraftsRoot
from draftdl.settings import Settings
from draftdl.tasks.queue import TaskQueue


@dataclass
class Services:
    settings: Settings
    db: Database
    manager: Aria2Manager
    queue: TaskQueue
    drafts: DraftsRoot


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

bearer = HTTPBearer(auto_error=False, description="the api_token setting, when it is set")
query_token = APIKeyQuery(
    name="token",
    auto_error=False,
    description="the api_token as ?token=, for browsers (EventSource, the docs pages)",
)


def configured_token(settings: Settings) -> str | None:
    """The token clients must present; an empty ``api_token`` counts as none (it must never
    turn into "an empty token matches")."""
    token = settings.api_token.get_secret_value() if settings.api_token is not None else ""
    return token or None


def token_matches(settings: Settings, presented: str | None) -> bool:
    expected = configured_token(settings)
    if expected is None:
        return True
    # As bytes: compare_digest refuses str with non-ASCII characters (a 500, not a 401).
    return presented is not None and hmac.compare_digest(_utf8(presented), _utf8(expected))


def _utf8(text: str) -> bytes:
    """Any str, even one with a lone surrogate from a JSON ``auth`` of Socket.IO."""
    return text.encode("utf-8", "surrogatepass")


async def require_token(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    _check(request, creds.credentials if creds else None)


async def require_token_or_query(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    token: Annotated[str | None, Depends(query_token)],
) -> None:
    """For event streams and the docs: a browser's EventSource or address bar cannot send
    headers, so ``?token=`` too."""
    _check(request, creds.credentials if creds else token)


JSON_TYPES = frozenset({"application/json"})
UTF8 = frozenset({"utf-8", "utf8"})


def is_json(content_type: str | None) -> bool:
    """``application/json``, with at most ``charset=utf-8``; any case, any spacing."""
    if not content_type:
        return False
    media, *params = (part.strip().lower() for part in content_type.split(";"))
    if media not in JSON_TYPES:
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() != "charset" or value.strip().strip('"') not in UTF8:
            return False
    return True


async def require_json(request: Request) -> None:
    """Before the body is read: only JSON, which also keeps out cross-site "simple" requests
    (a form or text/plain POST that a browser sends without asking)."""
    content_type = request.headers.get("content-type")
    if not is_json(content_type):
        given = repr(content_type[:100]) if content_type else "none"
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"the body must be JSON with Content-Type: application/json (given: {given})",
        )


def _check(request: Request, presented: str | None) -> None:
    settings: Settings = request.app.state.settings
    if not token_matches(settings, presented):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong API token (send 'Authorization: Bearer <token>')",
            headers={"WWW-Authenticate": "Bearer"},
        )
