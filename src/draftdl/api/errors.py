"""Our error tree → HTTP, in one place; every error body is JSON ``{"detail": ...}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from draftdl.errors import Aria2Unavailable, InvalidTransition, RequestRejected, TaskNotFound

log = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
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
