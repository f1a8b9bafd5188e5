"""TPM attestation end to end: a software TPM (swtpm) driven by tpm2-tools, a real ``provisiond serve``.

The device does what the SDKs do, one tpm2-tools command at a time (tests/support/tpm.py): EK and
SRK at the SDKs' handles, ActivateCredential + Import + Load of each activation blob, HMAC of the
SAS. Skipped locally without swtpm; required in CI (PROVISIOND_TEST_REQUIRE_TPM=1).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisiond.api.dps_device.mqtt.codec import Connect
from provisiond.domain.tpm_public import registration_id_of
from tests.compat.support import link_hub, service_request
from tests.support.mqtt import ConnAck, MqttTestClient
from tests.support.operations import clean_database
from tests.support.server import ServerProcess, start_server
from tests.support.tpm import SoftwareTpm, TpmCommandFailed, TpmDevice, require_swtpm

API = {"api-version": "2019-03-31"}


@pytest.fixture
def tpm_device(tmp_path: Path) -> Iterator[TpmDevice]:
    """A fresh software TPM with its EK and SRK created and persisted, as a device has them."""
    require_swtpm()
    tpm = SoftwareTpm(tmp_path / "swtpm").start()
    try:
        device = TpmDevice(tpm, tmp_path / "device")
        device.provision()
        yield device
    finally:
        tpm.stop()


@dataclass
class Flow:
    """One TPM device's calls to one server (or, for ``to``, another one on the same database)."""

    server: ServerProcess
    device: TpmDevice
    registration_id: str

    @property
    def resource(self) -> str:
        return f"{self.server.id_scope}/registrations/{self.registration_id}"

    def body(self) -> dict[str, Any]:
        ek, srk = self.device.read_b64("ek.pub"), self.device.read_b64("srk.pub")
        return {"registrationId": self.registration_id, "tpm": {"endorsementKey": ek, "storageRootKey": srk}}

    def register(
        self, authorization: str | None = None, server: ServerProcess | None = None
    ) -> httpx.Response:
        headers = {"Authorization": authorization} if authorization else {}
        with (server or self.server).http() as client:
            return client.put(f"/{self.resource}/register", params=API, json=self.body(), headers=headers)

    def take_challenge(self, server: ServerProcess | None = None) -> None:
        r = self.register(server=server)
        assert r.status_code == 401, r.text
        assert r.json()["keyName"] == "registration"
        self.device.activate(r.json()["authenticationKey"])

    def sas(self) -> str:
        return self.device.sas(self.resource, int(time.time()) + 3600)

    def assigned(self, server: ServerProcess | None = None) -> dict[str, Any]:
        """Signed register, then polls (with the same token, as the SDKs do) until final."""
        token = self.sas()
        r = self.register(token, server)
        assert r.status_code == 202, r.text
        op = r.json()["operationId"]
        with (server or self.server).http() as client:
            for _ in range(60):
                time.sleep(int(r.headers.get("retry-after", "1")))
                r = client.get(
                    f"/{self.resource}/operations/{op}", params=API, headers={"Authorization": token}
                )
                if r.status_code == 200:
                    result: dict[str, Any] = r.json()
                    return result
                assert r.status_code == 202, r.text
        raise AssertionError("the registration never finished")


def enroll(server: ServerProcess, rid: str, ek: str, **fields: Any) -> None:
    body = {"registrationId": rid, "attestation": {"type": "tpm", "tpm": {"endorsementKey": ek}}, **fields}
    r = service_request(server, "PUT", f"/enrollments/{rid}", json=body)
    assert r.status_code == 200, r.text


def test_a_tpm_registers_under_the_id_derived_from_its_ek_and_imports_its_hub_key(
    server: ServerProcess, tpm_device: TpmDevice
) -> None:
    ek = tpm_device.read_b64("ek.pub")
    rid = registration_id_of(ek)
    hub = link_hub(server, "tpm")
    enroll(server, rid, ek, iotHubs=[hub], deviceId=f"tpm-{rid[:8]}")
    flow = Flow(server, tpm_device, rid)
    flow.take_challenge()
    result = flow.assigned()
    state = result["registrationState"]
    assert (result["status"], state["assignedHub"], state["deviceId"]) == ("assigned", hub, f"tpm-{rid[:8]}")
    tpm_device.activate(state["tpm"]["authenticationKey"])  # the TPM imports the hub key
    assert len(tpm_device.sign(b"hub token")) == 32
    listed = service_request(server, "GET", f"/registrations/{rid}")
    assert listed.status_code == 200 and listed.json()["assignedHub"] == hub


def test_another_tpms_ek_under_the_registration_id_is_refused(
    server: ServerProcess, tpm_device: TpmDevice, tmp_path: Path
) -> None:
    rid = f"tpm-{uuid.uuid4().hex[:12]}"
    other = SoftwareTpm(tmp_path / "other").start()
    try:
        impostor = TpmDevice(other, tmp_path / "impostor")
        impostor.provision()
        enroll(server, rid, tpm_device.read_b64("ek.pub"))
        r = Flow(server, impostor, rid).register()
        assert r.status_code == 401 and r.json()["errorCode"] == 401000
        assert "authenticationKey" not in r.json()
    finally:
        other.stop()


def test_a_disabled_tpm_enrollment_ends_disabled(server: ServerProcess, tpm_device: TpmDevice) -> None:
    rid = f"tpm-{uuid.uuid4().hex[:12]}"
    enroll(server, rid, tpm_device.read_b64("ek.pub"), provisioningStatus="disabled")
    flow = Flow(server, tpm_device, rid)
    flow.take_challenge()
    state = flow.assigned()["registrationState"]
    assert state["status"] == "disabled" and state["errorCode"] == 401006 and "tpm" not in state


def test_a_forged_sas_and_one_signed_with_a_replaced_challenges_key_are_refused(
    server: ServerProcess, tpm_device: TpmDevice
) -> None:
    rid = f"tpm-{uuid.uuid4().hex[:12]}"
    enroll(server, rid, tpm_device.read_b64("ek.pub"), iotHubs=[link_hub(server, "tpm")])
    flow = Flow(server, tpm_device, rid)
    forged = f"SharedAccessSignature sr={rid}&sig=AAAA&se={int(time.time()) + 600}&skn=registration"
    assert flow.register(forged).status_code == 401
    flow.take_challenge()
    first_key_token = flow.sas()
    r = flow.register()  # a second challenge replaces the first key
    assert r.status_code == 401
    refused = flow.register(first_key_token)
    assert refused.status_code == 401 and refused.json()["errorCode"] == 401000
    tpm_device.activate(r.json()["authenticationKey"])
    assert flow.assigned()["status"] == "assigned"


def test_a_tpm_enrollment_group_is_refused(server: ServerProcess, tpm_device: TpmDevice) -> None:
    gid = f"tpm-group-{uuid.uuid4().hex[:8]}"
    body = {
        "enrollmentGroupId": gid,
        "attestation": {"type": "tpm", "tpm": {"endorsementKey": tpm_device.read_b64("ek.pub")}},
    }
    r = service_request(server, "PUT", f"/enrollmentGroups/{gid}", json=body)
    assert r.status_code == 400 and r.json()["errorCode"] == 400201


def test_tpm_over_mqtt_is_refused_at_connect(server: ServerProcess, tpm_device: TpmDevice) -> None:
    """DPS carries TPM over HTTPS (and AMQP), never MQTT: a TPM-signed password is refused."""
    rid = f"tpm-{uuid.uuid4().hex[:12]}"
    enroll(server, rid, tpm_device.read_b64("ek.pub"))
    flow = Flow(server, tpm_device, rid)
    flow.take_challenge()
    user = f"{server.id_scope}/registrations/{rid}/api-version=2019-03-31"

    async def connect(password: bytes | None) -> int:
        client = await MqttTestClient.open(server.mqtt_port, server.ca)
        try:
            await client.send(Connect(rid, user, password, 60))
            connack = await client.recv()
            assert isinstance(connack, ConnAck), connack
            return connack.return_code
        finally:
            await client.close()

    assert asyncio.run(connect(flow.sas().encode())) == 5  # not authorised
    assert asyncio.run(connect(None)) == 5
    assert flow.register(flow.sas()).status_code == 202  # the same token is good over HTTPS


def test_challenge_on_one_server_and_the_signed_call_on_another_sharing_postgresql(
    pg_url: str, tmp_path: Path, tpm_device: TpmDevice
) -> None:
    """The challenge key lives in the database, sealed with the shared outer key, not in a process."""
    asyncio.run(clean_database(pg_url))
    shared = {"PROVISIOND_SECRETS_KEY_FILE": str(tmp_path / "outer.key")}
    with ExitStack() as stack:
        a = start_server(tmp_path / "a", database=pg_url, env=shared)
        stack.callback(a.stop)
        b = start_server(tmp_path / "b", database=pg_url, env=shared)
        stack.callback(b.stop)
        rid = f"tpm-{uuid.uuid4().hex[:12]}"
        hub = link_hub(a, "tpm")
        enroll(a, rid, tpm_device.read_b64("ek.pub"), iotHubs=[hub])
        flow = Flow(a, tpm_device, rid)
        flow.take_challenge(server=a)
        result = flow.assigned(server=b)
        assert result["status"] == "assigned" and result["registrationState"]["assignedHub"] == hub
        tpm_device.activate(result["registrationState"]["tpm"]["authenticationKey"])


def test_a_blob_for_another_tpm_is_refused_by_the_tpm(
    server: ServerProcess, tpm_device: TpmDevice, tmp_path: Path
) -> None:
    """The blob is bound to the EK: a second TPM cannot take a genuine device's challenge."""
    rid = f"tpm-{uuid.uuid4().hex[:12]}"
    enroll(server, rid, tpm_device.read_b64("ek.pub"))
    r = Flow(server, tpm_device, rid).register()
    other = SoftwareTpm(tmp_path / "other").start()
    try:
        thief = TpmDevice(other, tmp_path / "thief")
        thief.provision()
        with pytest.raises(TpmCommandFailed) as failed:
            thief.activate(r.json()["authenticationKey"])
        assert failed.value.tool == "tpm2_activatecredential"
    finally:
        other.stop()


def test_a_challenge_survives_a_restart_of_the_server(tmp_path: Path, tpm_device: TpmDevice) -> None:
    """The challenge key is in the database (sealed), so a restart between the calls loses nothing."""
    first = start_server(tmp_path / "data")
    try:
        rid = f"tpm-{uuid.uuid4().hex[:12]}"
        hub = link_hub(first, "tpm")
        enroll(first, rid, tpm_device.read_b64("ek.pub"), iotHubs=[hub])
        Flow(first, tpm_device, rid).take_challenge()
    finally:
        first.stop()
    again = start_server(tmp_path / "data")
    try:
        assert again.id_scope == first.id_scope
        result = Flow(again, tpm_device, rid).assigned()
        assert result["status"] == "assigned" and result["registrationState"]["assignedHub"] == hub
        tpm_device.activate(result["registrationState"]["tpm"]["authenticationKey"])
    finally:
        again.stop()
