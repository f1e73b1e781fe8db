"""Our error tree → HTTP, in one place; every error body is JSON ``{"detail": ...}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from draftdl.errors import Aria2Unavailable, InvalidTransition, RequestRejected, TaskNotFound

log = logging.getLogger(__name__)


UNPARSABLE = "There was an error parsing the body"  # FastAPI's 400 for a body not UTF-8


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
            return JSONResponse({"detail": [problem]}, status_code=422)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestRejected)
    async def _rejected(_: Request, exc: RequestRejected) -> JSONResponse:
        detail = [
            {"loc": ["body", *p.loc], "path": p.path, "msg": p.msg, "type": p.type}
            for p in exc.problems
        ]
        return JSONResponse({"detail": detail}, status_code=exc.status_code)

    @app.exception_handler(TaskNotFound)
    async def _not_found(_: Request, exc: TaskNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(InvalidTransition)
    async def _conflict(_: Request, exc: InvalidTransition) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(SQLAlchemyError)
    async def _database(_: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.error("database error: %r", exc)
        return JSONResponse(
            {"detail": "the task database is unavailable or busy; try again shortly"},
            status_code=503,
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(Aria2Unavailable)
    async def _aria2_down(_: Request, exc: Aria2Unavailable) -> JSONResponse:
        return JSONResponse({"detail": f"aria2c unavailable: {exc}"}, status_code=503)
