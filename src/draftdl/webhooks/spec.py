"""Where a webhook goes and which status events it wants, as a job or the settings give it.

Checked at submit (a job's) or at start (the setting's): http(s) only, never this service's
own ports (the API, aria2's RPC), and with ``url_deny_networks`` not to a denied address.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from draftdl.errors import FieldProblem
from draftdl.model.states import TaskStatus
from draftdl.urls import address_of, http_url_problem

Loc = tuple[str | int, ...]
EVENTS = tuple(s.value for s in TaskStatus)
DEFAULT_EVENTS = ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    events: frozenset[str]

    @property
    def address(self) -> tuple[str, int]:
        return address_of(self.url)

    def to_json(self) -> str:
        return json.dumps({"url": self.url, "events": sorted(self.events)})

    @classmethod
    def from_json(cls, text: str) -> WebhookTarget:
        data = json.loads(text)
        return cls(str(data["url"]), frozenset(data["events"]))


def shown_url(url: str) -> str:
    """The URL as answers show it: scheme, host and port only (credentials, path and query
    may all carry a secret: Slack's and Discord's hooks hold theirs in the path)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    rest = "/…" if (parts.path not in ("", "/") or parts.query) else "/"
    return urlunsplit((parts.scheme, netloc, "", "", "")) + rest


def read_target(value: Any, loc: Loc, problems: list[FieldProblem]) -> WebhookTarget | None:
    """``{"url": ..., "events": [...]}``; problems go to ``problems`` with their path."""
    if not isinstance(value, Mapping):
        problems.append(FieldProblem(loc, 'must be an object: {"url": ..., "events": [...]}'))
        return None
    unknown = sorted(str(k) for k in value if k not in ("url", "events"))
    for key in unknown[:10]:
        problems.append(FieldProblem((*loc, key), "unknown field (known: url, events)"))
    url = value.get("url")
    ok = True
    if not isinstance(url, str) or not url:
        problems.append(FieldProblem((*loc, "url"), "must be an http(s) URL", "missing"))
        ok = False
    else:
        reason = http_url_problem(url, "can receive webhooks")
        if reason:
            problems.append(FieldProblem((*loc, "url"), reason, "value_error.url"))
            ok = False
    events = value.get("events", list(DEFAULT_EVENTS))
    if not isinstance(events, Sequence) or isinstance(events, str) or not events:
        problems.append(
            FieldProblem((*loc, "events"), f"must be a non-empty list of: {', '.join(EVENTS)}")
        )
        return None
    for i, event in enumerate(events):
        if event not in EVENTS:
            problems.append(
                FieldProblem(
                    (*loc, "events", i),
                    f"unknown status {str(event)[:40]!r}; the states are {', '.join(EVENTS)}",
                )
            )
            ok = False
    return WebhookTarget(str(url), frozenset(events)) if ok else None
