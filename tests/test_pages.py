"""The dashboard and the documentation pages come from the package: no CDN, locked down."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import urljoin

from servers import live_server, make_settings


async def raw_status(base_url: str, path: str) -> int:
    """The status of a GET of ``path`` exactly as written, over a plain socket."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        status_line = await reader.readline()
        return int(status_line.split()[1])
    finally:
        writer.close()
        await writer.wait_closed()


ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")
PAGE_ASSET = re.compile(r"""<(?:script|link)\b[^>]*\b(?:src|href)=["']([^"']+)["']""")


async def test_docs_pages_load_their_assets_from_the_server(data_dir: Path) -> None:
    async with live_server(make_settings(data_dir)) as live, live.client() as http:
        for page, wanted in (
            ("/docs", {"/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"}),
            ("/redoc", {"/docs-assets/redoc.standalone.js"}),
        ):
            html = (await http.get(page)).text
            assets = set(ASSET.findall(html)) - {"/docs-assets/favicon.png"}
            assert assets == wanted, (page, assets)
            assert "https://" not in html and "http://" not in html, page
            for asset in assets:
                resp = await http.get(asset)
                assert resp.status_code == 200, asset
                assert len(resp.content) > 100_000, asset  # the real bundle, not a stub


async def test_the_dashboard_is_served_at_the_root(data_dir: Path) -> None:
    settings = make_settings(data_dir, api_token="t0ken")
    async with live_server(settings) as live, live.client() as http:
        resp = await http.get("/")  # the page holds no data: it asks for the token
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/html")
        csp = resp.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert resp.headers["x-content-type-options"] == "nosniff"
        for asset in PAGE_ASSET.findall(resp.text):  # relative: the page works under a prefix
            asset = urljoin("/", asset)
            assert asset.startswith("/ui/"), asset
            got = await http.get(asset)
            assert got.status_code == 200, asset
            assert got.headers["content-security-policy"] == csp
        for path in (  # sent as written: httpx would tidy the dots away
            "/ui/../../settings.py",
            "/ui/%2e%2e/%2e%2e/settings.py",
            "/ui/..%2f..%2fsettings.py",
            "/docs-assets/../../fastapi/__init__.py",
            "/ui/static/../pages.py",
        ):
            assert await raw_status(live.base_url, path) == 404, path
        assert await raw_status(live.base_url, "/ui/app.js") == 200  # the probe itself works
        assert (await http.get("/api/tasks")).status_code == 401  # the data still is
