"""Settings, read once and typed.

Precedence, highest first: command-line flags, environment variables ``PROVISIOND_*``, the
settings file ``settings.json`` in the data directory (written by ``provisiond init``), defaults.
Nothing else in the package reads ``os.environ``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = ["SETTINGS_FILE", "Settings", "load_settings"]

SETTINGS_FILE = "settings.json"
DEFAULT_DATA_DIR = Path("provisiond-data")


class Settings(BaseSettings):
    """Everything an operator can set. Paths are resolved against the working directory."""

    model_config = SettingsConfigDict(env_prefix="PROVISIOND_", extra="ignore", frozen=True)

    data_dir: Path = DEFAULT_DATA_DIR
    database: str | None = Field(default=None, description="database URL; default SQLite in the data dir")
    host: str = "127.0.0.1"
    port: int = Field(default=8443, ge=1, le=65535)
    mqtt_port: int = Field(default=8883, ge=1, le=65535)
    service_host: str = "localhost"
    processes: int = Field(
        default=1, ge=1, description="serve processes sharing the HTTPS port (more than 1: PostgreSQL only)"
    )
    tls_cert: Path | None = None
    tls_key: Path | None = None
    secrets_key_file: Path | None = Field(
        default=None,
        description="the keyring of outer keys that seal secrets; default secrets.key in data dir",
    )
    log_level: str = "info"
    registration_retry_after: int = Field(
        default=1, ge=0, le=60, description="Retry-After for devices, seconds"
    )
    bench_endpoints: bool = Field(default=False, description="benchmarks only: trivial baseline routes")
    webhook_timeout: float = Field(
        default=10.0, gt=0, le=120, description="custom allocation webhook timeout"
    )
    webhook_allowlist: list[str] = Field(
        default_factory=lambda: ["https://*"], description="fnmatch patterns a webhookUrl must match"
    )
    webhook_allow_http: bool = False
    worker_batch_size: int = Field(default=5000, ge=1, le=100_000, description="items per worker transaction")
    worker_lease_seconds: float = Field(
        default=30.0, gt=0, description="a dead worker's operation is taken over after this"
    )
    in_process_worker: bool = Field(default=True, description="serve also runs the operation worker")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="CIDRs of TLS-terminating proxies whose x-forwarded-client-cert header is believed",
    )
    header_timeout: float = Field(
        default=15.0,
        gt=0,
        description="a request head must arrive in full within this, and a body never pause longer, seconds",
    )
    keepalive_timeout: float = Field(
        default=30.0, gt=0, description="a kept-alive HTTP connection idle this long is closed, seconds"
    )
    send_timeout: float = Field(
        default=30.0,
        gt=0,
        description="bytes queued for a client that does not read must go within this (plus 1 s per 64 KiB)",
    )
    max_connections: int = Field(
        default=10_000, ge=1, description="connections one serve process holds (HTTPS and MQTT together)"
    )

    @property
    def database_url(self) -> str:
        """The SQLAlchemy async URL: ``sqlite+aiosqlite`` or ``postgresql+asyncpg``."""
        if not self.database:
            return f"sqlite+aiosqlite:///{(self.data_dir / 'provisiond.db').resolve()}"
        url = self.database
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                return "postgresql+asyncpg://" + url[len(plain) :]
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
        return url

    @property
    def keyring_path(self) -> Path:
        """Where the outer keys live: ``PROVISIOND_SECRETS_KEY_FILE``, else the data dir."""
        return self.secrets_key_file or self.data_dir / "secrets.key"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _DataDirFile(settings_cls, init_settings, env_settings))


class _DataDirFile(PydanticBaseSettingsSource):
    """Values from ``settings.json`` in the data dir that flags or the environment chose."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self._init = init_settings
        self._env = env_settings

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ returns the whole file at once

    def __call__(self) -> dict[str, Any]:
        data_dir = self._init().get("data_dir") or self._env().get("data_dir") or DEFAULT_DATA_DIR
        path = Path(data_dir) / SETTINGS_FILE
        if not path.is_file():
            return {}
        values = json.loads(path.read_text())
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a JSON object, not {type(values).__name__}")
        values.pop("data_dir", None)
        return values


def load_settings(**flags: Any) -> Settings:
    """Build the settings from flags (``None`` means "not given") over env, file and defaults."""
    return Settings(**{name: value for name, value in flags.items() if value is not None})


def write_settings_file(settings: Settings, **values: Any) -> None:
    """Record values (ports chosen at init) in the data dir's settings file, keeping the rest."""
    path = settings.data_dir / SETTINGS_FILE
    current: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    current.update(values)
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
