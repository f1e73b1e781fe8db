"""Serves the dashboard at ``/`` (its files under ``/ui/``) and the documentation pages' own
scripts under ``/docs-assets/``, all from installed packages: nothing is fetched from a CDN.

The page is not secret (it holds no data), so it needs no token: it asks for one and sends it
with every request it makes. It is locked down like an app page: only our own scripts, styles
and connections, never framed, no Referer.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

STATIC = Path(__file__).resolve().parent / "static"
DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
# ReDoc's menu footer shows a logo from Redocly's CDN whatever its options say: the bundle is
# served with our own favicon there (a path relative to /redoc, so a root_path still works).
REDOC_BUNDLE = "redoc.standalone.js"
REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
REDOC_LOCAL_LOGO = b"docs-assets/favicon.png"

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",  # revalidated: an upgraded server serves its new page at once
}


class LockedStatic(StaticFiles):
    """Static files with the page's headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


@functools.cache
def redoc_bundle() -> bytes:
    return (DOCS_ASSETS / REDOC_BUNDLE).read_bytes().replace(REDOC_CDN_LOGO, REDOC_LOCAL_LOGO)


def install_pages(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    @app.get(f"/docs-assets/{REDOC_BUNDLE}", include_in_schema=False)
    async def redoc_script() -> Response:  # before the mount below, which it overrides
        return Response(
            await asyncio.to_thread(redoc_bundle),  # a 1 MB file read once: off the loop
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    app.mount("/ui", LockedStatic(directory=STATIC), name="ui")
    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
