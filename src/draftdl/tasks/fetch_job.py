"""A job JSON fetched from an http(s) URL (the original server's ``submit_with_url``).

Bounded like a submitted body: at most ``max_request_bytes``, ``FETCH_TIMEOUT`` in all, and
every hop (at most ``MAX_REDIRECTS`` redirects) checked against the same policy as the URLs
a job names: never this service's own ports, never a denied network.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urljoin

import httpx

from draftdl import __version__
from draftdl.errors import FieldProblem, RequestRejected
from draftdl.sources import SourcePolicy
from draftdl.urls import address_of, http_url_problem

FETCH_TIMEOUT = 15.0  # seconds for the whole fetch
MAX_REDIRECTS = 3
LOC = ("query", "url")


def _refuse(msg: str, kind: str = "value_error.url") -> RequestRejected:
    return RequestRejected([FieldProblem(LOC, msg, kind)])


async def _check(url: str, policy: SourcePolicy) -> None:
    problem = http_url_problem(url, "can be fetched")
    if problem:
        raise _refuse(problem)
    target = address_of(url)
    denied = await asyncio.to_thread(policy.url_problems, {target})
    if target in denied:
        raise _refuse(denied[target], "value_error.url_denied")


async def fetch_job(url: str, policy: SourcePolicy, limit: int) -> bytes:
    """The body at ``url``; raises ``RequestRejected`` (422 at ``url``, 413) saying why not."""
    try:
        async with (
            asyncio.timeout(FETCH_TIMEOUT),
            httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,
                timeout=FETCH_TIMEOUT,
                headers={
                    "User-Agent": f"draftdl/{__version__}",
                    "Accept": "application/json",
                    "Accept-Encoding": "identity",  # the size bound counts what we hold
                },
            ) as http,
        ):
            for _ in range(MAX_REDIRECTS + 1):
                await _check(url, policy)
                async with http.stream("GET", url) as resp:
                    if resp.is_redirect and "location" in resp.headers:
                        try:
                            url = urljoin(url, resp.headers["location"])
                        except ValueError as exc:
                            raise _refuse(f"a redirect to a bad address: {exc}") from None
                        continue
                    if resp.status_code != 200:
                        raise _refuse(f"the server answered {resp.status_code}, not the job JSON")
                    declared = resp.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        raise _too_big(limit)
                    body = bytearray()
                    async for chunk in resp.aiter_bytes():
                        body += chunk
                        if len(body) > limit:
                            raise _too_big(limit)
                    return bytes(body)
            raise _refuse(f"more than {MAX_REDIRECTS} redirects")
    except TimeoutError:
        raise _refuse(f"no job JSON within {FETCH_TIMEOUT:.0f} s") from None
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
        raise _refuse(f"could not fetch it: {type(exc).__name__}: {exc}"[:300]) from None


def _too_big(limit: int) -> RequestRejected:
    return RequestRejected(
        [FieldProblem(LOC, f"the job at this URL is larger than {limit} bytes", "too_large")],
        413,
    )
