"""Settings from ``DRAFTDL_*`` variables and an optional ``config.json``; built in ``main()``.

``load_settings`` is how the server reads them. It gathers the three sources itself (the config
file, then ``DRAFTDL_*`` variables, then the command line, later ones winning), so that a bad
value is reported with its name and where it came from, and names it does not know are warned
about instead of being dropped. ``Settings(...)`` still reads the same sources through
pydantic-settings (tests build it directly); the checks are the same either way.
"""

from __future__ import annotations

import contextvars
import difflib
import ipaddress
import json
import logging
import os
import socket
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    InstanceOf,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from draftdl.drafts.profiles import DEFAULT_PROFILE, profile_problem
from draftdl.errors import FieldProblem, SettingsError
from draftdl.tasks.options import GUARDED, DownloadRule, parse_rules
from draftdl.units import SIZE_HELP, parse_amount, parse_speed
from draftdl.urls import http_url_problem
from draftdl.webhooks.secret import check_secret
from draftdl.webhooks.spec import WebhookTarget, read_target

log = logging.getLogger(__name__)

ENV_PREFIX = "DRAFTDL_"
CONFIG_VARIABLE = "DRAFTDL_CONFIG"
DEFAULT_CONFIG = "config.json"
# DRAFTDL_* variables that are not settings: the config file's name, the CLI client's server.
OTHER_VARIABLES = (CONFIG_VARIABLE, "DRAFTDL_SERVER")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# Shown as *** in error lines (download_rules may hold cookies; its problems name the place).
SECRETS = frozenset(
    {
        "api_token",
        "aria2_rpc_secret",
        "download_rules",
        "webhook_secret",
        "webhooks",
        "database_url",  # (may hold a password, as redis_url may)
        "redis_url",
    }
)
LIST_EXAMPLE = '["a", "b"]'
# Draft builds are CPU work in their own processes: one core is left to the event loop and
# aria2c (the API's latency), and two builders keep up with many tasks finishing together.
BUILD_WORKERS = max(1, min(2, (os.cpu_count() or 1) - 1))

# Set while load_settings validates what it gathered: pydantic-settings must not read again.
_given_only = contextvars.ContextVar("draftdl_settings_given_only", default=False)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def config_path(environ: Mapping[str, str]) -> str:
    """The config file to read: ``DRAFTDL_CONFIG`` as it is now, else ``config.json``."""
    return environ.get(CONFIG_VARIABLE) or DEFAULT_CONFIG


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DRAFTDL_",
        extra="ignore",
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    data_dir: Path = Path("./data")
    database_url: str | None = None
    role: Literal["all", "api", "worker"] = Field(
        "all",
        description="all: one process does everything; api and worker: nodes of a cluster "
        "sharing a PostgreSQL database_url",
    )
    node_name: str | None = Field(
        None, max_length=64, description="this node's name in a cluster (default: host:port)"
    )
    redis_url: SecretStr | None = Field(None, description="Redis, for events between nodes")
    lease_seconds: float = Field(
        30.0, ge=2, le=3600, description="how long a worker's claim on a task lasts unrenewed"
    )
    downloads_path: Path | None = Field(
        None,
        description="where downloads go (default: data_dir/downloads); in a cluster, one "
        "shared folder at the same path on every worker",
    )
    drafts_root: Path | None = None
    draft_profile: str = Field(
        DEFAULT_PROFILE,
        description="version markers and draft folder: jianying-5.9, jianying-pro-10 or capcut",
    )

    aria2c_path: str | None = None
    aria2_rpc_port: int = Field(6800, ge=0, le=65535)
    aria2_rpc_url: str | None = None
    aria2_rpc_secret: SecretStr | None = None

    max_concurrent_downloads: int = Field(50, ge=1)
    max_active_tasks: int = Field(10, ge=1)
    progress_interval: float = Field(1.0, gt=0)
    poll_interval: float = Field(0.25, gt=0, description="monitor tick while tasks download")
    flush_interval: float = Field(3.0, gt=0, description="how often progress is saved")
    health_check_interval: float = Field(5.0, gt=0)
    max_retries: int = Field(3, ge=0, description="retries of a file's transient failures")
    retry_base: float = Field(1.0, gt=0, description="first retry's delay; doubles each time")
    retry_max_delay: float = Field(60.0, gt=0, description="the longest delay between retries")
    max_overall_download_limit: str = "0"
    cleanup_days: int = Field(7, ge=0)
    shutdown_grace: float = Field(30.0, ge=0, description="seconds for running builds at stop")
    build_workers: int = Field(
        BUILD_WORKERS, ge=1, le=64, description="processes that build drafts, one draft each"
    )
    max_files_per_task: int = Field(10_000, ge=1)
    max_request_bytes: int = Field(10 * 1024 * 1024, ge=1024)

    api_token: SecretStr | None = None
    public_url: str | None = Field(
        None, description="the address clients reach the API at, for the OpenAPI document"
    )
    cors_origins: list[str] = Field(default_factory=list)
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the API answers to besides the loopback names; '*' for any",
    )
    local_media_roots: list[Path] = Field(
        default_factory=list,
        description="Folders whose files a job may name by local path (default: none)",
    )
    url_deny_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs that submitted URLs may not reach (checked on the resolved address)",
    )
    download_rules: list[InstanceOf[DownloadRule]] = Field(
        default_factory=list,
        description="request options (headers, proxy, max_download_limit) for URLs whose "
        'host matches, e.g. [{"match": "*.example.com", "headers": {"Referer": "..."}}]',
    )
    lowest_speed: str = Field("1K", description="slower than this for stall_timeout fails a file")
    stall_timeout: float = Field(60.0, gt=0)
    min_free_space: str = Field("256M", description="below this, tasks wait and health degrades")
    reconcile_interval: float = Field(30.0, gt=0, description="how often stranded tasks are sought")
    max_wait: float = Field(
        60.0, gt=0, le=60, description="the longest long-poll (?wait=) honoured, in seconds"
    )
    webhooks: list[InstanceOf[WebhookTarget]] = Field(
        default_factory=list,
        description='every task\'s status events, e.g. [{"url": "https://...", "events": '
        '["completed", "failed"]}]',
    )
    webhook_secret: SecretStr | None = Field(
        None, description="whsec_<base64>; made once and kept in the data folder when unset"
    )
    webhook_retry_base: float = Field(5.0, gt=0, description="first retry's delay; doubles")
    webhook_retry_for: float = Field(86400.0, gt=0, description="seconds a delivery is retried")
    webhook_timeout: float = Field(10.0, gt=0, description="seconds a receiver has to answer")
    log_level: str = "info"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if _given_only.get():
            return (init_settings,)
        config = JsonConfigSettingsSource(
            settings_cls, json_file=config_path(os.environ), json_file_encoding="utf-8"
        )
        return (init_settings, env_settings, config)

    @field_validator("api_token", "aria2_rpc_secret", mode="before")
    @classmethod
    def _empty_secret_is_none(cls, value: object) -> object:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        return None if isinstance(raw, str) and not raw.strip() else value

    @field_validator("max_overall_download_limit", "lowest_speed", mode="before")
    @classmethod
    def _aria2_speed(cls, value: object) -> object:
        """aria2 style (bytes/s, K or M): a value aria2c refuses would stop it at every start."""
        if isinstance(value, str | int):
            parse_speed(value.strip() if isinstance(value, str) else value)
            return str(value).strip()
        return value

    @field_validator("min_free_space", mode="before")
    @classmethod
    def _amount(cls, value: object) -> object:
        if isinstance(value, str | int):
            try:
                parse_amount(value.strip() if isinstance(value, str) else value)
            except ValueError:
                raise ValueError(SIZE_HELP) from None
            return str(value).strip()
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().lower() not in LOG_LEVELS:
                raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
            return value.strip().lower()
        return value

    @field_validator("draft_profile", mode="before")
    @classmethod
    def _draft_profile(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
        if (why := profile_problem(value)) is not None:
            raise ValueError(why)
        return value

    @field_validator("url_deny_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        networks = []
        for i, item in enumerate(value):
            try:
                networks.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ValueError(
                    f"item {i} {item!r} is not a network in CIDR form like 10.0.0.0/8 or fd00::/8"
                ) from None
        return networks

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if problem := http_url_problem(value, "can be the public_url"):
            raise ValueError(problem)
        return value

    @field_validator("webhooks", mode="before")
    @classmethod
    def _webhooks(cls, value: object) -> object:
        if not isinstance(value, list):
            return value  # pydantic says what is wrong
        problems: list[FieldProblem] = []
        targets = [read_target(item, (i,), problems) for i, item in enumerate(value)]
        if problems:
            raise ValueError(
                "; ".join(f"item {'.'.join(map(str, p.loc))}: {p.msg}" for p in problems[:5])
            )
        return targets

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _webhook_secret(cls, value: object) -> object:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(raw, str):
            if not raw.strip():
                return None
            check_secret(raw.strip())
            return raw.strip()
        return value

    @field_validator("download_rules", mode="before")
    @classmethod
    def _download_rules(cls, value: object) -> object:
        return list(parse_rules(value))

    @model_validator(mode="after")
    def _no_rule_proxy_behind_the_guard(self) -> Settings:
        proxied = [i for i, rule in enumerate(self.download_rules) if rule.layer.proxy]
        if self.url_deny_networks and proxied:
            reason = "; ".join(f"item {i}.proxy: {GUARDED}" for i in proxied)
            raise PydanticCustomError(
                "guarded_proxy", "{reason}", {"setting": "download_rules", "reason": reason}
            )
        return self

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for i, item in enumerate(value):
            if not item.strip():
                raise ValueError(f"item {i} is empty")
        return [item.strip() for item in value]

    @model_validator(mode="after")
    def _refuse_open_bind_without_token(self) -> Settings:
        if not is_loopback(self.host) and self.api_token is None:
            raise PydanticCustomError(
                "open_bind",
                "host {host} is not a loopback address: set DRAFTDL_API_TOKEN "
                "so that the API is not open to the network",
                {
                    "host": repr(self.host),
                    "setting": "host",
                    "reason": "not a loopback address, so api_token (DRAFTDL_API_TOKEN) "
                    "must be set, or the API is open to the network",
                },
            )
        return self

    @model_validator(mode="after")
    def _cluster_needs_postgresql(self) -> Settings:
        if self.role != "all" and not (self.database_url or "").startswith("postgresql"):
            raise PydanticCustomError(
                "cluster_database",
                "role {role} needs a PostgreSQL database_url (postgresql+asyncpg://...)",
                {
                    "role": self.role,
                    "setting": "database_url",
                    "reason": f"role {self.role} shares the database with the other nodes: "
                    "it must be PostgreSQL (postgresql+asyncpg://...)",
                },
            )
        return self

    @property
    def cluster(self) -> bool:
        """A node of a cluster (api or worker), rather than the one process of role all."""
        return self.role != "all"

    @property
    def node(self) -> str:
        return self.node_name or f"{socket.gethostname()}:{self.port}"

    @property
    def downloads_dir(self) -> Path:
        return self.downloads_path or self.data_dir / "downloads"

    @property
    def aria2_dir(self) -> Path:
        return self.data_dir / "aria2"

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'tasks.db').resolve()}"


def load_settings(**overrides: Any) -> Settings:
    """The server's settings: ``overrides`` (command-line options) over ``DRAFTDL_*`` variables
    over the config file over the defaults.

    Raises ``SettingsError`` with one line per problem, each naming the setting and its source;
    logs a warning for each name in the config file or the environment that is not a setting.
    """
    for name in overrides:
        if name not in Settings.model_fields:
            raise TypeError(f"load_settings() got an unknown setting {name!r}")
    given = _Given()
    path = config_path(os.environ)
    for name, value in _read_config(path, given.file_problems).items():
        if name in Settings.model_fields:
            given.set(name, value, f'from {path} key "{name}"')
        else:
            log.warning('%s key "%s" is not a setting; ignored%s', path, name, _hint(name, FIELDS))
    for key, value in os.environ.items():
        upper = key.upper()
        if upper.startswith(ENV_PREFIX) and upper not in OTHER_VARIABLES:
            given.set_from_environment(key, value)
    for name, value in overrides.items():
        given.set(name, value, f"from --{name.replace('_', '-')}")
    return given.validate()


FIELDS = list(Settings.model_fields)
VARIABLES = [f"{ENV_PREFIX}{name.upper()}" for name in FIELDS] + list(OTHER_VARIABLES)


@dataclass
class _Given:
    """What the sources set, as written and from where, and what is wrong with it."""

    values: dict[str, Any] = field(default_factory=dict)
    written: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    file_problems: list[str] = field(default_factory=list)

    def set(self, name: str, value: Any, origin: str) -> None:
        """A later source replaces the value, and any problem, of an earlier one."""
        self.values[name] = self.written[name] = value
        self.origins[name] = origin
        self.problems.pop(name, None)

    def set_from_environment(self, key: str, text: str) -> None:
        name = key.upper().removeprefix(ENV_PREFIX).lower()
        if name not in Settings.model_fields:
            log.warning("%s is not a setting; ignored%s", key, _hint(key.upper(), VARIABLES, ""))
            return
        self.set(name, text, f"from {key}")
        if typing.get_origin(Settings.model_fields[name].annotation) is list:
            try:
                self.values[name] = json.loads(text)
            except ValueError:
                reason = f"must be a JSON list like {LIST_EXAMPLE}"
                self.problems[name] = _line(name, text, self.origins[name], reason)

    def validate(self) -> Settings:
        values = {k: v for k, v in self.values.items() if k not in self.problems}
        settings: Settings | None = None
        token = _given_only.set(True)
        try:
            settings = Settings(**values)
        except ValidationError as exc:
            for error in exc.errors():
                name, line = _describe(error, self.written, self.origins)
                self.problems.setdefault(name, line)
        finally:
            _given_only.reset(token)
        if settings is None or self.file_problems or self.problems:
            ordered = sorted(self.problems.items(), key=lambda item: _order(item[0]))
            raise SettingsError(self.file_problems + [line for _, line in ordered])
        return settings


def _read_config(path: str, problems: list[str]) -> dict[str, Any]:
    """The config file's settings; a missing ``config.json`` is fine, a named file must exist."""
    named = os.environ.get(CONFIG_VARIABLE)
    where = f"{CONFIG_VARIABLE} = {named!r}" if named else f"config file {path}"
    if named == "":
        problems.append(f"{CONFIG_VARIABLE} is empty: set it to a config file's path or unset it")
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        if named:
            problems.append(f"{where}: no such file")
        return {}
    except OSError as exc:
        problems.append(f"{where}: cannot be read ({exc.strerror or exc})")
        return {}
    except UnicodeDecodeError:
        problems.append(f"config file {path}: not UTF-8 text")
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(
            f"config file {path}: not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})"
        )
        return {}
    if not isinstance(data, dict):
        problems.append(
            f'config file {path}: must hold a JSON object like {{"port": 8000}}, '
            f"not a {type(data).__name__}"
        )
        return {}
    return data


def _hint(name: str, known: list[str], quote: str = '"') -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {quote}{close[0]}{quote}?)" if close else ""


def _order(name: str) -> int:
    """Problems are listed in the order of the settings table."""
    return FIELDS.index(name) if name in FIELDS else len(FIELDS)


def _line(name: str, value: object, origin: str | None, reason: str) -> str:
    shown = "***" if name in SECRETS else repr(value)
    return f"{name} = {shown} ({origin or 'default'}): {reason}"


def _describe(
    error: ErrorDetails, raw: Mapping[str, Any], origins: Mapping[str, str]
) -> tuple[str, str]:
    ctx = error.get("ctx") or {}
    loc = error["loc"]
    name = str(loc[0]) if loc else str(ctx.get("setting", ""))
    if not name:
        return "", error["msg"]
    value = raw[name] if name in raw else Settings.model_fields[name].default
    reason = _reason(error)
    if len(loc) > 1:
        reason = f"item {loc[1]}: {reason}"
    return name, _line(name, value, origins.get(name), reason)


REASONS = {
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": f"must be a JSON list like {LIST_EXAMPLE}",
    "path_type": "must be a path",
}
BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "more than"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}


def _reason(error: ErrorDetails) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in REASONS:
        return REASONS[kind]
    if kind in BOUNDS:
        key, words = BOUNDS[kind]
        bound = ctx.get(key)
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return f"must be {words} {bound}"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if "reason" in ctx:
        return str(ctx["reason"])
    msg = error["msg"]
    return msg[:1].lower() + msg[1:]
