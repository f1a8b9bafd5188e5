"""``provisiond dps …``: the DPS instance's shared access policies, hubs, regions and CAs
(credential policies and certificates: ``cli/certificates.py``)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

import typer

from provisiond.cli.certificates import certificate_app, credential_policy_app
from provisiond.cli.common import JsonFlag, emit, fail, group, run, with_db, with_settings
from provisiond.config import Settings
from provisiond.domain.certificates import CertificateInfo
from provisiond.domain.mosquitto_hubs import mosquitto_secret
from provisiond.domain.policies import parse_rights
from provisiond.errors import InvalidInput
from provisiond.services.cas import CaService
from provisiond.services.hubs import HubService
from provisiond.services.instance import InstanceService
from provisiond.store.db import Database
from provisiond.wiring import hub_connections

__all__ = ["dps_app"]

dps_app = group("The DPS instance of this data dir.")
policy_app = group("Shared access policies (who may call the service API).")
hub_app = group("IoT hubs linked to the instance (where devices are assigned).")
region_app = group("Client network -> region table, for geoLatency allocation.")
ca_app = group("CA certificates enrollment groups name in caReferences.")
allocation_app = group("The instance's default allocation policy.")
dps_app.add_typer(policy_app, name="policy")
dps_app.add_typer(hub_app, name="hub")
dps_app.add_typer(region_app, name="region")
dps_app.add_typer(allocation_app, name="allocation")
dps_app.add_typer(ca_app, name="ca")
dps_app.add_typer(credential_policy_app, name="credential-policy")
dps_app.add_typer(certificate_app, name="certificate")


@policy_app.command("create")
@with_settings()
def policy_create(
    settings: Settings,
    name: str,
    rights: Annotated[
        str, typer.Option("--rights", help="comma-separated, e.g. EnrollmentRead,EnrollmentWrite")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Create a policy with its own keys; prints its connection string."""

    async def action(db: Database) -> dict[str, object]:
        service = InstanceService(db)
        parsed = parse_rights(rights)
        instance = await service.get()
        policy = await service.create_policy(name, parsed)
        host = instance.service_host if settings.port == 443 else f"{instance.service_host}:{settings.port}"
        return {
            "name": policy.name,
            "rights": sorted(r.value for r in policy.rights),
            "primaryKey": policy.primary_key,
            "secondaryKey": policy.secondary_key,
            "connectionString": policy.connection_string(host),
        }

    data = run(with_db(settings, action))
    emit(as_json, data, f"created policy {name}\nconnection string: {data['connectionString']}")


@policy_app.command("list")
@with_settings()
def policy_list(settings: Settings, as_json: JsonFlag = False) -> None:
    """List policies and their rights (keys are not shown)."""
    policies = run(with_db(settings, lambda db: InstanceService(db).policies()))
    rows = [{"name": p.name, "rights": sorted(r.value for r in p.rights)} for p in policies]
    emit(as_json, {"policies": rows}, "\n".join(f"{r['name']}\t{','.join(r['rights'])}" for r in rows))


@policy_app.command("delete")
@with_settings()
def policy_delete(settings: Settings, name: str, as_json: JsonFlag = False) -> None:
    """Delete a policy; tokens signed with its keys stop working (within two seconds on a running server)."""
    run(with_db(settings, lambda db: InstanceService(db).delete_policy(name)))
    emit(as_json, {"deleted": name}, f"deleted policy {name}")


def _read_text(path: Path | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read the {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None


@hub_app.command("add")
@with_settings()
def hub_add(
    settings: Settings,
    host_name: str,
    weight: Annotated[int, typer.Option("--weight", help="share of hashed allocation (1-1000)")] = 1,
    region: Annotated[str | None, typer.Option("--region", help="region name, for geoLatency")] = None,
    connector: Annotated[
        str | None,
        typer.Option(
            "--connector",
            help="how the hub learns its devices: none, iothub, mosquitto "
            "[default: none; kept when changing a hub]",
            show_default=False,
        ),
    ] = None,
    connection_string_file: Annotated[
        Path | None,
        typer.Option(
            "--connection-string-file",
            help="iothub: a file holding a policy's connection string (RegistryWrite + ServiceConnect)",
        ),
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="iothub: reach the hub at this https:// URL instead")
    ] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option("--ca-file", help="iothub, mosquitto: PEM CA certificates the hub's TLS chains to"),
    ] = None,
    broker: Annotated[
        str | None, typer.Option("--broker", help="mosquitto: the broker's admin listener, mqtts://HOST:PORT")
    ] = None,
    admin_user: Annotated[
        str | None, typer.Option("--admin-user", help="mosquitto: the dynamic-security admin account")
    ] = None,
    admin_password_file: Annotated[
        Path | None, typer.Option("--admin-password-file", help="mosquitto: a file holding its password")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Link an IoT hub (or change a linked hub's weight, region and connector)."""
    secret = _read_text(connection_string_file, "connection string file")
    ca_pem = _read_text(ca_file, "CA file")
    if connector == "mosquitto":  # the admin account, sealed as one secret; the broker, its address
        password = _read_text(admin_password_file, "admin password file") or ""
        try:
            secret = mosquitto_secret(admin_user or "", password)
        except InvalidInput as exc:
            raise fail(exc.message) from None
        endpoint = broker
    hub = run(
        with_db(
            settings,
            lambda db: hub_connections(settings, db).link(
                host_name, weight, region, connector, secret, endpoint, ca_pem
            ),
        )
    )
    data = {"hostName": hub.host_name, "weight": hub.weight, "region": hub.region, "connector": hub.connector}
    where = f"weight {hub.weight}, region {hub.region or '-'}, connector {hub.connector}"
    emit(as_json, data, f"linked {hub.host_name} ({where})")


@hub_app.command("test")
@with_settings()
def hub_test(settings: Settings, host_name: str, as_json: JsonFlag = False) -> None:
    """Prove a hub's connector credentials with harmless calls (IoT Hub: RegistryWrite and
    ServiceConnect on a device that does not exist; Mosquitto: the admin login and listClients)."""
    found = run(with_db(settings, lambda db: hub_connections(settings, db).check(host_name)))
    emit(as_json, {"hostName": host_name, "ok": True, "detail": found}, found)


@hub_app.command("list")
@with_settings()
def hub_list(settings: Settings, as_json: JsonFlag = False) -> None:
    """List the linked hubs."""
    hubs = run(with_db(settings, lambda db: HubService(db).hubs()))
    rows = [
        {"hostName": h.host_name, "weight": h.weight, "region": h.region, "connector": h.connector}
        for h in hubs
    ]
    emit(
        as_json,
        {"hubs": rows},
        "\n".join(f"{r['hostName']}\t{r['weight']}\t{r['region'] or '-'}\t{r['connector']}" for r in rows),
    )


@hub_app.command("remove")
@with_settings()
def hub_remove(settings: Settings, host_name: str, as_json: JsonFlag = False) -> None:
    """Unlink a hub: no new device is assigned to it (devices already there keep their state)."""
    run(with_db(settings, lambda db: HubService(db).remove(host_name)))
    emit(as_json, {"removed": host_name}, f"unlinked {host_name}")


@allocation_app.command("set")
@with_settings()
def allocation_set(settings: Settings, policy: str, as_json: JsonFlag = False) -> None:
    """Set the default policy (hashed, static, geoLatency) for enrollments that name none."""
    chosen = run(with_db(settings, lambda db: HubService(db).set_allocation(policy)))
    emit(as_json, {"allocationPolicy": chosen.value}, f"default allocation policy: {chosen.value}")


@allocation_app.command("show")
@with_settings()
def allocation_show(settings: Settings, as_json: JsonFlag = False) -> None:
    """Show the default allocation policy."""
    current = run(with_db(settings, lambda db: HubService(db).allocation()))
    emit(as_json, {"allocationPolicy": current.value}, current.value)


@region_app.command("add")
@with_settings()
def region_add(settings: Settings, cidr: str, region: str, as_json: JsonFlag = False) -> None:
    """Devices connecting from CIDR are in REGION (the most specific network wins)."""
    rule = run(with_db(settings, lambda db: HubService(db).add_region(cidr, region)))
    emit(as_json, {"network": rule.network, "region": rule.region}, f"{rule.network} -> {rule.region}")


@region_app.command("list")
@with_settings()
def region_list(settings: Settings, as_json: JsonFlag = False) -> None:
    """List the region table."""
    rules = run(with_db(settings, lambda db: HubService(db).regions()))
    rows = [{"network": r.network, "region": r.region} for r in rules]
    emit(as_json, {"regions": rows}, "\n".join(f"{r['network']}\t{r['region']}" for r in rows))


@region_app.command("remove")
@with_settings()
def region_remove(settings: Settings, cidr: str, as_json: JsonFlag = False) -> None:
    """Remove a network from the region table."""
    run(with_db(settings, lambda db: HubService(db).remove_region(cidr)))
    emit(as_json, {"removed": cidr}, f"removed {cidr}")


def _ca_json(name: str, info: CertificateInfo) -> dict[str, object]:
    return {
        "name": name,
        "subjectName": info.subject_name,
        "sha256Thumbprint": info.sha256_thumbprint,
        "notAfterUtc": info.not_after.isoformat(),
    }


@ca_app.command("add")
@with_settings()
def ca_add(
    settings: Settings,
    file: Path,
    name: Annotated[str, typer.Option("--name", help="the name enrollment groups use in caReferences")],
    as_json: JsonFlag = False,
) -> None:
    """Add a CA certificate (PEM or DER file) that enrollment groups may reference."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None
    text = raw.decode("latin-1") if raw.lstrip().startswith(b"-----") else base64.b64encode(raw).decode()
    cert = run(with_db(settings, lambda db: CaService(db).add(name, text)))
    emit(as_json, _ca_json(name, cert.info), f"added CA {name}: {cert.info.subject_name}")


@ca_app.command("list")
@with_settings()
def ca_list(settings: Settings, as_json: JsonFlag = False) -> None:
    """List the CA certificates."""
    cas = run(with_db(settings, lambda db: CaService(db).cas()))
    rows = [_ca_json(name, cert.info) for name, cert in cas]
    emit(
        as_json,
        {"cas": rows},
        "\n".join(f"{r['name']}\t{r['subjectName']}\t{r['notAfterUtc']}" for r in rows),
    )


@ca_app.command("remove")
@with_settings()
def ca_remove(settings: Settings, name: str, as_json: JsonFlag = False) -> None:
    """Remove a CA certificate: groups referencing it no longer accept chains through it."""
    run(with_db(settings, lambda db: CaService(db).remove(name)))
    emit(as_json, {"removed": name}, f"removed CA {name}")


@dps_app.command("deprovision")
@with_settings()
def deprovision(settings: Settings, registration_id: str, as_json: JsonFlag = False) -> None:
    """Delete a device's identity at its hub, revoke the certificates issued to it, and delete
    its registration state (its enrollment stays: it may register again)."""
    done = run(with_db(settings, lambda db: hub_connections(settings, db).deprovision(registration_id)))
    data = {
        "registrationId": done.registration_id,
        "hub": done.hub,
        "identityDeleted": done.identity_deleted,
        "revokedSerials": done.revoked,
        "identity": done.note,
    }
    at_hub = done.note
    emit(
        as_json,
        data,
        f"deprovisioned {done.registration_id}: {at_hub}, {len(done.revoked)} certificate(s) revoked",
    )
