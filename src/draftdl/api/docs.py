"""The API's description: ``/openapi.json``, ``/docs`` (Swagger UI) and ``/redoc``.

With ``api_token`` set they are behind it like every route. A browser opening ``/docs`` cannot
send a header, so ``?token=`` is accepted too, and handed on to the ``openapi.json`` that the
page fetches.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from draftdl.api.deps import require_token_or_query, token_matches
from draftdl.api.schemas import extra_components
from draftdl.settings import Settings

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_token_or_query)])

# No Referer, so a ?token= never leaves with the page's own requests.
HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
ASSETS = "/docs-assets"  # fastapi-offline's Swagger UI and ReDoc, mounted by web/pages.py


@functools.cache
def _extra_components() -> dict[str, dict[str, Any]]:
    return extra_components()


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document (built once, cached by FastAPI) plus the models it names that no
    route parameter declares: the job (the submit route reads its body raw), the events."""
    doc = FastAPI.openapi(app)
    settings: Settings = app.state.settings
    if settings.public_url:  # importers (Coze) call the API at the address the document names
        doc["servers"] = [{"url": settings.public_url}]
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in _extra_components().items():
        schemas.setdefault(name, schema)
    return doc


def install_docs(app: FastAPI) -> None:
    """For an app made with ``docs_url=None, redoc_url=None, openapi_url=None``."""
    app.openapi = functools.partial(openapi_document, app)  # type: ignore[method-assign]
    app.include_router(router)


def _root(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def _openapi_url(request: Request) -> str:
    url = _root(request) + "/openapi.json"
    settings: Settings = request.app.state.settings
    token = request.query_params.get("token")
    if token and token_matches(settings, token):
        url += "?token=" + quote(token, safe="")  # quoted: safe inside the page's script
    return url


@router.get("/openapi.json")
async def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi(), headers=HEADERS)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    assets = _root(request) + ASSETS
    page = get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{assets}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon.png",
    )
    page.headers.update(HEADERS)
    return page


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    assets = _root(request) + ASSETS
    page = get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{assets}/redoc.standalone.js",
        redoc_favicon_url=f"{assets}/favicon.png",
        with_google_fonts=False,
    )
    page.headers.update(HEADERS)
    return page
