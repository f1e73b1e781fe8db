"""What every http(s) URL we are given must be, before anything looks at its address."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx

MAX_URL = 2048
DEFAULT_PORT = {"http": 80, "https": 443}
SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def http_url_problem(url: str, purpose: str) -> str | None:
    """Why ``url`` is no usable http(s) URL (``purpose``: "can receive webhooks"), or None."""
    if len(url) > MAX_URL:
        return f"longer than {MAX_URL} characters"
    match = SCHEME.match(url)
    if not match or match.group(1).lower() not in DEFAULT_PORT:
        return f"only http and https URLs {purpose}"
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises when out of range
    except ValueError as exc:
        return f"not a valid URL: {exc}"
    if not host:
        return "URL has no host"
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        return "URL contains spaces or control characters"
    try:
        _ = httpx.URL(url).host  # what our HTTP client makes of it (IDNA host names, ...)
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        return f"not a valid URL: {exc}"
    return None


def address_of(url: str) -> tuple[str, int]:
    """(host, port) of a URL that passed ``http_url_problem``."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or DEFAULT_PORT[parts.scheme.lower()]
