"""The official Python DPS device SDK (azure-iot-device 2.14.0) over MQTT against a real ``provisiond serve``.

Every registration runs ``python/device_mqtt.py`` once in the compat interpreter (``.venv-compat``):
``ProvisioningDeviceClient`` registers one device with a symmetric key or an X.509 certificate, over
MQTT on the server's MQTT port or, with ``websockets=True``, over MQTT over WebSocket on its HTTPS
port (``/$iothub/websocket``). The SDK always dials 8883 (443 with websockets); the script pins
paho's ``connect`` to the session server's free port in the CHILD process only (no SDK option
changes the port), and reports every dial so the tests can check which transport and port were
really used.

Enrollments are written through the DPS service API, hubs linked and CAs added with the operator
CLI; ids, hubs and CAs are unique per test because the server is shared by the session. The tests
follow the DPS device API over MQTT (docs/mqtt.md) as this SDK drives it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.compat.support import (
    add_ca,
    derive_device_key,
    link_hub,
    new_symmetric_key,
    run_compat_python,
    server_log_tail,
    service_request,
    unique_id,
    wait_until_listening,
)
from tests.support.pki import Issued, issue
from tests.support.server import ServerProcess

pytestmark = pytest.mark.compat

SCRIPT = Path(__file__).resolve().parent / "python" / "device_mqtt.py"

TRANSPORTS = ["mqtt", "websockets"]


@pytest.fixture(scope="module", autouse=True)
def mqtt_listening(server: ServerProcess) -> None:
    """The session server listens on its MQTT port (the HTTPS port is already awaited by start_server)."""
    wait_until_listening(server.mqtt_port)


# --- running the device client -------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    """What the device authenticates with: a symmetric key, or a certificate (chain) file and key file."""

    key: str | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def args(self) -> list[str]:
        if self.key is not None:
            return ["--key", self.key]
        assert self.cert_file is not None and self.key_file is not None
        return ["--cert-file", str(self.cert_file), "--key-file", str(self.key_file)]


def run_device(
    server: ServerProcess,
    registration_id: str,
    credential: Credential,
    *,
    transport: str = "mqtt",
    payload: Any = None,
) -> tuple[int, dict[str, Any]]:
    """One ``register()`` through device_mqtt.py: its exit status and the JSON line it printed."""
    websockets = transport == "websockets"
    args = [
        "--port",
        str(server.port if websockets else server.mqtt_port),
        "--registration-id",
        registration_id,
        *credential.args(),
    ]
    if websockets:
        args.append("--websockets")
    if payload is not None:
        args += ["--payload", json.dumps(payload)]
    proc = run_compat_python(SCRIPT, server.ca, *args, ID_SCOPE=server.id_scope)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode in (0, 2) and lines, (
        f"device_mqtt.py failed unexpectedly (exit {proc.returncode})\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\nserver log (tail):\n{server_log_tail(server)}"
    )
    out = json.loads(lines[-1])
    assert_dialled(out, server, transport)
    return proc.returncode, out


def assert_dialled(out: dict[str, Any], server: ServerProcess, transport: str) -> None:
    """The SDK asked paho for its fixed port once (8883 over TCP, 443 over websockets) and the pin
    sent it to the server's MQTT port or, for websockets, its HTTPS port."""
    if transport == "websockets":
        expected = {
            "host": "localhost",
            "requested_port": 443,
            "port": server.port,
            "transport": "websockets",
        }
    else:
        expected = {"host": "localhost", "requested_port": 8883, "port": server.mqtt_port, "transport": "tcp"}
    assert out.get("dials") == [expected], out


def register(
    server: ServerProcess, registration_id: str, credential: Credential, **kwargs: Any
) -> dict[str, Any]:
    """``register()`` returned: the RegistrationResult the script printed."""
    code, out = run_device(server, registration_id, credential, **kwargs)
    assert code == 0, f"register() raised: {out}\nserver log (tail):\n{server_log_tail(server)}"
    return out


def refuse(
    server: ServerProcess, registration_id: str, credential: Credential, **kwargs: Any
) -> dict[str, Any]:
    """``register()`` raised: the exception the script described."""
    code, out = run_device(server, registration_id, credential, **kwargs)
    assert code == 2, f"register() did not raise: {out}"
    return out


def assert_assigned(
    out: dict[str, Any], hub: str, device_id: str, substatus: str = "initialAssignment"
) -> None:
    """A final ``assigned`` RegistrationResult naming this hub, device id and substatus."""
    assert out["status"] == "assigned", out
    assert out["assigned_hub"] == hub, out
    assert out["device_id"] == device_id, out
    assert out["sub_status"] == substatus, out
    assert isinstance(out["operation_id"], str) and out["operation_id"], out
    assert isinstance(out["etag"], str) and out["etag"], out
    assert out["created_date_time"].endswith("Z"), out
    assert out["last_update_date_time"].endswith("Z"), out


def assert_recorded(server: ServerProcess, registration_id: str, out: dict[str, Any]) -> None:
    """The service API's GET /registrations/{id} holds the state the device was told about."""
    r = service_request(server, "GET", f"/registrations/{registration_id}")
    assert r.status_code == 200, r.text
    state = r.json()
    assert state["registrationId"] == registration_id, state
    assert state["status"] == "assigned", state
    assert state["assignedHub"] == out["assigned_hub"], state
    assert state["deviceId"] == out["device_id"], state
    assert state["substatus"] == out["sub_status"], state
    assert state["etag"] == out["etag"], state


def assert_not_recorded(server: ServerProcess, registration_id: str) -> None:
    r = service_request(server, "GET", f"/registrations/{registration_id}")
    assert r.status_code == 404, f"a refused device leaves no registration state: {r.status_code} {r.text}"


# --- the service API -----------------------------------------------------------------------------


def symmetric_key(key: str) -> dict[str, Any]:
    return {"type": "symmetricKey", "symmetricKey": {"primaryKey": key, "secondaryKey": key}}


def put_enrollment(
    server: ServerProcess, registration_id: str, attestation: dict[str, Any], **fields: Any
) -> None:
    body = {"registrationId": registration_id, "attestation": attestation, **fields}
    r = service_request(server, "PUT", f"/enrollments/{registration_id}", json=body)
    assert r.status_code == 200, r.text


def put_group(server: ServerProcess, group_id: str, attestation: dict[str, Any], **fields: Any) -> None:
    body = {"enrollmentGroupId": group_id, "attestation": attestation, **fields}
    r = service_request(server, "PUT", f"/enrollmentGroups/{group_id}", json=body)
    assert r.status_code == 200, r.text


def x509_individual(device: Issued) -> dict[str, Any]:
    return {"type": "x509", "x509": {"clientCertificates": {"primary": {"certificate": device.pem}}}}


def ca_group(server: ServerProcess, tmp_path: Path, hub: str) -> tuple[str, Issued]:
    """An X.509 group on ``hub`` anchored on a fresh root CA added with ``dps ca add`` (caReferences);
    returns the group id and an intermediate CA the root signed."""
    root = issue(unique_id("py-mqtt-root-ca"), ca=True)
    intermediate = issue(unique_id("py-mqtt-intermediate-ca"), root, ca=True)
    root_file = tmp_path / "root-ca.pem"
    root_file.write_text(root.pem)
    group_id = unique_id("py-mqtt-x509-group")
    attestation = {
        "type": "x509",
        "x509": {"caReferences": {"primary": add_ca(server, root_file, "py-mqtt-ca")}},
    }
    put_group(server, group_id, attestation, iotHubs=[hub])
    return group_id, intermediate


# --- a custom-allocation webhook served by the test ----------------------------------------------


@dataclass
class Webhook:
    """A plain-http allocation webhook on 127.0.0.1 answering ``answer``; records request bodies."""

    answer: dict[str, Any] = field(default_factory=dict)
    calls: list[Any] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                hook.calls.append(json.loads(raw))
                body = json.dumps(hook.answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{httpd.server_address[1]}/allocate/{unique_id('hook')}"
    thread = threading.Thread(target=httpd.serve_forever, name="allocation-webhook", daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


# --- symmetric keys ------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_symmetric_key_individual_enrollment_is_assigned_to_its_hub(
    server: ServerProcess, transport: str
) -> None:
    """create_from_symmetric_key with an individual enrollment naming one of two linked hubs and a
    deviceId: register() returns ``assigned`` on that hub with the enrollment's deviceId and
    substatus initialAssignment, over MQTT and over MQTT/WebSocket alike; no response payload
    (the SDK renders a missing payload as the JSON text ``null``); the service API records it."""
    link_hub(server, "hub-other")  # a linked hub the enrollment does not name
    hub = link_hub(server)
    registration_id = unique_id("py-mqtt-ind")
    device_id = unique_id("device")
    key = new_symmetric_key()
    put_enrollment(server, registration_id, symmetric_key(key), iotHubs=[hub], deviceId=device_id)

    out = register(server, registration_id, Credential(key=key), transport=transport)

    assert_assigned(out, hub, device_id)
    assert json.loads(out["response_payload"]) is None, out
    assert_recorded(server, registration_id, out)


def test_group_member_with_derived_key_is_assigned_to_the_groups_hub(server: ServerProcess) -> None:
    """A device of a symmetric-key enrollment group signing with the key derived from the group key
    (HMAC-SHA256 of its registration id): ``assigned`` on the group's hub, deviceId = registration id,
    and the registration is listed by the service API's group query."""
    hub = link_hub(server)
    group_id = unique_id("py-mqtt-group")
    group_key = new_symmetric_key()
    put_group(server, group_id, symmetric_key(group_key), iotHubs=[hub])
    registration_id = unique_id("py-mqtt-member")

    out = register(server, registration_id, Credential(key=derive_device_key(group_key, registration_id)))

    assert_assigned(out, hub, registration_id)
    assert_recorded(server, registration_id, out)
    r = service_request(server, "POST", f"/registrations/{group_id}/query", json={"query": "*"})
    assert r.status_code == 200, r.text
    assert [s["registrationId"] for s in r.json()] == [registration_id], r.text


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_wrong_symmetric_key_is_refused_at_connect_with_credential_error(
    server: ServerProcess, transport: str
) -> None:
    """A device of an individual enrollment signing its SAS with another key: the server refuses the
    MQTT CONNECT (CONNACK 5, not authorised), so register() raises CredentialError caused by the
    transport's UnauthorizedError; no registration state is recorded."""
    registration_id = unique_id("py-mqtt-badkey")
    put_enrollment(server, registration_id, symmetric_key(new_symmetric_key()), iotHubs=[link_hub(server)])

    out = refuse(server, registration_id, Credential(key=new_symmetric_key()), transport=transport)

    assert out["error"] == "CredentialError", out
    assert out["error_module"] == "azure.iot.device.exceptions", out
    assert out["causes"][0]["type"] == "UnauthorizedError", out
    assert "not authorised" in out["causes"][0]["message"], out
    assert_not_recorded(server, registration_id)


def test_group_key_itself_is_refused_with_credential_error(server: ServerProcess) -> None:
    """A would-be member of a symmetric-key group signing with the group key instead of its derived
    key: CONNACK refusal, register() raises CredentialError, nothing is recorded."""
    group_key = new_symmetric_key()
    put_group(server, unique_id("py-mqtt-group"), symmetric_key(group_key), iotHubs=[link_hub(server)])
    registration_id = unique_id("py-mqtt-member")

    out = refuse(server, registration_id, Credential(key=group_key))

    assert out["error"] == "CredentialError", out
    assert out["causes"][0]["type"] == "UnauthorizedError", out
    assert_not_recorded(server, registration_id)


def test_disabled_enrollment_ends_failed_and_the_sdk_raises_client_error(server: ServerProcess) -> None:
    """An enrollment with provisioningStatus disabled: the device connects, the operation ends
    ``failed``; azure-iot-device turns a final ``failed`` into ServiceError, surfaced by register()
    as ClientError. The service API records status ``disabled`` with a 401xxx errorCode."""
    registration_id = unique_id("py-mqtt-disabled")
    key = new_symmetric_key()
    put_enrollment(
        server, registration_id, symmetric_key(key), iotHubs=[link_hub(server)], provisioningStatus="disabled"
    )

    out = refuse(server, registration_id, Credential(key=key))

    assert out["error"] == "ClientError", out
    assert out["causes"][0]["type"] == "ServiceError", out
    assert "failed registration status" in out["causes"][0]["message"], out
    r = service_request(server, "GET", f"/registrations/{registration_id}")
    assert r.status_code == 200, r.text
    state = r.json()
    assert state["status"] == "disabled", state
    assert isinstance(state["errorCode"], int) and 401000 <= state["errorCode"] <= 401999, state
    assert "assignedHub" not in state, state


def test_provisioning_payload_reaches_the_webhook_and_its_answer_is_the_response_payload(
    server: ServerProcess, webhook: Webhook
) -> None:
    """client.provisioning_payload set: the register request carries it, the custom-allocation webhook
    receives it as deviceRuntimeContext.payload, and the payload the webhook answers comes back as
    registration_state.response_payload on the hub the webhook chose."""
    hub_a, hub_b = link_hub(server, "hub-a"), link_hub(server, "hub-b")
    answer_payload = {"greeting": "hello python", "config": {"interval": 5, "tags": ["x", "y"]}}
    webhook.answer = {"iotHubHostName": hub_b, "payload": answer_payload}
    registration_id = unique_id("py-mqtt-custom")
    key = new_symmetric_key()
    put_enrollment(
        server,
        registration_id,
        symmetric_key(key),
        iotHubs=[hub_a, hub_b],
        allocationPolicy="custom",
        customAllocationDefinition={"webhookUrl": webhook.url, "apiVersion": "2021-10-01"},
    )
    device_payload = {"modelId": "dtmi:com:example:Thermostat;1", "firmware": "2.0.1"}

    out = register(server, registration_id, Credential(key=key), payload=device_payload)

    assert_assigned(out, hub_b, registration_id)
    assert json.loads(out["response_payload"]) == answer_payload, out
    assert len(webhook.calls) == 1, webhook.calls
    context = webhook.calls[0]["deviceRuntimeContext"]
    assert context["registrationId"] == registration_id, context
    assert context["payload"] == device_payload, context


# --- X.509 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_self_signed_x509_individual_enrollment_is_assigned(
    server: ServerProcess, tmp_path: Path, transport: str
) -> None:
    """create_from_x509_certificate with a self-signed certificate (CN = registration id) held by an
    individual enrollment: the TLS client certificate alone authenticates the device (no password),
    over MQTT and over MQTT/WebSocket: ``assigned`` on the enrollment's hub, deviceId = registration id."""
    link_hub(server, "hub-other")
    hub = link_hub(server)
    registration_id = unique_id("py-mqtt-x509")
    device = issue(registration_id)
    cert_file, key_file = device.write(tmp_path, "device")
    put_enrollment(server, registration_id, x509_individual(device), iotHubs=[hub])

    out = register(
        server, registration_id, Credential(cert_file=cert_file, key_file=key_file), transport=transport
    )

    assert_assigned(out, hub, registration_id)
    assert_recorded(server, registration_id, out)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_x509_leaf_issued_via_an_intermediate_is_assigned_by_the_ca_group(
    server: ServerProcess, tmp_path: Path, transport: str
) -> None:
    """An X.509 enrollment group referencing a root CA added with ``dps ca add``; the device
    certificate (CN = registration id) is issued by an intermediate and the device presents
    leaf + intermediate in its certificate file: ``assigned`` on the group's hub with
    deviceId = registration id, over MQTT and over MQTT/WebSocket."""
    hub = link_hub(server)
    _, intermediate = ca_group(server, tmp_path, hub)
    registration_id = unique_id("py-mqtt-x509-member")
    cert_file, key_file = issue(registration_id, intermediate).write(tmp_path, "device", intermediate)

    out = register(
        server, registration_id, Credential(cert_file=cert_file, key_file=key_file), transport=transport
    )

    assert_assigned(out, hub, registration_id)
    assert_recorded(server, registration_id, out)


@pytest.mark.parametrize("case", ["cn-is-another-id", "not-the-enrolled-certificate", "cn-mismatch-in-group"])
def test_x509_device_not_matching_its_enrollment_is_refused_with_credential_error(
    server: ServerProcess, tmp_path: Path, case: str
) -> None:
    """X.509 devices the server must not accept, each refused at CONNECT so register() raises
    CredentialError and nothing is recorded: the enrolled certificate itself but with a CN that is
    another registration id; a self-signed certificate with the right CN that is not the enrolled
    one; a leaf chaining to a group's CA whose CN is not the registration id it connects as."""
    hub = link_hub(server)
    registration_id = unique_id("py-mqtt-x509-bad")
    if case == "cn-is-another-id":
        device = issue(unique_id("py-mqtt-x509-other"))
        put_enrollment(server, registration_id, x509_individual(device), iotHubs=[hub])
        cert_file, key_file = device.write(tmp_path, "device")
    elif case == "not-the-enrolled-certificate":
        put_enrollment(server, registration_id, x509_individual(issue(registration_id)), iotHubs=[hub])
        cert_file, key_file = issue(registration_id).write(tmp_path, "device")
    else:
        _, intermediate = ca_group(server, tmp_path, hub)
        leaf = issue(unique_id("py-mqtt-x509-other"), intermediate)
        cert_file, key_file = leaf.write(tmp_path, "device", intermediate)

    out = refuse(server, registration_id, Credential(cert_file=cert_file, key_file=key_file))

    assert out["error"] == "CredentialError", out
    assert out["causes"][0]["type"] == "UnauthorizedError", out
    assert_not_recorded(server, registration_id)
