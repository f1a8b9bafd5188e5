"""What the assigned hub is told per attestation type, on reprovisioning, and on deprovisioning.

Against the contract double of IoT Hub's registry API (tests/support/iothub_double.py): X.509
individual devices ``selfSigned`` with their thumbprints, X.509 group members
``certificateAuthority``, TPM devices ``sas`` with the hub key their TPM was given, devices with a
certificate issued at registration ``selfSigned`` with the new leaf primary and the previous one
secondary; a device moved to another hub is created there with its twin migrated; ``deprovision``
deletes the identity, revokes the issued certificates and deletes the registration state.
"""

from __future__ import annotations

import base64
import hashlib
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provisiond import wiring
from provisiond.errors import NotFound
from provisiond.store.db import Database
from tests.api.conftest import DpsApi, running_app
from tests.api.dps_device.conftest import DEVICE_API, KEY, Device
from tests.api.dps_device.iothub.test_hub_connectors import HUB, TWIN, link
from tests.api.dps_device.test_certificate_issuance import PREVIEW, run
from tests.api.dps_device.test_certificate_issuance import enroll as enroll_preview
from tests.api.dps_device.test_tpm import TpmDevice, enroll_tpm
from tests.support.clock import FakeClock
from tests.support.iothub_double import IotHubDouble, serve_iothub
from tests.support.issuance import make_csr
from tests.support.pki import Issued, issue
from tests.support.tpm import SoftwareKeys

OTHER_HUB = "fabrikam-hub.azure-devices.net"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[IotHubDouble]:
    (tmp_path / "a").mkdir()
    with serve_iothub(tmp_path / "a", HUB) as double:
        yield double


@pytest.fixture
def other_hub(tmp_path: Path) -> Iterator[IotHubDouble]:
    (tmp_path / "b").mkdir()
    with serve_iothub(tmp_path / "b", OTHER_HUB) as double:
        yield double


@pytest.fixture
async def dps(db: Database, tmp_path: Path) -> AsyncIterator[DpsApi]:
    # The in-process client's address (10.1.2.3) is a trusted proxy: X.509 devices present their
    # chain in x-forwarded-client-cert, as behind Envoy.
    async with running_app(db, tmp_path / "data", FakeClock(), trusted_proxies=["10.0.0.0/8"]) as api:
        yield api


def sha256(cert: Issued) -> str:
    return hashlib.sha256(cert.cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()


async def run_x509(api: DpsApi, rid: str, chain: list[Issued]) -> dict[str, Any]:
    """Register with a client chain (leaf first) and poll until final."""
    pems = "".join(c.pem for c in chain)
    xfcc = f'Cert="{urllib.parse.quote(chain[0].pem)}";Chain="{urllib.parse.quote(pems)}"'
    path = f"/{api.init.id_scope}/registrations/{rid}"
    headers = {"x-forwarded-client-cert": xfcc}
    r = await api.http.put(
        f"{path}/register", params={"api-version": DEVICE_API}, json={"registrationId": rid}, headers=headers
    )
    assert r.status_code == 202, r.text
    op = r.json()["operationId"]
    for _ in range(20):
        await api.ctx.custom_allocations.drain()
        api.clock.advance(1)
        r = await api.http.get(f"{path}/operations/{op}", params={"api-version": DEVICE_API}, headers=headers)
        if r.status_code == 200:
            result: dict[str, Any] = r.json()
            return result
    raise AssertionError("registration never finished")


async def test_an_x509_individual_device_is_self_signed_with_its_enrolled_thumbprints(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    primary, secondary = issue("x509-dev-1"), issue("x509-dev-1")
    body = {
        "registrationId": "x509-dev-1",
        "attestation": {
            "type": "x509",
            "x509": {
                "clientCertificates": {
                    "primary": {"certificate": primary.pem},
                    "secondary": {"certificate": secondary.pem},
                }
            },
        },
        "initialTwin": TWIN,
    }
    assert (await dps.call("PUT", "/enrollments/x509-dev-1", json=body)).status_code == 200
    result = await run_x509(dps, "x509-dev-1", [primary])
    assert result["status"] == "assigned", result
    assert hub.devices["x509-dev-1"]["authentication"] == {
        "type": "selfSigned",
        "x509Thumbprint": {"primaryThumbprint": sha256(primary), "secondaryThumbprint": sha256(secondary)},
    }
    assert hub.twins["x509-dev-1"]["tags"] == TWIN["tags"]


async def test_an_x509_group_member_is_certificate_authority_with_its_edge_capability(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    root = issue("fleet root", ca=True)
    body = {
        "enrollmentGroupId": "x509-grp",
        "attestation": {
            "type": "x509",
            "x509": {"signingCertificates": {"primary": {"certificate": root.pem}}},
        },
        "capabilities": {"iotEdge": True},
        "initialTwin": TWIN,
    }
    assert (await dps.call("PUT", "/enrollmentGroups/x509-grp", json=body)).status_code == 200
    leaf = issue("edge-7", root)
    result = await run_x509(dps, "edge-7", [leaf, root])
    assert result["status"] == "assigned", result
    assert hub.devices["edge-7"]["authentication"] == {"type": "certificateAuthority"}
    assert hub.devices["edge-7"]["capabilities"] == {"iotEdge": True}
    assert hub.twins["edge-7"]["properties"]["desired"]["telemetryInterval"] == 30


async def test_a_tpm_device_gets_sas_with_the_hub_key_its_tpm_was_given(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    keys = SoftwareKeys()
    await enroll_tpm(dps, "tpm-dev-1", keys, initialTwin=TWIN)
    result = await TpmDevice(dps, "tpm-dev-1", keys).run()
    assert result["status"] == "assigned", result
    hub_key = keys.open_blob(result["registrationState"]["tpm"]["authenticationKey"])
    expected = base64.b64encode(hub_key).decode()
    assert hub.devices["tpm-dev-1"]["authentication"] == {
        "type": "sas",
        "symmetricKey": {"primaryKey": expected, "secondaryKey": expected},
    }
    assert hub.twins["tpm-dev-1"]["tags"] == TWIN["tags"]


async def test_an_issued_certificate_wins_and_a_renewal_keeps_the_previous_one_as_secondary(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await dps.ctx.credential_policies.create("fleet", validity_days=14)
    await enroll_preview(dps, "csr-dev-1", credentialPolicyName="fleet")
    device = Device(dps, "csr-dev-1", KEY)
    first = await run(device, {"csr": make_csr("csr-dev-1").b64})
    assert first["status"] == "assigned", first
    leaf1 = _thumbprint(first["registrationState"]["issuedCertificateChain"][0])
    assert hub.devices["csr-dev-1"]["authentication"] == {
        "type": "selfSigned",
        "x509Thumbprint": {"primaryThumbprint": leaf1, "secondaryThumbprint": None},
    }
    second = await run(device, {"csr": make_csr("csr-dev-1").b64})
    leaf2 = _thumbprint(second["registrationState"]["issuedCertificateChain"][0])
    assert hub.devices["csr-dev-1"]["authentication"]["x509Thumbprint"] == {
        "primaryThumbprint": leaf2,
        "secondaryThumbprint": leaf1,
    }
    assert list(hub.devices) == ["csr-dev-1"]


def _thumbprint(b64_der: str) -> str:
    der = base64.b64decode(b64_der)
    x509.load_der_x509_certificate(der)  # it is a certificate
    return hashlib.sha256(der).hexdigest().upper()


async def test_a_device_moved_to_another_hub_is_created_there_with_its_twin_migrated(
    dps: DpsApi, hub: IotHubDouble, other_hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await link(dps, other_hub, OTHER_HUB)
    body = {
        "registrationId": "mover-1",
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY}},
        "allocationPolicy": "static",
        "iotHubHostName": HUB,
        "initialTwin": TWIN,
        "reprovisionPolicy": {"updateHubAssignment": True, "migrateDeviceData": True},
    }
    assert (await dps.call("PUT", "/enrollments/mover-1", json=body)).status_code == 200
    assert (await Device(dps, "mover-1", KEY).run())["status"] == "assigned"
    hub.twins["mover-1"]["tags"]["owner"] = "field-team"  # changed at the hub since
    current = (await dps.call("GET", "/enrollments/mover-1")).json()
    current["iotHubHostName"] = OTHER_HUB
    assert (await dps.call("PUT", "/enrollments/mover-1", json=current)).status_code == 200
    moved = await Device(dps, "mover-1", KEY).run()
    assert moved["registrationState"]["assignedHub"] == OTHER_HUB
    assert moved["registrationState"]["substatus"] == "deviceDataMigrated"
    assert other_hub.devices["mover-1"]["authentication"]["type"] == "sas"
    assert other_hub.twins["mover-1"]["tags"] == {"site": {"region": "eu"}, "owner": "field-team"}


async def test_a_device_moved_without_migration_gets_the_initial_twin_at_the_new_hub(
    dps: DpsApi, hub: IotHubDouble, other_hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await link(dps, other_hub, OTHER_HUB)
    body = {
        "registrationId": "mover-2",
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY}},
        "allocationPolicy": "static",
        "iotHubHostName": HUB,
        "initialTwin": TWIN,
        "reprovisionPolicy": {"updateHubAssignment": True, "migrateDeviceData": False},
    }
    assert (await dps.call("PUT", "/enrollments/mover-2", json=body)).status_code == 200
    assert (await Device(dps, "mover-2", KEY).run())["status"] == "assigned"
    hub.twins["mover-2"]["tags"]["owner"] = "field-team"
    current = (await dps.call("GET", "/enrollments/mover-2")).json()
    current["iotHubHostName"] = OTHER_HUB
    assert (await dps.call("PUT", "/enrollments/mover-2", json=current)).status_code == 200
    moved = await Device(dps, "mover-2", KEY).run()
    assert moved["registrationState"]["substatus"] == "deviceDataReset"
    assert other_hub.twins["mover-2"]["tags"] == TWIN["tags"]


async def test_deprovision_deletes_the_identity_revokes_certificates_and_forgets_the_state(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await dps.ctx.credential_policies.create("fleet", validity_days=14)
    await enroll_preview(dps, "gone-1", credentialPolicyName="fleet")
    assert (await run(Device(dps, "gone-1", KEY), {"csr": make_csr("gone-1").b64}))["status"] == "assigned"
    assert "gone-1" in hub.devices
    done = await wiring.hub_connections(dps.ctx.settings, dps.db).deprovision("gone-1")
    assert done.hub == HUB and done.identity_deleted and len(done.revoked) == 1
    assert hub.devices == {} and hub.twins == {}
    assert all(c.revoked is not None for c in await dps.ctx.credential_policies.certificates("gone-1"))
    with pytest.raises(NotFound):
        await dps.ctx.registration_states.get("gone-1")
    r = await dps.call("GET", "/registrations/gone-1", version=PREVIEW)
    assert r.status_code == 404
    # The enrollment stays: the device may register again, and is created anew.
    assert (await run(Device(dps, "gone-1", KEY), {"csr": make_csr("gone-1").b64}))["status"] == "assigned"
    assert list(hub.devices) == ["gone-1"]


async def test_deprovision_of_an_unknown_registration_is_not_found(dps: DpsApi, hub: IotHubDouble) -> None:
    with pytest.raises(NotFound):
        await wiring.hub_connections(dps.ctx.settings, dps.db).deprovision("never-seen")


async def test_a_registration_the_hub_refuses_revokes_the_certificate_it_was_issued(
    dps: DpsApi, hub: IotHubDouble
) -> None:
    await link(dps, hub)
    await dps.ctx.credential_policies.create("fleet", validity_days=14)
    await enroll_preview(dps, "refused-csr-1", credentialPolicyName="fleet")
    hub.refuse(403, "IotHubQuotaExceeded", "Total number of devices has exceeded the allocated quota")
    result = await run(Device(dps, "refused-csr-1", KEY), {"csr": make_csr("refused-csr-1").b64})
    assert result["status"] == "failed"
    assert result["registrationState"]["errorCode"] == 400209
    assert "IotHubQuotaExceeded" in result["registrationState"]["errorMessage"]
    assert "issuedCertificateChain" not in result["registrationState"]
    issued = await dps.ctx.credential_policies.certificates("refused-csr-1")
    assert len(issued) == 1 and issued[0].revoked is not None
