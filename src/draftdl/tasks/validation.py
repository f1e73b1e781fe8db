"""Checks a submitted job before anything is stored, and finds every URL it names.

Problems are collected (not raised at the first) so a client sees every bad field at once,
each with its JSON path (DESIGN §3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from draftdl.drafts.spec import (
    CATEGORY_TYPE,
    SOURCE_KEYS,
    Loc,
    is_srt_url,
    is_subtitle_item,
    iter_materials,
    plan_draft,
)
from draftdl.errors import FieldProblem, RequestRejected
from draftdl.model.task import task_title
from draftdl.sources import SourcePolicy
from draftdl.tasks.options import read_job_options
from draftdl.tasks.unused import unused_keys
from draftdl.units import parse_speed
from draftdl.webhooks.spec import WebhookTarget, read_target

RAW_CONTAINERS = ("raw_materials", "raw_segments", "extra_materials", "segment_styles")
MAX_DEADLINE = 30 * 24 * 3600
DEFAULT_PORT = {"http": 80, "https": 443}
PLACEHOLDER = "##_draftpath_placeholder"  # JianYing's own relative form, not a server path
SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
MAX_DEPTH = 32


@dataclass(frozen=True)
class UrlRef:
    url: str
    loc: Loc
    kind: str | None  # the material type, to pick an extension when the URL has none


@dataclass
class ValidatedJob:
    priority: int = 0
    max_download_limit: str | None = None
    deadline: float | None = None
    title: str = ""
    urls: list[UrlRef] = field(default_factory=list)
    webhook: WebhookTarget | None = None
    warnings: list[str] = field(default_factory=list)


class _Checker:
    def __init__(self, policy: SourcePolicy) -> None:
        self.problems: list[FieldProblem] = []
        self.urls: list[UrlRef] = []
        self.targets: list[tuple[str, int]] = []  # (host, port) of each URL, for the policy
        self.policy = policy

    def check_addresses(self) -> None:
        """Every URL's host against the policy, names looked up together (bounded)."""
        denied = self.policy.url_problems(set(self.targets))
        if not denied:
            return
        kept = []
        for ref, target in zip(self.urls, self.targets, strict=True):
            if target in denied:
                self.fail(ref.loc, denied[target], "value_error.url_denied")
            else:
                kept.append(ref)
        self.urls = kept

    def fail(self, loc: Loc, msg: str, kind: str = "value_error") -> None:
        self.problems.append(FieldProblem(loc, msg, kind))

    def source(self, loc: Loc, value: Any, kind: str | None, local_must_exist: bool) -> None:
        """One path-like value: an http(s) URL to download, or a local file under the
        allowed folders (that must exist where the builder reads it)."""
        if value is None or value == "":
            return
        if not isinstance(value, str):
            self.fail(loc, "must be a string (an http(s) URL or a local file path)", "type_error")
            return
        match = SCHEME.match(value)
        if match:
            scheme = match.group(1).lower()
            if scheme not in ("http", "https"):
                self.fail(
                    loc,
                    f"URL scheme {scheme!r} is not supported: only http and https URLs "
                    "are downloaded",
                    "value_error.url_scheme",
                )
                return
            try:
                parts = urlsplit(value)
                host, port = parts.hostname, parts.port  # .port raises when out of range
            except ValueError as exc:
                self.fail(loc, f"not a valid URL: {exc}", "value_error.url")
                return
            if not host:
                self.fail(loc, "URL has no host", "value_error.url")
                return
            self.urls.append(UrlRef(value, loc, kind))
            self.targets.append((host, port or DEFAULT_PORT[scheme]))
            return
        refused = self.policy.local_problem(value, must_exist=local_must_exist)
        if refused:
            self.fail(loc, refused, "value_error.path")

    def walk_raw(self, loc: Loc, node: Any, depth: int = 0) -> None:
        """URL keys anywhere inside the verbatim containers (raw_materials, ...)."""
        if depth > MAX_DEPTH:
            self.fail(loc, f"nested deeper than {MAX_DEPTH} levels")
            return
        if isinstance(node, dict):
            for key, value in node.items():
                if key in SOURCE_KEYS and isinstance(value, str):
                    if is_draft_relative(value):
                        continue  # JianYing's own form, relative to the draft, never ours
                    kind = node.get("type") if isinstance(node.get("type"), str) else None
                    self.source((*loc, key), value, kind, local_must_exist=False)
                elif isinstance(value, dict | list):
                    self.walk_raw((*loc, key), value, depth + 1)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                self.walk_raw((*loc, i), value, depth + 1)


def is_draft_relative(value: str) -> bool:
    """``##_draftpath_placeholder_…_##/assets/x``: inside the draft, without any ``..``."""
    parts = value.replace("\\", "/").split("/")
    return value.startswith(PLACEHOLDER) and ".." not in parts


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_job(body: Any, *, max_files: int, policy: SourcePolicy | None = None) -> ValidatedJob:
    """Raises ``RequestRejected`` listing every problem; returns what the planner needs.

    Without a ``policy`` no local path is accepted and no address is refused."""
    c = _Checker(policy or SourcePolicy())
    job = ValidatedJob()
    if not isinstance(body, dict):
        raise RequestRejected([FieldProblem((), "the body must be a JSON object", "type_error")])

    group = body.get("ruleGroup")
    if group is None:
        c.fail(("ruleGroup",), "field required", "missing")
        group = {}
    elif not isinstance(group, dict):
        c.fail(("ruleGroup",), "must be an object", "type_error")
        group = {}

    materials = body.get("materials", [])
    if not isinstance(materials, list | dict):
        c.fail(("materials",), "must be a list, or an object of lists by category", "type_error")
        materials = []
    elif isinstance(materials, dict):
        for category, items in materials.items():
            if not isinstance(items, list):
                c.fail(("materials", category), "must be a list of materials", "type_error")

    ids: set[str] = set()
    for loc, material, category in iter_materials(materials):
        if not isinstance(material, dict):
            c.fail(loc, "must be an object", "type_error")
            continue
        mid = material.get("id")
        if mid is None or mid == "" or not isinstance(mid, str | int) or isinstance(mid, bool):
            c.fail((*loc, "id"), "must be a non-empty string or integer", "missing")
        elif str(mid) in ids:
            c.fail((*loc, "id"), f"duplicate material id {mid!r}")
        else:
            ids.add(str(mid))
        mtype = material.get("type")
        if mtype is not None and not isinstance(mtype, str):
            c.fail((*loc, "type"), "must be a string (video, photo, audio, text, ...)")
            mtype = None
        kind = mtype or CATEGORY_TYPE.get(category or "")
        for key in SOURCE_KEYS:
            c.source((*loc, key), material.get(key), kind, local_must_exist=True)

    rule_types: set[str] = set()
    rules = group.get("rules", [])
    if not isinstance(rules, list):
        c.fail(("ruleGroup", "rules"), "must be a list", "type_error")
        rules = []
    for i, rule in enumerate(rules):
        loc = ("ruleGroup", "rules", i)
        if not isinstance(rule, dict):
            c.fail(loc, "must be an object", "type_error")
            continue
        rtype = rule.get("type")
        if not isinstance(rtype, str) or not rtype:
            c.fail((*loc, "type"), "must be a non-empty string", "missing")
        else:
            rule_types.add(rtype)
        material_ids = rule.get("material_ids", [])
        if not isinstance(material_ids, list):
            c.fail((*loc, "material_ids"), "must be a list of material ids", "type_error")
            continue
        for j, mid in enumerate(material_ids):
            if str(mid) not in ids:
                title = rule.get("title") or rtype
                c.fail(
                    (*loc, "material_ids", j),
                    f"rule {title!r} names material {mid!r}, which is not in materials",
                    "value_error.material",
                )

    test_data = body.get("testData")
    if test_data is not None and not isinstance(test_data, dict):
        c.fail(("testData",), "must be an object", "type_error")
    elif isinstance(test_data, dict):
        _check_test_data(c, test_data, rule_types)

    for name in RAW_CONTAINERS:
        if name in body:
            c.walk_raw((name,), body[name])

    for name in ("draft_config",):
        if name in body and not isinstance(body[name], dict):
            c.fail((name,), "must be an object", "type_error")

    priority = body.get("priority", 0)
    if priority is None:
        priority = 0
    if not _is_int(priority) or not -(2**31) <= priority < 2**31:
        c.fail(("priority",), "must be an integer (higher runs first)", "type_error")
    else:
        job.priority = priority

    limit = body.get("max_download_limit")
    if limit is not None:
        value = str(limit).strip() if _is_int(limit) or isinstance(limit, str) else ""
        try:
            parse_speed(value)
            job.max_download_limit = value
        except ValueError as exc:
            c.fail(("max_download_limit",), str(exc))

    deadline = body.get("deadline")
    if deadline is not None:
        if (
            isinstance(deadline, int | float)
            and not isinstance(deadline, bool)
            and (0 < deadline <= MAX_DEADLINE)
        ):
            job.deadline = float(deadline)
        else:
            c.fail(
                ("deadline",),
                f"must be a number of seconds after submission, above 0 and at most "
                f"{MAX_DEADLINE} (30 days)",
            )

    if body.get("webhook") is not None:
        job.webhook = read_target(body["webhook"], ("webhook",), c.problems)
        if job.webhook is not None:
            address = job.webhook.address
            refused = c.policy.url_problems({address}).get(address)
            if refused:
                c.fail(("webhook", "url"), refused, "value_error.url_denied")

    if not c.problems:
        plan_draft(body, c.problems)

    c.check_addresses()
    distinct = len({ref.url for ref in c.urls})
    # With url_deny_networks the egress guard is the proxy: a job cannot name another.
    read_job_options(body, c.problems, files=distinct, guarded=bool(c.policy.deny_networks))
    job.title = task_title(body)
    job.warnings = unused_keys(body)
    if distinct > max_files:
        c.fail(
            ("materials",),
            f"the task names {distinct} files to download; the limit is {max_files}",
            "value_error.too_many_files",
        )
    if c.problems:
        raise RequestRejected(c.problems)
    job.urls = c.urls
    return job


def _check_test_data(c: _Checker, test_data: dict[str, Any], rule_types: set[str]) -> None:
    tracks = test_data.get("tracks", [])
    if not isinstance(tracks, list):
        c.fail(("testData", "tracks"), "must be a list", "type_error")
    else:
        for i, track in enumerate(tracks):
            if not isinstance(track, dict):
                c.fail(("testData", "tracks", i), "must be an object", "type_error")
    items = test_data.get("items", [])
    if not isinstance(items, list):
        c.fail(("testData", "items"), "must be a list", "type_error")
        return
    for i, item in enumerate(items):
        loc: Loc = ("testData", "items", i)
        if not isinstance(item, dict):
            c.fail(loc, "must be an object", "type_error")
            continue
        itype = item.get("type")
        if is_subtitle_item(item):  # SRT subtitles: no rule, no material
            srt = item["data"]["srt"]
            if is_srt_url(srt):
                c.source((*loc, "data", "srt"), srt, "subtitle", local_must_exist=False)
            continue
        if not isinstance(itype, str) or not itype:
            c.fail((*loc, "type"), "must be a non-empty string", "missing")
        elif itype not in rule_types:
            known = ", ".join(sorted(rule_types)) or "none"
            c.fail(
                (*loc, "type"),
                f"no rule of type {itype!r} in ruleGroup.rules (known types: {known})",
                "value_error.rule_type",
            )
        data = item.get("data", {})
        if not isinstance(data, dict):
            c.fail((*loc, "data"), "must be an object", "type_error")
            continue
        c.source((*loc, "data", "path"), data.get("path"), itype, local_must_exist=True)
