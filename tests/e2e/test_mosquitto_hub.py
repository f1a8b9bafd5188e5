"""A self-hosted fleet end to end: ``provisiond serve``, a real Mosquitto with dynamic security.

The operator links the broker with ``dps hub add --connector mosquitto`` and proves it with
``dps hub test``; devices register through DPS over HTTPS (an individual X.509 device with its
own certificate, a symmetric-key device that sends a CSR and leaves with a certificate from the
credential policy), then connect to the broker's device listener (``require_certificate``,
``use_identity_as_username``, trusting the policy's chain and the tests' device CA, checking
their CRLs) and publish telemetry a back end receives, and nothing on another device's topics.
``dps deprovision`` drops the live session and leaves the device unable to publish or subscribe;
with the CRL refreshed and reloaded, it cannot complete the handshake. A symmetric-key device
with no certificate is refused at registration with what to change.
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisiond.domain.sas import build_sas
from tests.support.issuance import make_csr
from tests.support.mosquitto import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    Broker,
    MqttDevice,
    crl_pem,
    refused_at_handshake,
    require_mosquitto,
    start_broker,
)
from tests.support.pki import Issued, issue
from tests.support.server import ServerProcess, start_server

PREVIEW = "2025-07-01-preview"
KEY = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU="
HUB = "broker.site-1.example"
REFUSED, SUB_REFUSED = 135, 0x87


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    require_mosquitto()
    proc = start_server(tmp_path_factory.mktemp("mosquitto-hub") / "data")
    yield proc
    proc.stop()


@pytest.fixture
def device_ca() -> Issued:
    return issue("site device CA", ca=True)


def policy_crl(server: ServerProcess, name: str, tmp: Path) -> str:
    out = tmp / f"{name}.crl.pem"
    server.cli("dps", "credential-policy", "crl", name, "--out", str(out))
    return out.read_text()


@pytest.fixture
def fleet(server: ServerProcess, device_ca: Issued, tmp_path: Path) -> Iterator[tuple[Broker, str]]:
    """A broker trusting this test's credential policy and device CA, linked as ``HUB``."""
    name = f"fleet-{uuid.uuid4().hex[:8]}"
    created = json.loads(server.cli("dps", "credential-policy", "create", name, "--json").stdout)
    broker = start_broker(
        tmp_path / "broker",
        created["issuingChainPem"] + device_ca.pem,
        policy_crl(server, name, tmp_path) + crl_pem(device_ca),
    )
    try:
        yield broker, name
    finally:
        broker.stop()


def link(server: ServerProcess, broker: Broker, tmp: Path) -> list[str]:
    """``hub add --connector mosquitto``; every output, to check none shows the password."""
    password_file = tmp / "admin-password"
    password_file.write_text(ADMIN_PASSWORD + "\n")
    added = server.cli(
        "dps", "hub", "add", HUB, "--connector", "mosquitto", "--broker", broker.admin_url,
        "--admin-user", ADMIN_USER, "--admin-password-file", str(password_file),
        "--ca-file", str(broker.ca_path), "--json",
    )  # fmt: skip
    assert json.loads(added.stdout)["connector"] == "mosquitto"
    tested = server.cli("dps", "hub", "test", HUB)
    assert "admin login accepted" in tested.stdout
    listed = server.cli("dps", "hub", "list", "--json")
    return [o.stdout + o.stderr for o in (added, tested, listed)]


def service(server: ServerProcess, method: str, path: str, body: Any = None) -> None:
    token = server.service_sas()
    with server.http() as client:
        r = client.request(
            method, path, params={"api-version": PREVIEW}, json=body, headers={"Authorization": token}
        )
    assert r.status_code == 200, r.text


def register(
    server: ServerProcess, rid: str, *, key: str | None = None, cert: tuple[Path, Path] | None = None,
    csr: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Register over HTTPS and poll until the status is final; the registration state."""
    context = ssl.create_default_context(cafile=server.ca)
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    headers = {}
    if key is not None:
        sr = f"{server.id_scope}/registrations/{rid}"
        headers["Authorization"] = build_sas(key, sr, int(time.time()) + 600, "registration")
    body: dict[str, Any] = {"registrationId": rid} | ({"csr": csr} if csr else {})
    base = f"/{server.id_scope}/registrations/{rid}"
    with server.http(context) as client:
        r = client.put(f"{base}/register", params={"api-version": PREVIEW}, json=body, headers=headers)
        assert r.status_code == 202, r.text
        for _ in range(60):
            time.sleep(int(r.headers.get("retry-after", "1")))
            r = client.get(
                f"{base}/operations/{r.json()['operationId']}",
                params={"api-version": PREVIEW},
                headers=headers,
            )
            if r.status_code == 200:
                state: dict[str, Any] = r.json()["registrationState"]
                return state
    raise AssertionError("the registration never finished")


def test_devices_register_connect_with_their_certificates_and_are_shut_out_after_deprovision(
    server: ServerProcess, fleet: tuple[Broker, str], device_ca: Issued, tmp_path: Path
) -> None:
    broker, policy = fleet
    outputs = link(server, broker, tmp_path)
    sym, x509_id = f"sym-{uuid.uuid4().hex[:6]}", f"x509-{uuid.uuid4().hex[:6]}"
    service(server, "PUT", f"/enrollments/{sym}", {
        "registrationId": sym, "iotHubs": [HUB], "credentialPolicyName": policy,
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY}},
    })  # fmt: skip
    own = issue(x509_id, device_ca)
    service(server, "PUT", f"/enrollments/{x509_id}", {
        "registrationId": x509_id, "iotHubs": [HUB],
        "attestation": {"type": "x509", "x509": {"clientCertificates": {"primary": {"certificate": own.pem}}}},
    })  # fmt: skip

    csr = make_csr(sym)
    state = register(server, sym, key=KEY, csr=csr.b64)
    assert (state["status"], state["assignedHub"]) == ("assigned", HUB), state
    sym_files = csr.write_identity(tmp_path, state["issuedCertificateChain"][0], sym)
    own_files = own.write(tmp_path, x509_id)
    state = register(server, x509_id, cert=own_files)
    assert (state["status"], state["assignedHub"]) == ("assigned", HUB), state

    broker.grant_backend()
    backend = MqttDevice(broker, "backend", login=(ADMIN_USER, ADMIN_PASSWORD))
    assert backend.connected() == 0
    assert backend.subscribe("devices/+/messages/events/#") == 1
    devices = {
        rid: MqttDevice(broker, rid, cert=files) for rid, files in ((sym, sym_files), (x509_id, own_files))
    }
    for rid, device in devices.items():
        assert device.connected() == 0
        assert device.publish(f"devices/{rid}/messages/events/", rid.encode()) == 0
        assert backend.messages.get(timeout=10) == (f"devices/{rid}/messages/events/", rid.encode())
        assert device.subscribe(f"devices/{rid}/messages/devicebound/#") == 1
    # Each is refused on the other's topics.
    assert devices[sym].publish(f"devices/{x509_id}/messages/events/", b"spoof") == REFUSED
    assert devices[sym].subscribe(f"devices/{x509_id}/messages/devicebound/#") == SUB_REFUSED
    assert devices[x509_id].publish(f"devices/{sym}/messages/events/", b"spoof") == REFUSED

    gone = json.loads(server.cli("dps", "deprovision", sym, "--json").stdout)
    assert (gone["hub"], gone["identityDeleted"], len(gone["revokedSerials"])) == (HUB, True, 1)
    assert devices[sym].disconnected.wait(10), "the live session was not dropped"
    devices[sym].close()
    # Mosquitto 2.0.11 lets the certificate CONNECT again; with no ACLs it can do nothing.
    again = MqttDevice(broker, sym, cert=sym_files)
    assert again.connected() == 0
    assert again.publish(f"devices/{sym}/messages/events/", b"after") == REFUSED
    assert again.subscribe(f"devices/{sym}/messages/devicebound/#") == SUB_REFUSED
    again.close()
    # The operator refreshes the CRL file and reloads the broker: the handshake is refused.
    broker.reload(policy_crl(server, policy, tmp_path) + crl_pem(device_ca))
    assert refused_at_handshake(broker, sym, sym_files)
    # The other device is untouched.
    assert devices[x509_id].publish(f"devices/{x509_id}/messages/events/", b"still") == 0
    for device in (devices[x509_id], backend):
        device.close()
    for text in outputs:
        assert ADMIN_PASSWORD not in text
    files = list(server.data_dir.glob("provisiond.db*"))
    assert files and all(ADMIN_PASSWORD.encode() not in f.read_bytes() for f in files)


def test_a_device_without_a_certificate_fails_registration_saying_to_add_a_credential_policy(
    server: ServerProcess, fleet: tuple[Broker, str], tmp_path: Path
) -> None:
    broker, _ = fleet
    link(server, broker, tmp_path)
    rid = f"nocert-{uuid.uuid4().hex[:6]}"
    service(server, "PUT", f"/enrollments/{rid}", {
        "registrationId": rid, "iotHubs": [HUB],
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY}},
    })  # fmt: skip
    state = register(server, rid, key=KEY)
    assert (state["status"], state["errorCode"]) == ("failed", 400209), state
    assert "add a credential policy to the enrollment" in state["errorMessage"]


def test_hub_add_refuses_a_mosquitto_connector_it_cannot_use_before_writing_and_never_echoes_the_password(
    server: ServerProcess, tmp_path: Path
) -> None:
    password_file = tmp_path / "admin-password"
    password_file.write_text("pw-never-shown-42\n")
    admin = ["--admin-user", ADMIN_USER, "--admin-password-file", str(password_file)]
    for args, said in (
        (["--broker", "mqtt://localhost:1883", *admin], "mqtts://"),  # the password in the clear
        (["--broker", "mqtts://localhost:8883", "--admin-user", ADMIN_USER], "--admin-password-file"),
        (["--broker", "mqtts://localhost:8883", "--admin-password-file", str(password_file)], "--admin-user"),
        (admin, "mqtts://"),
    ):
        out = server.cli(
            "dps", "hub", "add", "refused.example", "--connector", "mosquitto", *args, check=False
        )
        assert out.returncode == 1 and said in out.stderr, out.stderr
        assert "pw-never-shown-42" not in out.stdout + out.stderr
    hubs = json.loads(server.cli("dps", "hub", "list", "--json").stdout)["hubs"]
    assert "refused.example" not in [h["hostName"] for h in hubs]
