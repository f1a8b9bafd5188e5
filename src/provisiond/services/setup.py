"""Initialising a data dir: database schema, development TLS material, the DPS instance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provisiond.config import (
    RECORDED_AT_INIT,
    Settings,
    read_settings_file,
    recordable_database,
    write_settings_file,
)
from provisiond.domain.clock import Clock, utc_now
from provisiond.domain.policies import OWNER_POLICY
from provisiond.errors import NotFound
from provisiond.services.instance import InstanceService
from provisiond.store.db import Database
from provisiond.store.migrate import migrate
from provisiond.tls.devcert import DevPki, ensure_dev_pki

__all__ = ["InitResult", "initialise"]


@dataclass(frozen=True, slots=True)
class InitResult:
    id_scope: str
    service_host: str
    https_port: int
    mqtt_port: int
    service_connection_string: str
    ca_certificate: Path
    data_dir: Path
    pki: DevPki

    def as_json(self) -> dict[str, object]:
        """The ``provisiond init --json`` object of the operator contract."""
        return {
            "idScope": self.id_scope,
            "serviceHost": self.service_host,
            "httpsPort": self.https_port,
            "mqttPort": self.mqtt_port,
            "serviceConnectionString": self.service_connection_string,
            "caCertificate": str(self.ca_certificate),
            "dataDir": str(self.data_dir),
        }


async def initialise(settings: Settings, db: Database, clock: Clock = utc_now) -> InitResult:
    """Make the data dir ready to serve; running it again changes nothing."""
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    recorded = read_settings_file(data_dir)
    # Only what is not recorded yet: ``serve --port P`` on an initialised dir serves on P once,
    # it does not rewrite the record (``provisiond settings set`` does).
    values = {name: getattr(settings, name) for name in RECORDED_AT_INIT} | {
        "database": recordable_database(settings.database)
    }
    missing = {name: value for name, value in values.items() if name not in recorded}
    if missing:
        write_settings_file(data_dir, missing)
    await migrate(db)
    pki = ensure_dev_pki(data_dir / "tls", clock(), hosts=(settings.service_host,))
    instances = InstanceService(db, clock)
    instance = await instances.ensure(settings.service_host)
    owner = await instances.policy(OWNER_POLICY)
    if owner is None:
        raise NotFound(f"the {OWNER_POLICY} policy was deleted from the database")
    host = instance.service_host if settings.port == 443 else f"{instance.service_host}:{settings.port}"
    return InitResult(
        id_scope=instance.id_scope,
        service_host=instance.service_host,
        https_port=settings.port,
        mqtt_port=settings.mqtt_port,
        service_connection_string=owner.connection_string(host),
        ca_certificate=pki.ca_cert.resolve(),
        data_dir=data_dir,
        pki=pki,
    )
