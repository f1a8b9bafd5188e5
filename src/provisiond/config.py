"""Settings, read once and typed.

Precedence, highest first: command-line flags, environment variables ``PROVISIOND_*``, the
settings file ``settings.json`` in the data directory (written by ``provisiond init``), defaults.
Nothing else in the package reads ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, TypeAdapter
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

__all__ = [
    "RECORDED_AT_INIT",
    "SETTINGS_FILE",
    "Settings",
    "database_conflict",
    "init_conflicts",
    "load_settings",
    "read_settings_file",
    "record_setting",
    "recordable_database",
    "redact_url",
    "setting_name",
    "write_settings_file",
]

SETTINGS_FILE = "settings.json"
DEFAULT_DATA_DIR = Path("provisiond-data")


_DRIVERS = {"postgresql", "postgres", "postgresql+asyncpg", "sqlite", "sqlite+aiosqlite"}
_LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _database_url(url: str | None) -> str | None:
    """A URL of an engine provisiond runs on, or None (SQLite in the data dir)."""
    if url is None:
        return None
    try:
        driver = make_url(url).drivername
    except ArgumentError:
        raise ValueError("not a database URL (postgresql://user@host/db or sqlite:///path)") from None
    if driver not in _DRIVERS:
        raise ValueError(f"{driver!r} databases are not supported: PostgreSQL or SQLite")
    return url


def _log_level(level: str) -> str:
    if level.lower() not in _LOG_LEVELS:
        raise ValueError(f"a log level is one of {', '.join(_LOG_LEVELS)}")
    return level.lower()


def _networks(cidrs: list[str]) -> list[str]:
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ValueError(f"{cidr!r} is not a network (CIDR, e.g. 10.0.0.0/8)") from None
    return cidrs


class Settings(BaseSettings):
    """Everything an operator can set. Paths are resolved against the working directory."""

    model_config = SettingsConfigDict(env_prefix="PROVISIOND_", extra="ignore", frozen=True)

    data_dir: Path = DEFAULT_DATA_DIR
    database: Annotated[str | None, AfterValidator(_database_url)] = Field(
        default=None, description="database URL; default SQLite in the data dir"
    )
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
    log_level: Annotated[str, AfterValidator(_log_level)] = "info"
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
    webhook_ca_file: Path | None = Field(default=None, description="PEM CAs trusted by outbound webhooks")
    metrics_token_file: Path | None = Field(default=None, description="a bearer token /metrics accepts")
    log_format: Literal["text", "json"] = "text"
    worker_batch_size: int = Field(default=5000, ge=1, le=100_000, description="items per worker transaction")
    worker_lease_seconds: float = Field(
        default=30.0, gt=0, description="a dead worker's operation is taken over after this"
    )
    in_process_worker: bool = Field(default=True, description="serve also runs the operation worker")
    audit_retention_days: int | None = Field(
        default=None,
        ge=1,
        le=36500,
        description="audit entries older than this many days are deleted by the worker (unset: kept)",
    )
    trusted_proxies: Annotated[list[str], AfterValidator(_networks)] = Field(
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
    crl_next_update_days: float = Field(
        default=7.0,
        gt=0,
        le=365,
        description="a CRL's nextUpdate is this many days after it is signed; re-signed at half of it",
    )
    hub_retry_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="how long a throttling hub (429) is retried before the registration fails, seconds",
    )
    max_connections: int = Field(
        default=10_000, ge=1, description="connections one serve process holds (HTTPS and MQTT together)"
    )

    @property
    def crl_period(self) -> timedelta:
        """``crl_next_update_days`` as a duration (fractions of a day allowed, for tests)."""
        return timedelta(days=self.crl_next_update_days)

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
        values = read_settings_file(Path(data_dir))
        values.pop("data_dir", None)
        return values


def read_settings_file(data_dir: Path) -> dict[str, Any]:
    """The data dir's ``settings.json`` as a dict (empty when there is none)."""
    path = data_dir / SETTINGS_FILE
    if not path.is_file():
        return {}
    values = json.loads(path.read_text())
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a JSON object, not {type(values).__name__}")
    return values


def load_settings(**flags: Any) -> Settings:
    """Build the settings from flags (``None`` means "not given") over env, file and defaults."""
    return Settings(**{name: value for name, value in flags.items() if value is not None})


def write_settings_file(data_dir: Path, values: dict[str, Any], remove: tuple[str, ...] = ()) -> None:
    """Record ``values`` in the data dir's settings file, keeping the rest and dropping ``remove``.

    Written to a temporary file and renamed, so a crash leaves the old file or the new one, never
    half of one: every later command reads this file first.
    """
    path = data_dir / SETTINGS_FILE
    current = read_settings_file(data_dir)
    current.update(values)
    for name in remove:
        current.pop(name, None)
    partial = path.with_name(SETTINGS_FILE + ".partial")
    # 0600 from its creation whatever the umask: the file may hold a database password.
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(current, indent=2, sort_keys=True) + "\n")
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)


#: What ``init`` records, so that later commands on the data dir use the same values.
RECORDED_AT_INIT = ("database", "port", "mqtt_port")


def redact_url(url: str | None) -> str:
    """A database URL fit to print: no password, whether in its user part or its query."""
    if not url:
        return "SQLite in the data dir"
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "<a URL that does not parse>"
    query = {name: value for name, value in parsed.query.items() if name.lower() != "password"}
    shown = parsed.set(query=query).render_as_string(hide_password=True)
    # An unencoded "@" in a password leaves its tail in the host part: cut to the last "@".
    return re.sub(r"(://[^/:@]*:)[^/]*@", r"\1***@", shown)


def recordable_database(url: str | None) -> str | None:
    """The URL as recorded: a relative SQLite path made absolute, so that the record names the
    same file whatever directory a later command runs in."""
    if not url:
        return url
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database and not Path(parsed.database).is_absolute():
        return parsed.set(database=str(Path(parsed.database).resolve())).render_as_string(hide_password=False)
    return url


def _database_identity(settings: Settings) -> str:
    """The URL with equivalent spellings made equal (``postgres://`` and ``postgresql://``, a
    relative and an absolute SQLite path), so only a real difference counts as a conflict."""
    url = settings.database_url
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix):
        return prefix + str(Path(url[len(prefix) :]).resolve())
    return url


def database_conflict(settings: Settings) -> str | None:
    """Why the database these settings name is not the one ``init`` recorded, or None.

    A data dir initialised on PostgreSQL and then used without ``--database`` would otherwise get
    a new, empty SQLite database; the file records the URL at init, so ``settings`` already
    carries it unless a flag or ``PROVISIOND_DATABASE`` named another, which is refused.
    """
    recorded = read_settings_file(settings.data_dir)
    if "database" not in recorded:  # not initialised yet, or by a version that did not record it
        return None
    on_record = settings.model_copy(update={"database": recorded["database"]})
    if _database_identity(on_record) == _database_identity(settings):
        return None
    return (
        f"this data dir uses the database {redact_url(recorded['database'])} (recorded at init), "
        f"not {redact_url(settings.database)}; drop --database/PROVISIOND_DATABASE, or change the "
        "recorded one with `provisiond settings set database URL`"
    )


def init_conflicts(settings: Settings) -> list[str]:
    """The recorded settings ``settings`` would change, as ``name`` = value lines for ``init``.

    ``init`` on an initialised data dir changes nothing; a port given that differs from the one
    recorded would leave a running server and the printed connection string disagreeing, so
    ``init`` refuses it and names the command that does change it.
    """
    recorded = read_settings_file(settings.data_dir)
    return [
        f"it records {name} {recorded[name]}, not {getattr(settings, name)} "
        f"(to change it: `provisiond settings set {name.replace('_', '-')} {getattr(settings, name)}`)"
        for name in ("port", "mqtt_port")
        if name in recorded and recorded[name] != getattr(settings, name)
    ]


def setting_name(text: str) -> str:
    """The field a ``provisiond settings`` argument names (``mqtt-port`` or ``mqtt_port``)."""
    name = text.strip().lower().replace("-", "_")
    if name in _FIXED:
        raise ValueError(f"{name} cannot be recorded: {_FIXED[name]}")
    if name not in Settings.model_fields:
        known = ", ".join(sorted(n.replace("_", "-") for n in Settings.model_fields if n not in _FIXED))
        raise ValueError(f"no setting {text!r}; the settings are: {known}")
    return name


_FIXED = {
    "data_dir": "settings.json lives in it; pass --data-dir or PROVISIOND_DATA_DIR",
    "service_host": "the DPS instance and its development certificate were made for it at the first init",
}


def record_setting(data_dir: Path, name: str, text: str | None) -> tuple[Any, Any]:
    """Validate and record one setting in ``settings.json``; the values before and after, as JSON.
    Raises pydantic's ValidationError, or ValueError for a data dir that does not exist.

    ``text`` None drops the setting, so its default applies; a setting ``init`` records (the
    database, the ports) is recorded at its default instead, so the data dir keeps the record
    that refuses another database.

    ``text`` is read as JSON when it parses (``9443``, ``true``, ``["https://*"]``, ``null``),
    else taken as a string (a URL, a path).
    """
    if not data_dir.is_dir():
        raise ValueError(f"there is no data dir {data_dir}: create it with `provisiond init`")
    before = read_settings_file(data_dir).get(name)
    field = Settings.model_fields[name]
    if text is None and name not in RECORDED_AT_INIT:
        write_settings_file(data_dir, {}, remove=(name,))
        return before, None
    value: Any = field.default  # what init records stays recorded: unset records the default
    if text is not None:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
    kind: Any = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    adapter: TypeAdapter[Any] = TypeAdapter(kind)  # the field's type, bounds and checks; no other source
    checked = adapter.dump_python(adapter.validate_python(value), mode="json")
    if name == "database":
        checked = recordable_database(checked)
    write_settings_file(data_dir, {name: checked})
    return before, checked
