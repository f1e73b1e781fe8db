"""Request options at submit and as each file's effective options (tasks/options.py):
422s with JSON paths that never quote a value, precedence of rules, job and material."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from draftdl.aria2.models import AddRequest
from draftdl.errors import RequestRejected, SettingsError
from draftdl.model.states import TaskStatus
from draftdl.model.task import FileState, RequestOptions, TaskState
from draftdl.settings import load_settings
from draftdl.sources import SourcePolicy
from draftdl.tasks.options import (
    GUARDED,
    DownloadRule,
    lower_limit,
    options_for,
    parse_rules,
    resolve_options,
    split_proxy,
)
from draftdl.tasks.validation import validate_job
from servers import job

SECRET = "s3cr3t-cookie-value"
GUARD = SourcePolicy.build((), (), ["10.0.0.0/8"])


def problems(body: Any, policy: SourcePolicy | None = None) -> dict[str, str]:
    with pytest.raises(RequestRejected) as info:
        validate_job(body, max_files=10, policy=policy)
    found = {p.path: p.msg for p in info.value.problems}
    assert SECRET not in json.dumps(found) and SECRET not in str(info.value)
    return found


def with_options(material: Any = None, task: Any = None) -> dict[str, Any]:
    body = job(["http://cdn.example/a.mp4", "http://cdn.example/b.mp4"])
    if material is not None:
        body["materials"][0]["download_options"] = material
    if task is not None:
        body["download_options"] = task
    return body


def test_good_options_are_accepted() -> None:
    body = with_options(
        {"headers": {"Referer": "https://www.douyin.com/", "Cookie": SECRET, "X-Empty": ""}},
        {
            "headers": {"User-Agent": "Mozilla/5.0", "Authorization": "Bearer x", "Dropped": None},
            "proxy": "http://user:p%40ss@proxy.example:3128",
            "max_download_limit": "2M",
        },
    )
    body["materials"][1]["download_options"] = {"proxy": None, "max_download_limit": 0}
    assert len(validate_job(body, max_files=10).urls) == 2


@pytest.mark.parametrize(
    ("options", "path", "words"),
    [
        ({"headers": {"Referer": "x\r\nInjected: 1"}}, "headers.Referer", "line breaks"),
        ({"headers": {"Cookie": SECRET + "\n"}}, "headers.Cookie", "line breaks"),
        ({"headers": {"Cookie": SECRET + "\x00"}}, "headers.Cookie", "NUL"),
        ({"headers": {"Bad Name": "v"}}, "headers.Bad Name", "not a header name"),
        ({"headers": {"Referer:": "v"}}, "headers.Referer:", "not a header name"),
        ({"headers": {"Range": "bytes=0-"}}, "headers.Range", "set by aria2 or by draftdl"),
        ({"headers": {"x-draftdl-fetch": "no"}}, "headers.x-draftdl-fetch", "draftdl"),
        ({"headers": {"Cookie": 5}}, "headers.Cookie", "must be a string"),
        ({"headers": {"Referer": "x" * 8193}}, "headers.Referer", "at most 8192"),
        ({"headers": ["Referer: x"]}, "headers", "must be an object"),
        ({"headers": {f"X-{i}": "v" for i in range(51)}}, "headers", "at most 50"),
        ({"header": {}}, "header", "unknown option"),
        ({"proxy": "socks5://h:1080"}, "proxy", "http://"),
        ({"proxy": f"https://u:{SECRET}@h:3128"}, "proxy", "plain HTTP"),
        ({"proxy": f"http://u:{SECRET}@:3128"}, "proxy", "no host"),
        ({"proxy": f"http://u:{SECRET}@h:99999"}, "proxy", "not a valid proxy URL"),
        ({"proxy": f"http://u:{SECRET}@h:3128/path"}, "proxy", "only http://"),
        ({"proxy": 3128}, "proxy", "must be a string"),
        ({"max_download_limit": "fast"}, "max_download_limit", "bytes per second"),
        ("Referer: x", "", "must be an object"),
    ],
)
def test_bad_options_are_refused_with_their_path(options: Any, path: str, words: str) -> None:
    for where, body in (
        ("materials[0].download_options", with_options(material=options)),
        ("download_options", with_options(task=options)),
    ):
        found = problems(body)
        key = f"{where}.{path}" if path else where
        assert key in found, found
        assert words in found[key]


def test_duplicate_header_names_differ_only_in_case() -> None:
    found = problems(with_options({"headers": {"Referer": "a", "referer": "b"}}))
    assert "given twice" in found["materials[0].download_options.headers.referer"]


def test_materials_by_category_name_their_path() -> None:
    body = with_options()
    body["materials"] = {"videos": body["materials"]}
    body["materials"]["videos"][1]["download_options"] = {"headers": {"Cookie": SECRET + "\r"}}
    assert "materials.videos[1].download_options.headers.Cookie" in problems(body)


def test_a_proxy_is_refused_while_the_egress_guard_runs() -> None:
    body = with_options({"proxy": "http://proxy.example:3128"}, {"proxy": "http://p:1"})
    found = problems(body, GUARD)
    assert found["materials[0].download_options.proxy"] == GUARDED
    assert found["download_options.proxy"] == GUARDED
    assert "url_deny_networks" in GUARDED and "egress guard" in GUARDED
    # Headers still go; a null proxy asks for nothing.
    fine = with_options({"headers": {"Referer": "r"}, "proxy": None})
    assert validate_job(fine, max_files=10, policy=GUARD).urls


def test_rules_are_checked_and_never_quote_a_value() -> None:
    rules = parse_rules([{"match": "*.douyinvod.com", "headers": {"Cookie": SECRET}}])
    assert rules[0].applies("v3-dy.douyinvod.com") and not rules[0].applies("douyinvod.com")
    assert rules[0].applies("V3.DouyinVod.COM")
    with pytest.raises(ValueError) as info:
        parse_rules(
            [
                {"headers": {"Referer": "r"}},
                {"match": "*.x", "headers": {"Cookie": SECRET + "\n"}, "prox": "y"},
                "nope",
            ]
        )
    text = str(info.value)
    assert SECRET not in text
    assert "item 0.match:" in text and "item 1.headers.Cookie:" in text
    assert "item 1.prox: unknown option" in text and "item 2: must be an object" in text
    with pytest.raises(ValueError, match="egress guard"):
        parse_rules([{"match": "*", "proxy": "http://p:1"}], guarded=True)


def task_with(body: dict[str, Any], urls: list[str]) -> TaskState:
    now = datetime(2024, 1, 1)
    task = TaskState("t", 1, TaskStatus.PENDING, 0, json.dumps(body), now, now)
    task.files = [FileState(i, u, f"f{i}", f"/d/f{i}", f"{i:016x}") for i, u in enumerate(urls)]
    return task


def test_material_over_job_over_rules() -> None:
    a, b, c = "http://v1.cdn.example/a.mp4", "http://other.example/b.mp4", "http://x.test/c"
    body = job([a, b, a])
    body["download_options"] = {
        "headers": {"User-Agent": "job-ua", "Referer": "job-ref", "Cookie": "job-cookie"},
        "max_download_limit": "1M",
    }
    body["materials"][0]["download_options"] = {
        "headers": {"referer": "m0-ref", "Cookie": None},
        "proxy": "http://u:p%40ss@proxy.example:3128",
        "max_download_limit": "100K",
    }
    body["materials"][1]["download_options"] = {"proxy": None, "max_download_limit": "0"}
    # The third material names a's URL too: the first material's options win.
    body["materials"][2]["download_options"] = {"headers": {"Referer": "m2-ref"}}
    body["testData"] = {"items": [{"type": "clip", "data": {"path": c}}]}
    rules = parse_rules(
        [
            {"match": "*.cdn.example", "headers": {"Referer": "rule", "Origin": "o"}},
            {"match": "*", "proxy": "http://global:8080", "headers": {"Accept-Language": "zh"}},
            {"match": "*.cdn.example", "headers": {"Origin": "later-rule"}},
        ]
    )
    task = task_with(body, [a, b, c])
    resolve_options(task, rules)
    fa, fb, fc = (f.options for f in task.files)
    assert fa == RequestOptions(
        headers=(
            ("Accept-Language", "zh"),
            ("Origin", "later-rule"),
            ("User-Agent", "job-ua"),
            ("referer", "m0-ref"),
        ),
        proxy="http://proxy.example:3128",
        proxy_user="u",
        proxy_password="p@ss",
        max_download_limit="100K",
    )
    assert fb == RequestOptions(
        headers=(
            ("Accept-Language", "zh"),
            ("User-Agent", "job-ua"),
            ("Referer", "job-ref"),
            ("Cookie", "job-cookie"),
        ),
    )
    # A URL only testData names takes the job's options (and the rules for its host).
    assert fc is not None and fc.proxy == "http://global:8080" and fc.max_download_limit == "1M"
    assert "job-cookie" not in repr(fb) and "p@ss" not in repr(fa)
    assert "job-cookie" not in repr(task.files[1])


def test_a_replaced_link_keeps_its_materials_options_and_matches_its_own_host() -> None:
    old, new = "http://old.example/a.mp4", "http://new.cdn.example/a.mp4"
    body = job([old])
    body["materials"][0]["download_options"] = {"headers": {"Referer": "m0"}}
    task = task_with(body, [new])
    task.files[0].source_url = old
    rules = parse_rules([{"match": "*.cdn.example", "headers": {"Origin": "rule"}}])
    assert isinstance(rules[0], DownloadRule)
    resolve_options(task, rules)
    assert task.files[0].options == RequestOptions(headers=(("Origin", "rule"), ("Referer", "m0")))


def test_a_link_replaced_after_its_options_were_worked_out_gets_its_own() -> None:
    old, new = "http://old.example/a.mp4", "http://new.cdn.example/a.mp4"
    body = job([old])
    body["materials"][0]["download_options"] = {"headers": {"Referer": "m0"}}
    rules = parse_rules([{"match": "*.cdn.example", "headers": {"Origin": "rule"}}])
    task = task_with(body, [old])
    assert options_for(task, task.files[0], rules).headers == (("Referer", "m0"),)
    task.files[0].source_url, task.files[0].url = old, new  # a retry with a new link
    assert options_for(task, task.files[0], rules).headers == (
        ("Origin", "rule"),
        ("Referer", "m0"),
    )


def test_options_are_worked_out_once() -> None:
    task = task_with(job(["http://h/a"]), ["http://h/a"])
    kept = RequestOptions(headers=(("X", "1"),), url="http://h/a")
    task.files[0].options = kept
    resolve_options(task, parse_rules([{"match": "*", "headers": {"Y": "2"}}]))
    assert task.files[0].options is kept


def test_proxy_credentials_go_apart() -> None:
    assert split_proxy("http://a%3Ab:c%40d@[::1]:3128") == ("http://[::1]:3128", "a:b", "c@d")
    assert split_proxy("http://h") == ("http://h", None, None)
    assert split_proxy(None) == (None, None, None)
    add = AddRequest(
        "0" * 16, "http://h/a", "/d", "a", proxy="http://h:1", proxy_user="u", proxy_passwd="pw",
        headers=("Cookie: c",),
    )  # fmt: skip
    assert add.options()["all-proxy-user"] == "u" and add.options()["all-proxy-passwd"] == "pw"
    assert "pw" not in repr(add) and "Cookie" not in repr(add)
    guard = AddRequest("0" * 16, "http://h/a", "/d", "a", proxy="http://g:1", proxy_user="gid")
    assert guard.options()["all-proxy-passwd"] == "-"


def test_the_lower_cap_wins() -> None:
    assert lower_limit("1M", "100K") == "100K"
    assert lower_limit("1024", None) == "1024"
    assert lower_limit(None, "0") is None
    assert lower_limit("0", "2M") == "2M"


@pytest.fixture
def no_draftdl_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.upper().startswith("DRAFTDL_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("no_draftdl_env")
def test_download_rules_from_the_config_file_and_their_problems(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rules = [{"match": "*.douyinvod.com", "headers": {"Cookie": SECRET}, "proxy": "http://p:1"}]
    (tmp_path / "config.json").write_text(json.dumps({"download_rules": rules}))
    settings = load_settings()
    assert settings.download_rules[0].applies("v26.douyinvod.com")
    assert SECRET not in repr(settings) and SECRET not in repr(settings.download_rules)

    rules[0]["headers"] = {"Cookie": SECRET + "\r\n"}
    (tmp_path / "config.json").write_text(json.dumps({"download_rules": rules}))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == (
        'download_rules = *** (from config.json key "download_rules"): item 0.headers.Cookie: '
        "a header value may not contain line breaks (CR, LF), NUL or other control characters"
    )

    rules[0]["headers"] = {"Cookie": SECRET}
    (tmp_path / "config.json").write_text(json.dumps({"download_rules": rules}))
    monkeypatch.setenv("DRAFTDL_URL_DENY_NETWORKS", '["10.0.0.0/8"]')
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == (
        f'download_rules = *** (from config.json key "download_rules"): item 0.proxy: {GUARDED}'
    )
    assert SECRET not in str(caught.value)


def test_a_jobs_headers_are_bounded_over_its_files() -> None:
    """Each file is handed to aria2 with the job's headers, all in one RPC request."""
    urls = [f"http://cdn.example/{i}.mp4" for i in range(1000)]
    body = job(urls)
    body["download_options"] = {"headers": {"Cookie": SECRET + "x" * 5000}}
    with pytest.raises(RequestRejected) as info:
        validate_job(body, max_files=10_000)
    (problem,) = info.value.problems
    assert problem.path == "download_options.headers"
    assert "over its 1000 files" in problem.msg and "at most 4.0 MiB" in problem.msg
    assert SECRET not in problem.msg
    body["download_options"] = {"headers": {"Cookie": "x" * 3000}}
    assert len(validate_job(body, max_files=10_000).urls) == 1000
