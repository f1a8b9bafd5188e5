"""Operators' hub connector commands: give a linked hub a connector, prove it works, deprovision.

``link`` links the hub (``HubService.add``: the same checks) and then records its connector; the
secret is checked before anything is written, sealed by the store, and never returned.
``deprovision`` undoes a registration: the identity at its hub, the certificates issued to it,
its registration state (DPS leaves this cleanup to the operator; provisiond gives the command).
"""

from __future__ import annotations

import ssl
import urllib.parse
from dataclasses import dataclass, field
from datetime import timedelta

from provisiond.domain.allocation import LinkedHub
from provisiond.domain.clock import Clock, utc_now
from provisiond.domain.hub_identities import (
    ConnectorKind,
    HubConnection,
    HubRefused,
    HubThrottled,
    parse_iothub_connection_string,
)
from provisiond.domain.mosquitto_hubs import parse_broker_url, parse_mosquitto_secret
from provisiond.domain.registration_ids import id_key
from provisiond.domain.registrations import RegistrationState, RegistrationStatus
from provisiond.errors import InvalidInput, NotFound
from provisiond.services import audit
from provisiond.services.credential_policies import resign_crl
from provisiond.services.hub_sync import ConnectorFactory, supersede
from provisiond.services.hubs import HubService
from provisiond.store import credential_policies as certificates
from provisiond.store import hub_connections as repo
from provisiond.store import hubs as hub_repo
from provisiond.store import registrations as registration_repo
from provisiond.store.db import Database

__all__ = ["Deprovisioned", "HubConnections"]


@dataclass(frozen=True, slots=True)
class Deprovisioned:
    """What ``deprovision`` did: the hub it deleted the identity at (if any), the serials revoked,
    and what became of the identity, in words (``note``): deleted, not at the hub, or why it
    could not be deleted, never a silent "nothing to delete" when that is not known."""

    registration_id: str
    hub: str | None
    identity_deleted: bool
    revoked: list[str]
    note: str = ""


@dataclass
class HubConnections:
    db: Database
    connectors: ConnectorFactory
    clock: Clock = utc_now
    crl_period: timedelta = field(default_factory=lambda: timedelta(days=7))

    async def link(
        self,
        host_name: str,
        weight: int = 1,
        region: str | None = None,
        kind: str | None = None,
        secret: str | None = None,
        endpoint: str | None = None,
        ca_pem: str | None = None,
    ) -> LinkedHub:
        """Link a hub (or change it); ``kind`` ``None`` keeps a linked hub's connector as it is."""
        if kind is None and (secret is not None or endpoint is not None or ca_pem is not None):
            # Silently ignoring them would leave the operator believing the connector changed.
            raise InvalidInput("--connection-string-file, --endpoint and --ca-file need --connector")
        connection = _connection(host_name.strip(), kind, secret, endpoint, ca_pem) if kind else None
        hub = await HubService(self.db).add(host_name, weight, region)
        if kind is None:
            async with self.db.read() as conn:
                current = await repo.get_connection(conn, hub.host_name)
            return LinkedHub(hub.host_name, hub.weight, hub.region, current.kind.value if current else "none")
        async with self.db.write() as conn:
            await repo.set_connection(conn, hub.host_name, connection)
            # The connector's kind only: its connection string is a secret.
            await audit.record(conn, "hub.connector", hub.host_name, details={"connector": kind})
        return LinkedHub(hub.host_name, hub.weight, hub.region, kind)

    async def check(self, host_name: str) -> str:
        """Prove the hub's connector credentials with a harmless call (``InvalidInput`` if refused)."""
        async with self.db.read() as conn:
            linked = {h.host_name.lower() for h in await hub_repo.list_hubs(conn)}
            connection = await repo.get_connection(conn, host_name)
        if host_name.lower() not in linked:
            raise NotFound(f"hub {host_name!r} is not linked")
        if connection is None:
            raise InvalidInput(f"hub {host_name!r} has no connector (--connector none): nothing to test")
        try:
            return await self.connectors(connection).check()
        except (HubRefused, HubThrottled) as exc:
            raise InvalidInput(f"the hub refused the test call: {exc.message}") from exc

    async def deprovision(self, registration_id: str) -> Deprovisioned:
        """Delete the device's identity at its hub, revoke its issued certificates, forget its state.

        The identity is deleted where a connector last wrote it, whatever the registration's
        status (a failed or disabled registration keeps that record; review finding 1). The
        registration's operations still ``assigning`` are superseded first, so none writes the
        identity back (finding 3). The hub is called outside any transaction: if it refuses,
        nothing else changes and the command can be run again.
        """
        key = id_key(registration_id)
        async with self.db.write() as conn:
            state = await registration_repo.get_state(conn, key)
            known = await certificates.list_certificates(conn, key)
            stopped = await supersede(conn, registration_id, self.clock(), "the device was deprovisioned")
            if state is None and not known and not stopped:
                raise NotFound(f"{registration_id!r} has no registration state and no issued certificate")
            target = _identity_at(state)
            linked = {h.host_name.lower() for h in await hub_repo.list_hubs(conn)}
            connection = await repo.get_connection(conn, target[0]) if target else None
        deleted = False
        if target is None:
            note = "no identity was recorded at a hub" if state is not None else "no registration state"
        elif target[0].lower() not in linked:
            note = f"hub {target[0]} not linked, identity not deleted"
        elif connection is None:
            note = f"hub {target[0]} has no connector, identity not deleted"
        else:
            try:
                deleted = await self.connectors(connection).delete_identity(target[1])
            except (HubRefused, HubThrottled) as exc:
                raise InvalidInput(
                    f"the hub {connection.host_name} refused the delete: {exc.message}"
                ) from exc
            note = f"identity deleted at {target[0]}" if deleted else f"no identity at {target[0]}"
        now = self.clock()
        async with self.db.write() as conn:
            revoked = await certificates.revoke(conn, now, registration_key=key)
            for policy in sorted({p for _, p in revoked}):
                await resign_crl(conn, policy, now, self.crl_period)
            await registration_repo.delete_state(conn, key, None)
            details = {
                "hub": connection.host_name if connection else None,
                "identityDeleted": deleted,
                "revoked": len(revoked),
            }
            await audit.record(conn, "registration.deprovision", registration_id, details=details)
        return Deprovisioned(
            registration_id,
            connection.host_name if connection else None,
            deleted,
            [s for s, _ in revoked],
            note,
        )


def _identity_at(state: RegistrationState | None) -> tuple[str, str] | None:
    """(hub, device id) where the device's identity was last written, if that is known: the
    state's record, or for a state written before identities were recorded, its assigned hub."""
    if state is None:
        return None
    if state.identity_hub:
        return state.identity_hub, state.identity_device_id or state.registration_id
    if state.status == RegistrationStatus.ASSIGNED.value and state.assigned_hub:
        return state.assigned_hub, state.device_id or state.registration_id
    return None


def _connection(
    host_name: str, kind: str, secret: str | None, endpoint: str | None, ca_pem: str | None
) -> HubConnection | None:
    """The connection to record, checked before anything is written (the secret never echoed)."""
    try:
        parsed = ConnectorKind(kind)
    except ValueError:
        raise InvalidInput(f"a connector is one of {', '.join(k.value for k in ConnectorKind)}") from None
    if parsed is ConnectorKind.NONE:
        return None
    if parsed is ConnectorKind.MOSQUITTO:
        # The CLI passes the admin account as ``mosquitto_secret`` and the broker as the endpoint.
        parse_broker_url(endpoint or "")
        parse_mosquitto_secret(secret or "")
        return HubConnection(host_name, parsed, (secret or "").strip(), (endpoint or "").strip(), ca_pem)
    if not secret:
        raise InvalidInput("the iothub connector needs --connection-string-file")
    named = parse_iothub_connection_string(secret).host_name
    if named.lower() != host_name.lower():
        # The token is signed for the connection string's hub: linking it under another name would
        # write this hub's devices elsewhere (review finding 10). --endpoint changes only the address.
        raise InvalidInput(f"the connection string is for {named!r}, not {host_name!r}")
    _check_endpoint(endpoint)
    _check_ca(ca_pem)
    return HubConnection(host_name, parsed, secret.strip(), endpoint, ca_pem)


def _check_endpoint(endpoint: str | None) -> None:
    """An endpoint that cannot be called is refused here, not found out by a registration that
    then cannot finish (review finding 2)."""
    if endpoint is None:
        return
    try:
        url = urllib.parse.urlsplit(endpoint)
        url.port  # noqa: B018 (reading it raises ValueError for a port that is not a number in range)
    except ValueError:
        raise InvalidInput("--endpoint is not a valid URL") from None
    if url.scheme.lower() != "https" or not url.hostname:
        raise InvalidInput("--endpoint is an https:// URL with a host")
    if url.query or url.fragment or url.username or url.password:
        raise InvalidInput("--endpoint takes no query, fragment or user name")


def _check_ca(ca_pem: str | None) -> None:
    """A CA file that TLS cannot load is refused here (review finding 2); note that it replaces
    the system trust store for this hub."""
    if ca_pem is None:
        return
    try:
        ssl.create_default_context(cadata=ca_pem)
    except (ssl.SSLError, ValueError, TypeError):
        raise InvalidInput("--ca-file holds no PEM CA certificate TLS can load") from None
