"""Our error tree → HTTP, in one place.

Every error body is JSON ``{"detail": ..., "message": ...}``: ``detail`` is a string, or for
rejected fields a list with their JSON paths; ``message`` is always one line of text that
says what is wrong, for clients that print the error as a string (a list would show as
``[object Object]`` in the original server's Coze plugin).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from draftdl.errors import (
    Aria2Unavailable,
    InvalidTransition,
    NodeUnavailable,
    RequestRejected,
    TaskNotFound,
)

log = logging.getLogger(__name__)


UNPARSABLE = "There was an error parsing the body"  # FastAPI's 400 for a body not UTF-8
MAX_LISTED = 3  # problems spelled out in the one-line message


def _where(problem: Mapping[str, Any]) -> str:
    if isinstance(problem.get("path"), str):
        return str(problem["path"])
    loc = [p for p in problem.get("loc", ()) if p != "body"]
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _where_from(loc: Sequence[str | int]) -> list[str | int]:
    """A problem's ``loc`` as FastAPI writes it: in the body unless it says the query."""
    return list(loc) if loc and loc[0] == "query" else ["body", *loc]


def one_line(detail: object) -> str:
    """The message of an error body: the detail itself, or its first problems."""
    if isinstance(detail, str):
        return " ".join(detail.split())
    if isinstance(detail, Sequence) and detail:
        items = [p for p in detail if isinstance(p, Mapping)]
        parts = [f"{_where(p) or 'request'}: {p.get('msg', '')}" for p in items[:MAX_LISTED]]
        more = len(detail) - len(parts)
        text = "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
        return " ".join(text.split())
    return "the request was refused"


def error_body(detail: object) -> dict[str, Any]:
    return {"detail": detail, "message": one_line(detail)}


def error_response(
    detail: object, status_code: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        jsonable_encoder(error_body(detail)), status_code=status_code, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        """FastAPI answers a body it cannot decode with a bare 400: to clients it is a bad
        field like any other, a 422 at ``body``."""
        if exc.status_code == 400 and exc.detail == UNPARSABLE:
            problem = {
                "loc": ["body"],
                "path": "body",
                "msg": "not valid JSON: the body is not UTF-8 text",
                "type": "json_invalid",
            }
            return error_response([problem], 422)
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=exc.headers)
        return error_response(exc.detail, exc.status_code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(exc.errors(), 422)

    @app.exception_handler(RequestRejected)
    async def _rejected(_: Request, exc: RequestRejected) -> JSONResponse:
        detail = [
            {"loc": _where_from(p.loc), "path": p.path, "msg": p.msg, "type": p.type}
            for p in exc.problems
        ]
        return error_response(detail, exc.status_code)

    @app.exception_handler(TaskNotFound)
    async def _not_found(_: Request, exc: TaskNotFound) -> JSONResponse:
        return error_response(str(exc), 404)

    @app.exception_handler(InvalidTransition)
    async def _conflict(_: Request, exc: InvalidTransition) -> JSONResponse:
        return error_response(str(exc), 409)

    @app.exception_handler(SQLAlchemyError)
    async def _database(_: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.error("database error: %r", exc)
        return error_response(
            "the task database is unavailable or busy; try again shortly",
            503,
            {"Retry-After": "2"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        """A bug of ours: logged with its trace, answered as JSON like every error."""
        log.error("unexpected error", exc_info=exc)
        return error_response("internal error: the server logged the details", 500)

    @app.exception_handler(NodeUnavailable)
    async def _node_down(_: Request, exc: NodeUnavailable) -> JSONResponse:
        return error_response(str(exc), 503)

    @app.exception_handler(Aria2Unavailable)
    async def _aria2_down(_: Request, exc: Aria2Unavailable) -> JSONResponse:
        return error_response(f"aria2c unavailable: {exc}", 503)
