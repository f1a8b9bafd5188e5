"""The ``mosquitto`` connector against a real Mosquitto 2.0.11 with dynamic security.

The broker is private to each test (tests/support/mosquitto.py): an admin TLS listener and a
device listener that requires client certificates (CN as the username) from the tests' own device
CA and checks its CRL. Devices are paho MQTT 5 clients, so refusals show as reason codes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisiond.adapters.hub_connectors.mosquitto import MosquittoConnector
from provisiond.domain.hub_identities import (
    ConnectorKind,
    HubAuthentication,
    HubAuthKind,
    HubConnection,
    HubIdentity,
    HubRefused,
)
from provisiond.domain.mosquitto_hubs import mosquitto_secret
from tests.support.mosquitto import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    Broker,
    MqttDevice,
    crl_pem,
    refused_at_handshake,
    start_broker,
)
from tests.support.pki import Issued, issue

HUB = "broker.example"
REFUSED = 135  # PUBACK "not authorized"
SUB_REFUSED = 0x87


@pytest.fixture
def device_ca() -> Issued:
    return issue("test device CA", ca=True)


@pytest.fixture
def broker(tmp_path: Path, device_ca: Issued) -> Iterator[Broker]:
    broker = start_broker(tmp_path / "broker", device_ca.pem, crl_pem(device_ca))
    try:
        yield broker
    finally:
        broker.stop()


def connector(broker: Broker, password: str = ADMIN_PASSWORD) -> MosquittoConnector:
    secret = mosquitto_secret(ADMIN_USER, password)
    return MosquittoConnector(
        HubConnection(HUB, ConnectorKind.MOSQUITTO, secret, broker.admin_url, broker.ca_path.read_text())
    )


def certificate_identity(device_id: str) -> HubIdentity:
    return HubIdentity(device_id, HubAuthentication(HubAuthKind.SELF_SIGNED, "AB" * 32), False, device_id)


def backend(broker: Broker) -> MqttDevice:
    """The admin account as a back end reading all telemetry (``init`` lets it read ``#``) and
    sending cloud-to-device messages (a role given here)."""
    broker.grant_backend()
    listener = MqttDevice(broker, "backend", login=(ADMIN_USER, ADMIN_PASSWORD))
    assert listener.connected() == 0
    assert listener.subscribe("devices/+/messages/events/#") == 1
    return listener


def test_a_device_gets_exactly_its_own_topics_and_loses_them_on_delete_then_the_crl_keeps_it_out(
    broker: Broker, device_ca: Issued, tmp_path: Path
) -> None:
    hub = connector(broker)
    for rid in ("dev-1", "dev-2"):
        asyncio.run(hub.put_identity(certificate_identity(rid)))
    asyncio.run(hub.put_identity(certificate_identity("dev-1")))  # again: updated, not duplicated
    cert = issue("dev-1", device_ca)
    files = cert.write(tmp_path, "dev-1")
    listener = backend(broker)
    device = MqttDevice(broker, "dev-1", cert=files)
    assert device.connected() == 0
    assert device.publish("devices/dev-1/messages/events/", b'{"t": 21.5}') == 0
    assert listener.messages.get(timeout=10) == ("devices/dev-1/messages/events/", b'{"t": 21.5}')
    assert device.subscribe("devices/dev-1/messages/devicebound/#") == 1
    assert listener.publish("devices/dev-1/messages/devicebound/%24.to=x", b"hello") == 0
    assert device.messages.get(timeout=10)[1] == b"hello"
    # Another device's topics, and anything else, are refused.
    assert device.publish("devices/dev-2/messages/events/", b"spoof") == REFUSED
    assert device.subscribe("devices/dev-2/messages/devicebound/#") == SUB_REFUSED
    assert device.subscribe("#") == SUB_REFUSED
    assert device.publish("$CONTROL/dynamic-security/v1", b"{}") == REFUSED

    assert asyncio.run(hub.delete_identity("dev-1")) is True
    assert device.disconnected.wait(10), "the live session was not dropped"
    device.close()
    assert asyncio.run(hub.delete_identity("dev-1")) is False  # nothing left to delete
    # Mosquitto 2.0.11 still lets the certificate CONNECT (use_identity_as_username skips the
    # password check); its ACLs are gone, so it can do nothing.
    again = MqttDevice(broker, "dev-1", cert=files)
    assert again.connected() == 0
    assert again.publish("devices/dev-1/messages/events/", b"after") == REFUSED
    assert again.subscribe("devices/dev-1/messages/devicebound/#") == SUB_REFUSED
    again.close()
    # With its certificate in the CRL the broker reloads, it cannot complete the handshake.
    broker.reload(crl_pem(device_ca, (cert.cert.serial_number,)))
    assert refused_at_handshake(broker, "dev-1", files)
    # dev-2 is untouched.
    other = MqttDevice(broker, "dev-2", cert=issue("dev-2", device_ca).write(tmp_path, "dev-2"))
    assert other.connected() == 0
    assert other.publish("devices/dev-2/messages/events/", b"ok") == 0
    other.close()
    listener.close()


def test_the_broker_keeps_one_client_and_one_role_per_device_with_no_password(broker: Broker) -> None:
    hub = connector(broker)
    asyncio.run(hub.put_identity(certificate_identity("dev-1")))
    asyncio.run(hub.put_identity(certificate_identity("dev-1")))
    stored = json.loads((broker.directory / "dynamic-security.json").read_text())
    clients = [c for c in stored["clients"] if c["username"] == "dev-1"]
    assert len(clients) == 1 and "password" not in clients[0]
    assert clients[0]["roles"] == [{"rolename": "device-dev-1", "priority": 0}]
    roles = [r for r in stored["roles"] if r["rolename"] == "device-dev-1"]
    assert len(roles) == 1
    assert {(a["acltype"], a["topic"]) for a in roles[0]["acls"]} == {
        ("publishClientSend", "devices/dev-1/messages/events/#"),
        ("subscribePattern", "devices/dev-1/messages/devicebound/#"),
        ("publishClientReceive", "devices/dev-1/messages/devicebound/#"),
    }


def test_a_device_without_a_certificate_is_refused_with_what_to_change(broker: Broker) -> None:
    sas = HubIdentity("dev-sas", HubAuthentication(HubAuthKind.SAS, "a2V5", "a2V5"), False, "dev-sas")
    with pytest.raises(HubRefused, match="add a credential policy to the enrollment"):
        asyncio.run(connector(broker).put_identity(sas))
    stored = json.loads((broker.directory / "dynamic-security.json").read_text())
    assert [c["username"] for c in stored["clients"]] == [ADMIN_USER]


def test_check_proves_the_admin_login_and_a_wrong_password_is_refused_without_echoing_it(
    broker: Broker,
) -> None:
    assert "admin login accepted" in asyncio.run(connector(broker).check())
    with pytest.raises(HubRefused, match="refused the admin login") as refused:
        asyncio.run(connector(broker, "wrong-password-123").check())
    assert "wrong-password-123" not in str(refused.value)


def test_an_unreachable_broker_is_a_refusal_naming_it(broker: Broker) -> None:
    broker.stop()
    with pytest.raises(HubRefused, match="could not be reached"):
        asyncio.run(connector(broker).check())


def test_an_account_provisiond_did_not_make_is_never_replaced_or_deleted(broker: Broker) -> None:
    """A device CN is a username without a password check: a device named like the admin or a
    back-end account must not be given that account, nor delete it."""
    hub = connector(broker)
    with pytest.raises(HubRefused, match="admin account"):
        asyncio.run(hub.put_identity(certificate_identity(ADMIN_USER)))
    broker.ctrl("createClient", "backend", "-p", "backend-password")  # an operator's own account
    with pytest.raises(HubRefused, match="did not make"):
        asyncio.run(hub.put_identity(certificate_identity("backend")))
    assert asyncio.run(hub.check())  # the admin login still works
    assert "backend" in broker.ctrl("listClients").split()
