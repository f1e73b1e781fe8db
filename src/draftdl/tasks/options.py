"""Request options: the headers, proxy and speed cap aria2 uses for each file of a task.

Three layers, a later one winning for each header (names compared case-insensitively), for the
proxy and for the cap: the ``download_rules`` setting's rules whose ``match`` fits the URL's host
(all that fit, in order), the job's top-level ``download_options``, then the ``download_options``
of the first material that names the file. A header set to null drops one a lower layer set; a
proxy set to null means none. Options live in the stored request only: ``resolve_options``
works them out again from it whenever a task's files lack them (a new task, a recovered one).

``Cookie``, ``Authorization`` and ``Proxy-Authorization`` values and proxy credentials are
secrets: no message of this module quotes a value, and the reprs mask them.

This module imports nothing that imports the settings: ``settings.py`` reads its rules with it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from draftdl.drafts.spec import SOURCE_KEYS, Loc, iter_materials
from draftdl.errors import FieldProblem
from draftdl.model.task import MASK, SECRET_HEADERS, FileState, RequestOptions, TaskState
from draftdl.units import human_size, parse_speed, speed_bytes

KEYS = ("headers", "proxy", "max_download_limit")
RULE_KEYS = ("match", *KEYS)
MAX_HEADERS = 50
MAX_NAME = 256
MAX_VALUE = 8192
MAX_PROXY = 2048
MAX_MATCH = 255
# Every file's headers ride in the one request that hands a task's files to aria2 (whose RPC
# takes at most 16 MiB): a job's own headers are sent once per file, so they are bounded in all.
MAX_HEADER_BYTES = 4 * 1024 * 1024
TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 7230 token
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # CR, LF, NUL and the rest; tab is fine
# Headers aria2 writes itself (framing, ranges for resuming, the connection) or that are ours.
RESERVED = frozenset(
    {
        "host",
        "range",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "x-draftdl-fetch",
    }
)
GUARDED = (
    "a proxy cannot be used on this server: url_deny_networks is set, so every download goes "
    "through draftdl's egress guard, which checks each connection (a proxy would connect on "
    "its own, unchecked)"
)


@dataclass(frozen=True)
class Layer:
    """One set of options as written (a rule, a job, a material): only what it sets."""

    headers: tuple[tuple[str, str | None], ...] = ()  # None: drop a lower layer's header
    sets_proxy: bool = False
    proxy: str | None = None  # None with sets_proxy: no proxy
    max_download_limit: str | None = None

    @property
    def header_bytes(self) -> int:
        """What this layer adds to each request to aria2 that carries it."""
        return sum(len(f"{n}: {v}".encode()) + 4 for n, v in self.headers if v is not None)

    def __repr__(self) -> str:
        headers = {n: MASK if n.lower() in SECRET_HEADERS else v for n, v in self.headers}
        proxy = _masked_proxy(self.proxy) if self.proxy else self.proxy
        return (
            f"Layer(headers={headers!r}, sets_proxy={self.sets_proxy!r}, proxy={proxy!r}, "
            f"max_download_limit={self.max_download_limit!r})"
        )


EMPTY = Layer()


@dataclass(frozen=True)
class DownloadRule:
    """A ``download_rules`` entry: options for URLs whose host matches ``match`` (fnmatch)."""

    match: str
    layer: Layer

    def applies(self, host: str) -> bool:
        return fnmatch.fnmatchcase(host.lower(), self.match.lower())


# -- reading and checking --------------------------------------------------------------------


def read_layer(
    value: Any, loc: Loc, problems: list[FieldProblem], *, guarded: bool = False
) -> Layer:
    """A ``download_options`` object; what is wrong goes to ``problems`` (values never quoted).
    ``guarded``: the egress guard runs, so a proxy is refused."""
    if value is None:
        return EMPTY
    if not isinstance(value, dict):
        problems.append(FieldProblem(loc, "must be an object", "type_error"))
        return EMPTY
    for key in value:
        if key not in KEYS:
            problems.append(
                FieldProblem(
                    (*loc, str(key)),
                    f"unknown option; the options are {', '.join(KEYS)}",
                    "value_error.unknown_option",
                )
            )
    headers = _read_headers(value.get("headers"), (*loc, "headers"), problems)
    layer = Layer(headers=headers)
    if "proxy" in value:
        proxy = value["proxy"]
        if proxy is not None and guarded:
            problems.append(FieldProblem((*loc, "proxy"), GUARDED, "value_error.proxy"))
        elif proxy is None or _proxy_ok(proxy, (*loc, "proxy"), problems):
            layer = Layer(headers, sets_proxy=True, proxy=proxy)
    limit = value.get("max_download_limit")
    if limit is not None:
        text = str(limit).strip() if _is_int(limit) or isinstance(limit, str) else ""
        try:
            parse_speed(text)
        except ValueError as exc:
            problems.append(FieldProblem((*loc, "max_download_limit"), str(exc)))
        else:
            layer = Layer(layer.headers, layer.sets_proxy, layer.proxy, text)
    return layer


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_headers(
    value: Any, loc: Loc, problems: list[FieldProblem]
) -> tuple[tuple[str, str | None], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        problems.append(FieldProblem(loc, "must be an object of header name → value", "type_error"))
        return ()
    if len(value) > MAX_HEADERS:
        problems.append(
            FieldProblem(loc, f"at most {MAX_HEADERS} headers", "value_error.too_many_headers")
        )
        return ()
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for name, header_value in value.items():
        where = (*loc, str(name))
        if not isinstance(name, str) or not TOKEN.match(name) or len(name) > MAX_NAME:
            problems.append(
                FieldProblem(
                    where,
                    f"not a header name: a token (letters, digits and !#$%&'*+-.^_`|~) of at "
                    f"most {MAX_NAME} characters",
                    "value_error.header_name",
                )
            )
            continue
        key = name.lower()
        if key in RESERVED:
            problems.append(
                FieldProblem(
                    where,
                    "this header is set by aria2 or by draftdl itself and cannot be given",
                    "value_error.header_name",
                )
            )
            continue
        if key in seen:
            problems.append(
                FieldProblem(
                    where,
                    "given twice (header names do not depend on case)",
                    "value_error.header_name",
                )
            )
            continue
        seen.add(key)
        if header_value is None:
            out.append((name, None))
        elif not isinstance(header_value, str):
            problems.append(
                FieldProblem(where, "must be a string (or null to drop the header)", "type_error")
            )
        elif CONTROL.search(header_value):
            problems.append(
                FieldProblem(
                    where,
                    "a header value may not contain line breaks (CR, LF), NUL or other "
                    "control characters",
                    "value_error.header_value",
                )
            )
        elif len(header_value) > MAX_VALUE:
            problems.append(
                FieldProblem(
                    where,
                    f"a header value has at most {MAX_VALUE} characters",
                    "value_error.header_value",
                )
            )
        else:
            out.append((name, header_value))
    return tuple(out)


def _proxy_ok(value: Any, loc: Loc, problems: list[FieldProblem]) -> bool:
    """True when ``value`` is a usable proxy URL; else says why (never quoting it)."""

    def fail(msg: str) -> bool:
        problems.append(FieldProblem(loc, msg, "value_error.proxy"))
        return False

    if not isinstance(value, str):
        return fail("must be a string: an http:// proxy URL, or null for none")
    if len(value) > MAX_PROXY or CONTROL.search(value) or " " in value:
        return fail(f"not a proxy URL: at most {MAX_PROXY} characters, no spaces or controls")
    try:
        parts = urlsplit(value)
        host, _port = parts.hostname, parts.port
    except ValueError:
        return fail("not a valid proxy URL (a bad port or address)")
    if parts.scheme.lower() == "https":
        return fail(
            "aria2 talks to proxies in plain HTTP only: an https:// proxy URL would not be "
            "encrypted; give the proxy as http://host:port"
        )
    if parts.scheme.lower() != "http":
        return fail("must be an http:// proxy URL like http://proxy.example:8080")
    if not host:
        return fail("the proxy URL has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return fail("a proxy URL is only http://[user:password@]host[:port]")
    return True


def _masked_proxy(url: str) -> str:
    """A proxy URL fit for a log line: its password (if any) as ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return MASK
    if password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return parts._replace(netloc=f"{user}:{MASK}@{netloc[1]}").geturl()


def read_job_options(
    body: dict[str, Any], problems: list[FieldProblem], *, files: int, guarded: bool = False
) -> None:
    """Checks every ``download_options`` of a job (the top level's and each material's), and
    that their headers over the job's ``files`` stay within ``MAX_HEADER_BYTES``."""
    loc: Loc = ("download_options",)
    job_layer = read_layer(body.get("download_options"), loc, problems, guarded=guarded)
    total = job_layer.header_bytes * files
    for where, material, _ in iter_materials(body.get("materials", [])):
        if isinstance(material, dict) and "download_options" in material:
            layer = read_layer(
                material["download_options"],
                (*where, "download_options"),
                problems,
                guarded=guarded,
            )
            total += layer.header_bytes
    if total > MAX_HEADER_BYTES:
        problems.append(
            FieldProblem(
                (*loc, "headers") if job_layer.headers else ("materials",),
                f"the job's headers add up to {human_size(total)} over its {files} files "
                f"(each file is sent the job's headers); at most {human_size(MAX_HEADER_BYTES)}: "
                "give headers only to the materials that need them",
                "value_error.too_many_headers",
            )
        )


def parse_rules(value: Any, *, guarded: bool = False) -> tuple[DownloadRule, ...]:
    """The ``download_rules`` setting; raises ValueError naming each problem (never a value)."""
    if not isinstance(value, list | tuple):
        raise ValueError('must be a JSON list like [{"match": "*.example.com", "headers": {}}]')
    problems: list[FieldProblem] = []
    rules: list[DownloadRule] = []
    for i, item in enumerate(value):
        if isinstance(item, DownloadRule):
            rules.append(item)
            continue
        if not isinstance(item, dict):
            problems.append(FieldProblem((i,), "must be an object", "type_error"))
            continue
        match = item.get("match")
        if not isinstance(match, str) or not match.strip() or len(match) > MAX_MATCH:
            problems.append(
                FieldProblem(
                    (i, "match"),
                    f"must be a host name pattern like *.example.com (fnmatch, at most "
                    f"{MAX_MATCH} characters)",
                )
            )
        options = {k: v for k, v in item.items() if k != "match"}
        layer = read_layer(options, (i,), problems, guarded=guarded)
        if isinstance(match, str):
            rules.append(DownloadRule(match.strip(), layer))
    if problems:
        raise ValueError("; ".join(f"item {_rule_path(p.loc)}: {p.msg}" for p in problems))
    return tuple(rules)


def _rule_path(loc: Loc) -> str:
    index, *rest = loc
    return f"{index}" + "".join(f".{part}" for part in rest)


# -- the effective options -------------------------------------------------------------------


def merge(layers: Sequence[Layer]) -> RequestOptions:
    """Later layers win: per header (by lower-cased name), for the proxy and for the cap."""
    headers: dict[str, tuple[str, str | None]] = {}
    proxy: str | None = None
    limit: str | None = None
    for layer in layers:
        for name, value in layer.headers:
            headers.pop(name.lower(), None)  # the later spelling of the name is the one sent
            headers[name.lower()] = (name, value)
        if layer.sets_proxy:
            proxy = layer.proxy
        if layer.max_download_limit is not None:
            limit = layer.max_download_limit
    sent = tuple((name, value) for name, value in headers.values() if value is not None)
    url, user, password = split_proxy(proxy)
    cap = limit if limit is not None and speed_bytes(limit) > 0 else None
    return RequestOptions(sent, url, user, password, cap)


def split_proxy(url: str | None) -> tuple[str | None, str | None, str | None]:
    """``http://u:p@h:3128`` → (``http://h:3128``, u, p): aria2 takes credentials apart, so
    they never sit in a URL option (or a log line that prints one)."""
    if not url:
        return None, None, None
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return f"{parts.scheme.lower()}://{netloc}", user, password


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def resolve_options(task: TaskState, rules: Sequence[DownloadRule]) -> None:
    """Works out the options of each of ``task``'s files that lacks them, from the stored
    request and ``rules``; one pass over the materials, whatever the number of files."""
    todo = [f for f in task.files if f.options is None or f.options.url != f.url]
    if not todo:
        return
    request = task.request
    ignored: list[FieldProblem] = []  # checked at submit
    job_layer = read_layer(request.get("download_options"), (), ignored)
    by_url: dict[str, Layer] = {}
    for _, material, _ in iter_materials(request.get("materials", [])):
        if not isinstance(material, dict):
            continue
        layer = read_layer(material.get("download_options"), (), ignored)
        for key in SOURCE_KEYS:
            url = material.get(key)
            if isinstance(url, str):
                by_url.setdefault(url, layer)  # the first material that names it
    for f in todo:
        host = _host(f.url)
        layers = [rule.layer for rule in rules if rule.applies(host)]
        layers += [job_layer, by_url.get(f.source_url or f.url, EMPTY)]
        f.options = dataclasses.replace(merge(layers), url=f.url)


def options_for(task: TaskState, f: FileState, rules: Sequence[DownloadRule]) -> RequestOptions:
    """``f``'s options; worked out (for every file of ``task`` that needs it) when it has none
    yet, or has those of another URL (a link replaced by a retry matches rules of its own)."""
    if f.options is None or f.options.url != f.url:
        resolve_options(task, rules)
    assert f.options is not None
    return f.options


def lower_limit(a: str | None, b: str | None) -> str | None:
    """The lower of two speed caps (None, or 0, is no cap)."""
    caps = [c for c in (a, b) if c is not None and speed_bytes(c) > 0]
    return min(caps, key=speed_bytes) if caps else None
