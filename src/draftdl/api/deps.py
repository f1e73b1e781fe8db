"""Dependencies: the parts built in ``create_app``, reached through ``app.state``."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

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


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

bearer = HTTPBearer(auto_error=False)


def token_matches(settings: Settings, presented: str | None) -> bool:
    if settings.api_token is None:
        return True
    expected = settings.api_token.get_secret_value()
    return presented is not None and hmac.compare_digest(presented, expected)


def require_token(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    _check(request, creds.credentials if creds else None)


def require_token_or_query(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """For event streams: a browser's EventSource cannot send headers, so ``?token=`` too."""
    _check(request, creds.credentials if creds else request.query_params.get("token"))


def _check(request: Request, presented: str | None) -> None:
    settings: Settings = request.app.state.settings
    if not token_matches(settings, presented):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong API token (send 'Authorization: Bearer <token>')",
            headers={"WWW-Authenticate": "Bearer"},
        )
