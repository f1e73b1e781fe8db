"""Settings from ``DRAFTDL_*`` variables and an optional ``config.json``; built in ``main()``."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DRAFTDL_",
        extra="ignore",
        json_file=os.environ.get("DRAFTDL_CONFIG", "config.json"),
        json_file_encoding="utf-8",
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    data_dir: Path = Path("./data")
    database_url: str | None = None
    drafts_root: Path | None = None

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
    max_retries: int = Field(3, ge=0)
    max_overall_download_limit: str = "0"
    cleanup_days: int = Field(7, ge=0)
    shutdown_grace: float = Field(30.0, ge=0, description="seconds for running builds at stop")
    max_files_per_task: int = Field(10_000, ge=1)
    max_request_bytes: int = Field(10 * 1024 * 1024, ge=1024)

    api_token: SecretStr | None = None
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
    lowest_speed: str = Field("1K", description="slower than this for stall_timeout fails a file")
    stall_timeout: float = Field(60.0, gt=0)
    min_free_space: str = Field("256M", description="below this, tasks wait and health degrades")
    reconcile_interval: float = Field(30.0, gt=0, description="how often stranded tasks are sought")
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
        return (init_settings, env_settings, JsonConfigSettingsSource(settings_cls))

    @model_validator(mode="after")
    def _refuse_open_bind_without_token(self) -> Settings:
        if not is_loopback(self.host) and self.api_token is None:
            raise ValueError(
                f"host {self.host!r} is not a loopback address: set DRAFTDL_API_TOKEN "
                "so that the API is not open to the network"
            )
        return self

    @property
    def downloads_dir(self) -> Path:
        return self.data_dir / "downloads"

    @property
    def aria2_dir(self) -> Path:
        return self.data_dir / "aria2"

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'tasks.db').resolve()}"
