"""Settings: every bad value is named with its source; unknown names are warned about."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from draftdl.errors import SettingsError
from draftdl.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No DRAFTDL_* from the outside, and a working folder without a config.json."""
    for key in list(os.environ):
        if key.upper().startswith("DRAFTDL_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    yield


def problems(**overrides: object) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(**overrides)
    return str(caught.value).splitlines()


def test_a_bad_variable_is_named_with_its_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAFTDL_MAX_RETRIES", "x")
    assert problems() == [
        "max_retries = 'x' (from DRAFTDL_MAX_RETRIES): must be a whole number",
    ]


def test_a_bad_config_key_and_a_bad_option_are_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "mine.json"
    config.write_text(json.dumps({"max_retries": "x", "poll_interval": 0}), encoding="utf-8")
    monkeypatch.setenv("DRAFTDL_CONFIG", str(config))
    assert problems(port=70000) == [  # in the order of the settings table
        "port = 70000 (from --port): must be at most 65535",
        f"""poll_interval = 0 (from {config} key "poll_interval"): must be more than 0""",
        f"""max_retries = 'x' (from {config} key "max_retries"): must be a whole number""",
    ]


def test_later_sources_win_and_say_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"port": 1, "max_retries": 5}', encoding="utf-8")
    monkeypatch.setenv("DRAFTDL_PORT", "2")
    settings = load_settings(port=3)
    assert (settings.port, settings.max_retries) == (3, 5)
    monkeypatch.setenv("DRAFTDL_MAX_RETRIES", "-1")
    assert problems() == ["max_retries = '-1' (from DRAFTDL_MAX_RETRIES): must be at least 0"]


def test_config_file_is_read_when_settings_are_loaded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "later.json"
    config.write_text('{"max_active_tasks": 4}', encoding="utf-8")
    monkeypatch.setenv("DRAFTDL_CONFIG", str(config))
    assert load_settings().max_active_tasks == 4
    assert Settings().max_active_tasks == 4


def test_a_missing_or_broken_config_file_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.json"
    monkeypatch.setenv("DRAFTDL_CONFIG", str(missing))
    assert problems() == [f"DRAFTDL_CONFIG = {str(missing)!r}: no such file"]
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]", encoding="utf-8")
    monkeypatch.setenv("DRAFTDL_CONFIG", str(listed))
    assert problems() == [
        f'config file {listed}: must hold a JSON object like {{"port": 8000}}, not a list'
    ]
    broken = tmp_path / "broken.json"
    broken.write_text('{"port": ', encoding="utf-8")
    monkeypatch.setenv("DRAFTDL_CONFIG", str(broken))
    (line,) = problems()
    assert line.startswith(f"config file {broken}: not valid JSON (line 1 column 10")
    monkeypatch.setenv("DRAFTDL_CONFIG", str(tmp_path))  # a folder cannot be read as a file
    (line,) = problems()
    assert line.startswith(f"DRAFTDL_CONFIG = {str(tmp_path)!r}: cannot be read")
    monkeypatch.delenv("DRAFTDL_CONFIG")
    (tmp_path / "config.json").write_text('"text"', encoding="utf-8")
    assert problems() == [
        'config file config.json: must hold a JSON object like {"port": 8000}, not a str'
    ]


def test_unknown_names_are_warned_about_with_the_closest_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "config.json").write_text('{"max_retry": 2, "colour": 1}', encoding="utf-8")
    monkeypatch.setenv("DRAFTDL_POLL_INTERVALL", "1")
    monkeypatch.setenv("DRAFTDL_SERVER", "http://x")  # the CLI client's, not a setting
    caplog.set_level("WARNING", logger="draftdl.settings")
    load_settings()
    assert [r.getMessage() for r in caplog.records] == [
        'config.json key "max_retry" is not a setting; ignored (did you mean "max_retries"?)',
        'config.json key "colour" is not a setting; ignored',
        "DRAFTDL_POLL_INTERVALL is not a setting; ignored (did you mean DRAFTDL_POLL_INTERVAL?)",
    ]


def test_speeds_sizes_levels_networks_and_hosts_are_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRAFTDL_MAX_OVERALL_DOWNLOAD_LIMIT", "fast")
    monkeypatch.setenv("DRAFTDL_LOWEST_SPEED", "1G")  # aria2 reads K and M only
    monkeypatch.setenv("DRAFTDL_MIN_FREE_SPACE", "lots")
    monkeypatch.setenv("DRAFTDL_LOG_LEVEL", "verbose")
    monkeypatch.setenv("DRAFTDL_URL_DENY_NETWORKS", '["10.0.0.0/8", "10.0.0.0/33"]')
    monkeypatch.setenv("DRAFTDL_ALLOWED_HOSTS", '["ok.example", " "]')
    monkeypatch.setenv("DRAFTDL_CORS_ORIGINS", "http://a.example")
    found = problems()
    speed = (
        "must be bytes per second (a whole number ≥ 0) or aria2 style like '2M' or '500K', "
        "at most 10 GiB/s"
    )
    assert found == [
        f"max_overall_download_limit = 'fast' (from DRAFTDL_MAX_OVERALL_DOWNLOAD_LIMIT): {speed}",
        "cors_origins = 'http://a.example' (from DRAFTDL_CORS_ORIGINS): "
        """must be a JSON list like ["a", "b"]""",
        """allowed_hosts = '["ok.example", " "]' (from DRAFTDL_ALLOWED_HOSTS): """
        "item 1 is empty",
        """url_deny_networks = '["10.0.0.0/8", "10.0.0.0/33"]' (from DRAFTDL_URL_DENY_NETWORKS): """
        "item 1 '10.0.0.0/33' is not a network in CIDR form like 10.0.0.0/8 or fd00::/8",
        f"lowest_speed = '1G' (from DRAFTDL_LOWEST_SPEED): {speed}",
        "min_free_space = 'lots' (from DRAFTDL_MIN_FREE_SPACE): "
        "must be a number of bytes, or with a unit like '500M' or '2G'",
        "log_level = 'verbose' (from DRAFTDL_LOG_LEVEL): "
        "must be one of debug, info, warning, error, critical",
    ]


def test_good_values_are_kept_in_their_checked_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAFTDL_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("DRAFTDL_URL_DENY_NETWORKS", '["10.1.2.3/8", "fd00::/8"]')
    settings = load_settings(max_overall_download_limit="10M")
    assert settings.log_level == "warning"
    assert settings.url_deny_networks == ["10.0.0.0/8", "fd00::/8"]
    assert settings.max_overall_download_limit == "10M"
    assert Settings(max_overall_download_limit=1024, min_free_space="2G").min_free_space == "2G"
    assert Settings(max_overall_download_limit=1024).max_overall_download_limit == "1024"


def test_an_empty_token_is_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAFTDL_API_TOKEN", "")
    assert load_settings().api_token is None
    assert Settings().api_token is None
    assert problems(host="0.0.0.0") == [
        "host = '0.0.0.0' (from --host): not a loopback address, so api_token "
        "(DRAFTDL_API_TOKEN) must be set, or the API is open to the network",
    ]


def test_secrets_are_never_shown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"api_token": 12345678}', encoding="utf-8")
    assert problems() == ['api_token = *** (from config.json key "api_token"): must be a string']


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("DRAFTDL_")}
    return subprocess.run(
        [sys.executable, "-m", "draftdl", "serve", "--data-dir", str(tmp_path / "data")],
        env={**clean, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_refuses_bad_settings_in_one_line(tmp_path: Path) -> None:
    done = serve(tmp_path, DRAFTDL_MAX_RETRIES="x", DRAFTDL_MAX_OVERALL_DOWNLOAD_LIMIT="10 MB/s")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "draftdl: invalid settings: "
        "max_retries = 'x' (from DRAFTDL_MAX_RETRIES): must be a whole number; "
        "max_overall_download_limit = '10 MB/s' (from DRAFTDL_MAX_OVERALL_DOWNLOAD_LIMIT): "
        "must be bytes per second (a whole number ≥ 0) or aria2 style like '2M' or '500K', "
        "at most 10 GiB/s"
    ]
    assert not (tmp_path / "data").exists()
