"""Async JSON-RPC client for aria2 over one WebSocket (aria2/socket.py), plus its events.

Ours rather than aria2p: aria2p is synchronous and opens a connection per call (DESIGN §4).
Given an httpx transport (tests inject faults so), calls go over HTTP through it instead.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import connect as ws_connect

from draftdl.aria2.models import (
    ACTIVE_KEYS,
    MAX_DOWNLOAD_RESULT,
    STOPPED_KEYS,
    WAITING_KEYS,
    AddRequest,
    DownloadStatus,
    StatusBook,
)
from draftdl.aria2.socket import RpcSocket, ws_url
from draftdl.errors import Aria2RPCError, Aria2Unavailable

log = logging.getLogger(__name__)

ADD_URI = "aria2.addUri"
FORCE_REMOVE = "aria2.forceRemove"
REMOVE_RESULT = "aria2.removeDownloadResult"
PURGE_RESULTS = "aria2.purgeDownloadResult"
TELL_STATUS = "aria2.tellStatus"
TELL_ACTIVE = "aria2.tellActive"
TELL_WAITING = "aria2.tellWaiting"
TELL_STOPPED = "aria2.tellStopped"
GET_VERSION = "aria2.getVersion"
SHUTDOWN = "aria2.shutdown"
SAVE_SESSION = "aria2.saveSession"
CHANGE_OPTION = "aria2.changeOption"
CHANGE_GLOBAL_OPTION = "aria2.changeGlobalOption"
CHANGE_POSITION = "aria2.changePosition"
FORCE_PAUSE = "aria2.forcePause"
UNPAUSE = "aria2.unpause"
MULTICALL = "system.multicall"

Call = tuple[str, Sequence[Any]]
GID_TAKEN = "is not unique"
AMBIGUOUS = "No URI to download"  # aria2 1.36: a duplicate gid, or a URI it cannot use
EventHandler = Callable[[str, str], Awaitable[None] | None]


@contextlib.contextmanager
def map_transport_errors(url: str) -> Iterator[None]:
    """Turn httpx's failures into ours, so callers only know the domain tree."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise Aria2Unavailable(f"aria2 RPC at {url} timed out") from exc
    except httpx.TransportError as exc:
        raise Aria2Unavailable(f"aria2 RPC at {url} unreachable: {exc!r}") from exc


class Aria2Client:
    """Talks to one aria2c; the endpoint changes when the manager restarts it on another port."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout = timeout
        self._socket = RpcSocket() if transport is None else None
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport, trust_env=False)
        self._url: str | None = None
        self._secret: str | None = None
        self._ids = itertools.count(1)
        self.requests = collections.Counter[str]()  # requests (round trips) by method
        self.calls = collections.Counter[str]()  # methods run, a multicall's entries each

    @property
    def work_requests(self) -> int:
        """Requests other than health checks: what downloads cost in round trips."""
        return sum(self.requests.values()) - self.requests[GET_VERSION]

    def set_endpoint(self, url: str, secret: str | None) -> None:
        self._url = url
        self._secret = secret
        if self._socket is not None:
            self._socket.set_url(url)

    @property
    def url(self) -> str | None:
        return self._url

    def _token_params(self, params: Sequence[Any]) -> list[Any]:
        if self._secret is None:
            return list(params)
        return [f"token:{self._secret}", *params]

    async def call(self, method: str, *params: Any, within: float | None = None) -> Any:
        # system.multicall carries the secret inside each call, not on itself.
        sent = list(params) if method == MULTICALL else self._token_params(params)
        if self._url is None:
            raise Aria2Unavailable("aria2c is not running")
        call_id = next(self._ids)
        payload = json.dumps({"jsonrpc": "2.0", "id": call_id, "method": method, "params": sent})
        self.requests[method] += 1
        if method != MULTICALL:
            self.calls[method] += 1
        limit = self._timeout if within is None else within
        if self._socket is not None:
            body = await self._socket.call(self._url, call_id, payload, limit)
        else:
            body = await self._post(payload, limit)
        if "error" in body:
            err = body["error"]
            raise Aria2RPCError(int(err.get("code", 1)), str(err.get("message", "")))
        return body.get("result")

    async def _post(self, payload: str, within: float) -> dict[str, Any]:
        assert self._url is not None
        with map_transport_errors(self._url):
            resp = await self._http.post(
                self._url,
                content=payload,
                headers={"Content-Type": "application/json"},
                timeout=within,
            )
        try:
            body: dict[str, Any] = resp.json()
        except ValueError as exc:
            raise Aria2Unavailable(f"aria2 answered HTTP {resp.status_code} without JSON") from exc
        return body

    async def multicall(self, calls: Sequence[Call]) -> list[Any]:
        """Many methods in one round trip; each entry is a result or an ``Aria2RPCError``."""
        if not calls:
            return []
        batch = [
            {"methodName": method, "params": self._token_params(params)} for method, params in calls
        ]
        self.calls.update(method for method, _ in calls)
        raw = await self.call(MULTICALL, batch)
        out: list[Any] = []
        for entry in raw:
            if isinstance(entry, list):
                out.append(entry[0] if entry else None)
            else:
                out.append(Aria2RPCError(int(entry.get("code", 1)), str(entry.get("message", ""))))
        return out

    async def get_version(self, within: float | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(GET_VERSION, within=within)
        return result

    async def add_batch_downloads(
        self, requests: Sequence[AddRequest]
    ) -> list[str | Aria2RPCError]:
        """Adds all files in one call; a gid aria2 already holds counts as added.

        aria2 1.36 answers both a duplicate gid and a URI it cannot use with "No URI to
        download."; a second call (only then) asks which it was.
        """
        results = await self.multicall([(ADD_URI, [[r.url], r.options()]) for r in requests])
        unclear = [
            i
            for i, res in enumerate(results)
            if isinstance(res, Aria2RPCError) and AMBIGUOUS in res.message
        ]
        held: set[int] = set()
        if unclear:
            known = await self.multicall(
                [(TELL_STATUS, [requests[i].gid, ["gid"]]) for i in unclear]
            )
            held = {i for i, st in zip(unclear, known, strict=True) if isinstance(st, dict)}
        out: list[str | Aria2RPCError] = []
        for i, (req, res) in enumerate(zip(requests, results, strict=True)):
            taken = isinstance(res, Aria2RPCError) and GID_TAKEN in res.message
            out.append(req.gid if taken or i in held else res)
        return out

    # -- calls that ride in a batch (system.multicall), named for what they do ----------

    @staticmethod
    def remove_call(gid: str) -> Call:
        """Stop a download at once (its result stays until forgotten)."""
        return (FORCE_REMOVE, [gid])

    @staticmethod
    def forget_call(gid: str) -> Call:
        """Drop a stopped download's result."""
        return (REMOVE_RESULT, [gid])

    @staticmethod
    def pause_call(gid: str) -> Call:
        """Hold a download where it is (its bytes stay); ``forcePause`` does not wait."""
        return (FORCE_PAUSE, [gid])

    @staticmethod
    def unpause_call(gid: str) -> Call:
        return (UNPAUSE, [gid])

    @staticmethod
    def position_call(gid: str, first: bool) -> Call:
        """Move a waiting download to the front (or the back) of aria2's queue."""
        return (CHANGE_POSITION, [gid, 0, "POS_SET" if first else "POS_END"])

    async def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Calls built above, in one round trip; each entry a result or an Aria2RPCError."""
        return await self.multicall(calls)

    async def set_overall_limit(self, bytes_per_second: str) -> None:
        await self.call(CHANGE_GLOBAL_OPTION, {"max-overall-download-limit": bytes_per_second})

    @staticmethod
    def limit_call(gid: str, bytes_per_second: str | None) -> Call:
        """Cap one download's speed (None or "0": no cap)."""
        return (CHANGE_OPTION, [gid, {"max-download-limit": bytes_per_second or "0"}])

    @staticmethod
    def status_calls(waiting: int, stopped: int, purge: bool = False) -> list[Call]:
        """The reads of one tick. With ``purge`` every stopped result is read, oldest first,
        and then dropped: aria2 runs a multicall's entries one after the other between two
        turns of its download loop, so nothing stops in between and what goes is exactly
        what was read."""
        calls: list[Call] = [
            (TELL_ACTIVE, [list(ACTIVE_KEYS)]),
            (TELL_WAITING, [0, waiting, list(WAITING_KEYS)]),
        ]
        if purge:
            return [
                *calls,
                (TELL_STOPPED, [0, MAX_DOWNLOAD_RESULT, list(STOPPED_KEYS)]),
                (PURGE_RESULTS, []),
            ]
        # Newest first: results we have not forgotten yet must never crowd out fresh ones.
        return [*calls, (TELL_STOPPED, [-1, stopped, list(STOPPED_KEYS)])]

    @staticmethod
    def parse_statuses(results: Sequence[Any], book: StatusBook) -> dict[str, DownloadStatus]:
        """The three reads' answers (an error in one fails them all)."""
        for chunk in results:
            if isinstance(chunk, Aria2RPCError):
                raise chunk
        active, waiting, stopped = (chunk or [] for chunk in results)
        return book.read([(active, "active"), (waiting, ""), (stopped, "")])

    async def read_statuses(
        self,
        book: StatusBook,
        *,
        waiting: int,
        stopped: int,
        purge: bool = False,
        extra: Sequence[Call] = (),
    ) -> dict[str, DownloadStatus]:
        """Every download aria2 holds (stopped ones up to ``stopped``, or all of them with
        ``purge``, which then drops them), in one request; ``extra`` calls ride along."""
        reads = self.status_calls(waiting, stopped, purge)
        results = await self.multicall([*reads, *extra])
        return self.parse_statuses(results[:3], book)

    async def get_batch_progress(
        self, limit: int = 1000, extra: Sequence[Call] = ()
    ) -> dict[str, DownloadStatus]:
        """Every download aria2 holds, in one request; ``extra`` calls ride along."""
        return await self.read_statuses(StatusBook(), waiting=limit, stopped=limit, extra=extra)

    async def cancel(self, gids: Sequence[str]) -> None:
        """Stops and forgets downloads; unknown gids are fine."""
        await self.force_remove(gids)
        await self.forget(gids)

    async def force_remove(self, gids: Sequence[str]) -> None:
        if gids:
            await self.multicall([(FORCE_REMOVE, [g]) for g in gids])

    async def forget(self, gids: Sequence[str], settle: float = 3.0) -> None:
        """Drops stopped downloads' results. ``forceRemove`` only starts a removal and a
        result can be dropped only once the download has stopped, so this waits (briefly)."""
        if not gids:
            return
        deadline = asyncio.get_running_loop().time() + settle
        pending = list(gids)
        while pending and asyncio.get_running_loop().time() < deadline:
            states = await self.multicall([(TELL_STATUS, [g, ["status"]]) for g in pending])
            pending = [
                g
                for g, st in zip(pending, states, strict=True)
                if isinstance(st, dict) and st.get("status") in ("active", "waiting", "paused")
            ]
            if pending:
                await asyncio.sleep(0.02)
        await self.multicall([(REMOVE_RESULT, [g]) for g in gids])

    async def shutdown(self) -> None:
        await self.call(SHUTDOWN, within=3.0)

    async def aclose(self) -> None:
        if self._socket is not None:
            await self._socket.aclose()
        await self._http.aclose()

    async def listen(self, on_event: EventHandler) -> None:
        """Forwards aria2's notifications forever, reconnecting as aria2 comes back."""
        delay = 0.1
        while True:
            if self._url is None:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            try:
                url = ws_url(self._url)  # a proxy from the environment has no say on loopback
                async with ws_connect(url, open_timeout=3, max_size=2**20, proxy=None) as ws:
                    delay = 0.1
                    async for message in ws:
                        await self._dispatch(message, on_event)
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                log.debug("aria2 notifications disconnected: %r", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    @staticmethod
    async def _dispatch(message: str | bytes, on_event: EventHandler) -> None:
        try:
            data = json.loads(message)
        except ValueError:
            return
        method = data.get("method")
        params = data.get("params") or []
        if not method or not params or not isinstance(params[0], dict):
            return
        result = on_event(method, str(params[0].get("gid", "")))
        if result is not None:
            await result
