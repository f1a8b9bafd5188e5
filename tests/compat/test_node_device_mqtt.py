"""The Node DPS device SDK over MQTT (azure-iot-provisioning-device-mqtt 1.8.1) against a real ``provisiond serve``.

Every registration runs ``node/device-mqtt.js`` once: the official ``Mqtt`` transport, on an
``azure-iot-mqtt-base`` ``MqttBase`` given the test CA with ``setOptions({ca})``, dials
``mqtts://localhost:{server.mqtt_port}`` (unlike the HTTP transport, this one takes a port in the
host) and registers one device with a symmetric key; the script prints what ``register()`` resolved
with, or how the server refused it. Enrollments are written through the DPS service API, hubs
linked with the operator CLI; ids and hubs are unique per test (the server is shared).
The tests follow the DPS device API over MQTT (docs/mqtt.md): CONNECT, the ``$dps/registrations``
topics and CONNACK refusals.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.compat.support import (
    derive_device_key,
    dps_env,
    link_hub,
    new_symmetric_key,
    run_node,
    server_log_tail,
    service_request,
    unique_id,
    wait_until_listening,
)
from tests.support.server import ServerProcess

pytestmark = pytest.mark.compat

SCRIPT = "device-mqtt.js"

# CONNACK return code 5 (MQTT 3.1.1 §3.2.2.3): the server's answer to bad device credentials (docs/mqtt.md).
NOT_AUTHORIZED = 5


@pytest.fixture(scope="module", autouse=True)
def mqtt_listening(server: ServerProcess) -> None:
    """The session server listens on its MQTT port (the HTTPS port is already awaited by start_server)."""
    wait_until_listening(server.mqtt_port)


def run_device(server: ServerProcess, registration_id: str, key: str) -> tuple[int, dict[str, Any]]:
    """One ``register()`` through device-mqtt.js: its exit status and the JSON line it printed."""
    extra: dict[str, Any] = {**dps_env(server), "REGISTRATION_ID": registration_id, "DEVICE_KEY": key}
    proc = run_node(SCRIPT, server.ca, **extra)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode in (0, 2) and lines, (
        f"device-mqtt.js failed unexpectedly (exit {proc.returncode})\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\nserver log (tail):\n{server_log_tail(server)}"
    )
    return proc.returncode, json.loads(lines[-1])


def register(server: ServerProcess, registration_id: str, key: str) -> dict[str, Any]:
    """``register()`` resolved: its result (the registrationState)."""
    code, out = run_device(server, registration_id, key)
    assert code == 0 and out.get("registered") is True, (
        f"register() was refused: {out}\nserver log (tail):\n{server_log_tail(server)}"
    )
    result = out["result"]
    assert isinstance(result, dict), out
    return result


def refuse(server: ServerProcess, registration_id: str, key: str) -> dict[str, Any]:
    """``register()`` rejected because of the server's answer."""
    code, out = run_device(server, registration_id, key)
    assert code == 2 and out.get("refused") is True, f"register() was not refused: {out}"
    return out


def assert_assigned(result: dict[str, Any], registration_id: str, hub: str, device_id: str) -> None:
    """A final ``assigned`` registrationState naming this device and hub, substatus initialAssignment."""
    assert result["registrationId"] == registration_id, result
    assert result["status"] == "assigned", result
    assert result["assignedHub"] == hub, result
    assert result["deviceId"] == device_id, result
    assert result["substatus"] == "initialAssignment", result
    assert result["createdDateTimeUtc"].endswith("Z"), result
    assert result["lastUpdatedDateTimeUtc"].endswith("Z"), result
    assert isinstance(result["etag"], str) and result["etag"], result
    assert "errorCode" not in result, result


def assert_recorded(server: ServerProcess, result: dict[str, Any]) -> None:
    """The service API's GET /registrations/{id} holds the state the device was told about."""
    r = service_request(server, "GET", f"/registrations/{result['registrationId']}")
    assert r.status_code == 200, r.text
    state = r.json()
    for name in ("status", "assignedHub", "deviceId", "substatus", "etag"):
        assert state[name] == result[name], (name, state, result)


def symmetric_key(key: str) -> dict[str, Any]:
    return {"type": "symmetricKey", "symmetricKey": {"primaryKey": key, "secondaryKey": key}}


def put_enrollment(server: ServerProcess, registration_id: str, key: str, **fields: Any) -> None:
    body = {"registrationId": registration_id, "attestation": symmetric_key(key), **fields}
    r = service_request(server, "PUT", f"/enrollments/{registration_id}", json=body)
    assert r.status_code == 200, r.text


def put_group(server: ServerProcess, group_id: str, key: str, **fields: Any) -> None:
    body = {"enrollmentGroupId": group_id, "attestation": symmetric_key(key), **fields}
    r = service_request(server, "PUT", f"/enrollmentGroups/{group_id}", json=body)
    assert r.status_code == 200, r.text


# --- assignments ---------------------------------------------------------------------------------


def test_symmetric_key_individual_enrollment_is_assigned_to_its_hub(server: ServerProcess) -> None:
    """An individual symmetric-key enrollment naming one of two linked hubs and a deviceId:
    register() over MQTT resolves ``assigned`` on that hub with the enrollment's deviceId and
    substatus initialAssignment; no group or payload is reported; the service API records it."""
    link_hub(server, "hub-other")  # a linked hub the enrollment does not name
    hub = link_hub(server)
    registration_id = unique_id("node-mqtt-ind")
    device_id = unique_id("device")
    key = new_symmetric_key()
    put_enrollment(server, registration_id, key, iotHubs=[hub], deviceId=device_id)

    result = register(server, registration_id, key)

    assert_assigned(result, registration_id, hub, device_id)
    assert "symmetricKey" not in result, "an individual enrollment names no enrollmentGroupId"
    assert "payload" not in result, "only custom allocation fills payload"
    assert_recorded(server, result)


def test_group_member_with_derived_key_is_assigned_to_the_groups_hub(server: ServerProcess) -> None:
    """A device of a symmetric-key enrollment group signing with its derived key: register() over
    MQTT resolves ``assigned`` on the group's hub with deviceId = registration id, and the state
    names the group (symmetricKey.enrollmentGroupId)."""
    link_hub(server, "hub-other")
    hub = link_hub(server)
    group_id = unique_id("node-mqtt-group")
    group_key = new_symmetric_key()
    put_group(server, group_id, group_key, iotHubs=[hub])
    registration_id = unique_id("node-mqtt-member")

    result = register(server, registration_id, derive_device_key(group_key, registration_id))

    assert_assigned(result, registration_id, hub, registration_id)
    assert result["symmetricKey"] == {"enrollmentGroupId": group_id}, result
    assert_recorded(server, result)


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["wrong-key", "group-key-itself", "unknown-registration-id"])
def test_bad_device_credentials_are_refused_at_connect_with_connack_5(
    server: ServerProcess, case: str
) -> None:
    """Devices whose SAS the server must not accept are refused at MQTT CONNECT with CONNACK 5
    (not authorised), which register() rejects with mqtt.js's 'Connection refused: Not authorized':
    an enrolled device signing with another key; a group member signing with the group key instead
    of its derived key; a registration id no enrollment or group knows. Nothing is recorded."""
    registration_id = unique_id("node-mqtt-refused")
    if case == "wrong-key":
        put_enrollment(server, registration_id, new_symmetric_key(), iotHubs=[link_hub(server)])
        key = new_symmetric_key()
    elif case == "group-key-itself":
        key = new_symmetric_key()
        put_group(server, unique_id("node-mqtt-group"), key, iotHubs=[link_hub(server)])
    else:
        key = new_symmetric_key()

    refusal = refuse(server, registration_id, key)

    assert refusal["connackCode"] == NOT_AUTHORIZED, refusal
    assert refusal["error"] == "Error", refusal
    assert refusal["message"] == "Connection refused: Not authorized", refusal
    assert refusal["mqttStatus"] is None and refusal["topic"] is None, "refused before any request"
    r = service_request(server, "GET", f"/registrations/{registration_id}")
    assert r.status_code == 404, f"a refused device leaves no registration state: {r.text}"
