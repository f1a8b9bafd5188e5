"""The Node DPS device SDK over HTTP (azure-iot-provisioning-device[-http] 1.9.1) against a real ``provisiond serve``.

Every registration runs ``node/device-http.js`` once: the official client registers one device
with a symmetric key (docs/devices.md) and prints what ``register()`` resolved with, or how the
server refused it. Enrollments are written through the DPS service API and hubs are
linked with the operator CLI; every test uses ids and hub names of its own because the server is
shared by the whole session. Each registration takes about a second (``Retry-After: 1``).
The tests follow the DPS device REST API and DPS custom allocation webhooks (docs/devices.md).
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.compat.support import (
    derive_device_key,
    dps_env,
    link_hub,
    new_symmetric_key,
    run_node,
    service_request,
    unique_id,
)
from tests.support.server import ServerProcess, free_port

pytestmark = pytest.mark.compat

SCRIPT = "device-http.js"

# errorCode of a failed custom allocation (DPS's CustomAllocationFailed, docs/errors.md).
CUSTOM_ALLOCATION_FAILED = 400207


# --- running the device client -------------------------------------------------------------------


def run_device(
    server: ServerProcess,
    registration_id: str,
    key: str,
    *,
    payload: Any = None,
    id_scope: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """One ``register()`` through device-http.js: its exit status and the JSON line it printed."""
    extra: dict[str, Any] = {**dps_env(server), "REGISTRATION_ID": registration_id, "DEVICE_KEY": key}
    if id_scope is not None:
        extra["ID_SCOPE"] = id_scope
    if payload is not None:
        extra["PAYLOAD"] = json.dumps(payload)
    proc = run_node(SCRIPT, server.ca, **extra)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode in (0, 2) and lines, (
        f"device-http.js failed unexpectedly (exit {proc.returncode})\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return proc.returncode, json.loads(lines[-1])


def register(server: ServerProcess, registration_id: str, key: str, **kwargs: Any) -> dict[str, Any]:
    """``register()`` resolved: its result (the registrationState)."""
    code, out = run_device(server, registration_id, key, **kwargs)
    assert code == 0 and out.get("registered") is True, f"register() was refused: {out}"
    result = out["result"]
    assert isinstance(result, dict), out
    return result


def refuse(server: ServerProcess, registration_id: str, key: str, **kwargs: Any) -> dict[str, Any]:
    """``register()`` rejected with a server answer: the error name, HTTP status, body and result."""
    code, out = run_device(server, registration_id, key, **kwargs)
    assert code == 2 and out.get("refused") is True, f"register() was not refused: {out}"
    return out


def assert_assigned(
    result: dict[str, Any], registration_id: str, hub: str, device_id: str, substatus: str
) -> None:
    """A final ``assigned`` registrationState (DPS's DeviceRegistrationResult) naming this device,
    hub and substatus."""
    assert result["registrationId"] == registration_id, result
    assert result["status"] == "assigned", result
    assert result["assignedHub"] == hub, result
    assert result["deviceId"] == device_id, result
    assert result["substatus"] == substatus, result
    assert result["createdDateTimeUtc"].endswith("Z"), result
    assert result["lastUpdatedDateTimeUtc"].endswith("Z"), result
    assert isinstance(result["etag"], str) and result["etag"], result
    assert "errorCode" not in result, result


def assert_failed_registration(refusal: dict[str, Any], registration_id: str) -> dict[str, Any]:
    """register() rejected with DeviceRegistrationFailedError on a final ``failed`` operation status.

    Returns the registrationState the server sent with it.
    """
    assert refusal["error"] == "DeviceRegistrationFailedError", refusal
    operation = refusal["result"]
    assert isinstance(operation, dict), refusal
    assert operation["status"] == "failed", operation
    assert operation["operationId"], operation
    state = operation["registrationState"]
    assert state["registrationId"] == registration_id, operation
    assert isinstance(state["errorMessage"], str) and state["errorMessage"], operation
    assert "assignedHub" not in state, operation
    return dict(state)


# --- the service API -----------------------------------------------------------------------------


def symmetric_key(key: str) -> dict[str, Any]:
    return {"type": "symmetricKey", "symmetricKey": {"primaryKey": key, "secondaryKey": key}}


def put_enrollment(server: ServerProcess, registration_id: str, key: str, **fields: Any) -> dict[str, Any]:
    """PUT /enrollments/{id}: an individual symmetric-key enrollment."""
    body = {"registrationId": registration_id, "attestation": symmetric_key(key), **fields}
    r = service_request(server, "PUT", f"/enrollments/{registration_id}", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def put_group(server: ServerProcess, group_id: str, key: str, **fields: Any) -> dict[str, Any]:
    """PUT /enrollmentGroups/{id}: a symmetric-key enrollment group."""
    body = {"enrollmentGroupId": group_id, "attestation": symmetric_key(key), **fields}
    r = service_request(server, "PUT", f"/enrollmentGroups/{group_id}", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def update_enrollment(server: ServerProcess, registration_id: str, **changes: Any) -> dict[str, Any]:
    """Read the enrollment, change fields, write it back with its etag as If-Match."""
    r = service_request(server, "GET", f"/enrollments/{registration_id}")
    assert r.status_code == 200, r.text
    current = r.json()
    r = service_request(
        server,
        "PUT",
        f"/enrollments/{registration_id}",
        json={**current, **changes},
        headers={"If-Match": current["etag"]},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


# --- a custom-allocation webhook served by the test ----------------------------------------------


@dataclass
class WebhookCall:
    path: str
    query: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


@dataclass
class Webhook:
    """Plain-http allocation webhooks on 127.0.0.1, one per path: canned answers, recorded calls."""

    port: int
    answers: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    calls: dict[str, list[WebhookCall]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def route(self, status: int, answer: Any, query: str = "") -> tuple[str, str]:
        """A new webhook path answering ``status`` with ``answer`` as JSON; returns (path, full URL)."""
        path = f"/allocate/{unique_id('hook')}"
        with self.lock:
            self.answers[path] = (status, json.dumps(answer).encode())
            self.calls[path] = []
        url = f"http://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")
        return path, url

    def received(self, path: str) -> list[WebhookCall]:
        with self.lock:
            return list(self.calls[path])


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    hook = Webhook(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with hook.lock:
                answer = hook.answers.get(url.path)
                if answer is not None:
                    call = WebhookCall(
                        url.path, url.query, {k.lower(): v for k, v in self.headers.items()}, raw
                    )
                    hook.calls[url.path].append(call)
            status, body = answer or (404, b'{"error": "no such webhook"}')
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.port = int(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, name="allocation-webhook", daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def custom_allocation(url: str) -> dict[str, Any]:
    return {
        "allocationPolicy": "custom",
        "customAllocationDefinition": {"webhookUrl": url, "apiVersion": "2021-10-01"},
    }


# --- 1. individual enrollments -------------------------------------------------------------------


@pytest.mark.parametrize("with_device_id", [True, False], ids=["enrollment-deviceId", "no-deviceId"])
def test_individual_enrollment_device_is_assigned_to_the_enrollments_hub_with_initial_assignment(
    server: ServerProcess, with_device_id: bool
) -> None:
    """A symmetric-key individual enrollment naming one linked hub: register() resolves ``assigned``
    on that hub with substatus initialAssignment; deviceId is the enrollment's deviceId when set,
    else the registration id."""
    link_hub(server, "hub-other")  # another linked hub the enrollment does not name
    hub = link_hub(server)
    registration_id = unique_id("node-http-ind")
    device_id = unique_id("device") if with_device_id else None
    key = new_symmetric_key()
    put_enrollment(
        server,
        registration_id,
        key,
        iotHubs=[hub],
        allocationPolicy="hashed",
        **({"deviceId": device_id} if device_id else {}),
    )

    result = register(server, registration_id, key)

    assert_assigned(result, registration_id, hub, device_id or registration_id, "initialAssignment")
    assert "symmetricKey" not in result, "an individual enrollment names no enrollmentGroupId"
    assert "payload" not in result, "only custom allocation fills payload"


# --- 2. enrollment groups ------------------------------------------------------------------------


def test_group_member_with_derived_key_is_assigned_and_visible_through_the_service_api(
    server: ServerProcess,
) -> None:
    """A device of a symmetric-key group signs with the key derived from the group key: it is
    assigned to the group's hub with deviceId = registration id; the service API's
    GET /registrations/{id} returns that state and POST /registrations/{groupId}/query lists it."""
    hub = link_hub(server)
    group_id = unique_id("node-http-group")
    group_key = new_symmetric_key()
    put_group(server, group_id, group_key, iotHubs=[hub], allocationPolicy="hashed")
    registration_id = unique_id("node-http-member")

    result = register(server, registration_id, derive_device_key(group_key, registration_id))

    assert_assigned(result, registration_id, hub, registration_id, "initialAssignment")
    assert result["symmetricKey"] == {"enrollmentGroupId": group_id}, result

    r = service_request(server, "GET", f"/registrations/{registration_id}")
    assert r.status_code == 200, r.text
    state = r.json()
    assert state["registrationId"] == registration_id
    assert state["status"] == "assigned"
    assert state["assignedHub"] == hub
    assert state["deviceId"] == registration_id
    assert state["substatus"] == "initialAssignment"
    assert state["etag"] == result["etag"]

    r = service_request(server, "POST", f"/registrations/{group_id}/query", json={"query": "*"})
    assert r.status_code == 200, r.text
    assert r.headers["x-ms-item-type"] == "DeviceRegistration"
    listed = {s["registrationId"]: s for s in r.json()}
    assert set(listed) == {registration_id}, listed
    assert listed[registration_id]["assignedHub"] == hub
    assert listed[registration_id]["status"] == "assigned"


def test_group_key_itself_is_not_a_device_key(server: ServerProcess) -> None:
    """A would-be group member signing with the group key instead of its derived key matches no
    enrollment: it is refused like an unknown registration id (404, errorCode 404201, docs/errors.md)
    and no registration state is recorded."""
    group_id = unique_id("node-http-group")
    group_key = new_symmetric_key()
    put_group(server, group_id, group_key, iotHubs=[link_hub(server)], allocationPolicy="hashed")
    registration_id = unique_id("node-http-member")

    refusal = refuse(server, registration_id, group_key)

    assert refusal["httpStatus"] == 404, refusal
    assert refusal["error"] == "Error" and refusal["message"] == "Not found", refusal
    assert refusal["body"]["errorCode"] == 404201, refusal
    assert service_request(server, "GET", f"/registrations/{registration_id}").status_code == 404


# --- 3. re-registration after the enrollment moved to another hub --------------------------------


@pytest.mark.parametrize(
    ("update_hub_assignment", "migrate_device_data", "substatus", "ends_on_new_hub"),
    [
        (True, True, "deviceDataMigrated", True),
        (True, False, "deviceDataReset", True),
        (False, True, "reprovisionedToInitialAssignment", False),
    ],
    ids=["migrate", "reset", "never-reprovision"],
)
def test_reregistration_after_the_enrollment_moves_hub_follows_the_reprovision_policy(
    server: ServerProcess,
    update_hub_assignment: bool,
    migrate_device_data: bool,
    substatus: str,
    ends_on_new_hub: bool,
) -> None:
    """Assigned to hub A, the enrollment's iotHubs is changed to hub B, the device registers again:
    migrateDeviceData true -> B, deviceDataMigrated; false -> B, deviceDataReset;
    updateHubAssignment false -> stays on A, reprovisionedToInitialAssignment."""
    old_hub, new_hub = link_hub(server, "hub-a"), link_hub(server, "hub-b")
    registration_id = unique_id("node-http-reprov")
    key = new_symmetric_key()
    policy = {"updateHubAssignment": update_hub_assignment, "migrateDeviceData": migrate_device_data}
    put_enrollment(
        server, registration_id, key, iotHubs=[old_hub], allocationPolicy="hashed", reprovisionPolicy=policy
    )
    first = register(server, registration_id, key)
    assert_assigned(first, registration_id, old_hub, registration_id, "initialAssignment")

    moved = update_enrollment(server, registration_id, iotHubs=[new_hub])
    assert moved["iotHubs"] == [new_hub]
    assert moved["reprovisionPolicy"] == policy
    again = register(server, registration_id, key)

    expected_hub = new_hub if ends_on_new_hub else old_hub
    assert_assigned(again, registration_id, expected_hub, registration_id, substatus)
    assert again["etag"] != first["etag"]
    assert again["createdDateTimeUtc"] == first["createdDateTimeUtc"]
    r = service_request(server, "GET", f"/registrations/{registration_id}")
    assert r.status_code == 200, r.text
    assert (r.json()["assignedHub"], r.json()["substatus"]) == (expected_hub, substatus)


# --- 4. custom allocation ------------------------------------------------------------------------


def test_custom_allocation_webhook_chooses_the_hub_and_its_payload_reaches_the_device(
    server: ServerProcess, webhook: Webhook
) -> None:
    """The server POSTs an AllocationRequest (sanitised individualEnrollment, deviceRuntimeContext with
    the registration id and the device's payload, linkedHubs) to the enrollment's webhook URL as
    stored; the hub the webhook names is assigned and the payload it returns is result.payload."""
    hub_a, hub_b = link_hub(server, "hub-a"), link_hub(server, "hub-b")
    registration_id = unique_id("node-http-custom")
    key = new_symmetric_key()
    function_key = unique_id("function-key")
    answer_payload = {"greeting": "hello device", "config": {"interval": 30, "tags": ["a", "b"]}}
    path, url = webhook.route(
        200,
        {
            "iotHubHostName": hub_b,
            "initialTwin": {"tags": {"chosenBy": "webhook"}, "properties": {"desired": {"mode": "x"}}},
            "payload": answer_payload,
        },
        query=f"code={function_key}",
    )
    put_enrollment(server, registration_id, key, iotHubs=[hub_a, hub_b], **custom_allocation(url))
    device_payload = {"modelId": "dtmi:com:example:Thermostat;1", "firmware": "1.2.3"}

    result = register(server, registration_id, key, payload=device_payload)

    assert_assigned(result, registration_id, hub_b, registration_id, "initialAssignment")
    assert result["payload"] == answer_payload

    calls = webhook.received(path)
    assert len(calls) == 1, calls
    call = calls[0]
    assert call.query == f"code={function_key}", "the webhook URL is called exactly as stored"
    assert call.headers["content-type"].startswith("application/json"), call.headers
    assert key not in call.raw.decode(), "the AllocationRequest must not carry the device's keys"
    assert function_key not in call.raw.decode(), "the webhook URL's query (function key) must be masked"
    request = call.body
    assert set(request) == {"individualEnrollment", "deviceRuntimeContext", "linkedHubs"}, request
    enrollment = request["individualEnrollment"]
    assert enrollment["registrationId"] == registration_id
    assert enrollment["attestation"] == {"type": "symmetricKey"}
    assert enrollment["allocationPolicy"] == "custom"
    assert enrollment["customAllocationDefinition"] == {
        "webhookUrl": url.split("?", 1)[0] + "?****",
        "apiVersion": "2021-10-01",
    }
    assert sorted(enrollment["iotHubs"]) == sorted([hub_a, hub_b])
    context = request["deviceRuntimeContext"]
    assert context["registrationId"] == registration_id
    assert context["payload"] == device_payload
    assert context["symmetricKey"] == {}
    assert "currentIotHubHostName" not in context, "absent on initial assignment"
    assert "currentDeviceId" not in context, "absent on initial assignment"
    assert sorted(request["linkedHubs"]) == sorted([hub_a, hub_b])


def test_custom_allocation_reregistration_tells_the_webhook_the_current_assignment(
    server: ServerProcess, webhook: Webhook
) -> None:
    """The webhook is called again on re-registration, with currentIotHubHostName/currentDeviceId of
    the existing assignment; a device that sends no payload gets no deviceRuntimeContext.payload,
    but the webhook's payload still reaches it."""
    hub_a, hub_b = link_hub(server, "hub-a"), link_hub(server, "hub-b")
    registration_id = unique_id("node-http-custom")
    device_id = unique_id("device")
    key = new_symmetric_key()
    path, url = webhook.route(200, {"iotHubHostName": hub_a, "payload": {"n": 1}})
    put_enrollment(
        server, registration_id, key, deviceId=device_id, iotHubs=[hub_a, hub_b], **custom_allocation(url)
    )

    first = register(server, registration_id, key)
    again = register(server, registration_id, key)

    assert_assigned(first, registration_id, hub_a, device_id, "initialAssignment")
    assert_assigned(again, registration_id, hub_a, device_id, "reprovisionedToInitialAssignment")
    assert again["payload"] == {"n": 1}
    calls = [c.body for c in webhook.received(path)]
    assert len(calls) == 2, calls
    assert "payload" not in calls[0]["deviceRuntimeContext"], "the device sent no payload"
    assert "currentIotHubHostName" not in calls[0]["deviceRuntimeContext"]
    assert calls[1]["deviceRuntimeContext"]["currentIotHubHostName"] == hub_a
    assert calls[1]["deviceRuntimeContext"]["currentDeviceId"] == device_id
    assert calls[1]["individualEnrollment"]["deviceId"] == device_id


# --- 5. refusals through the SDK -----------------------------------------------------------------


def test_wrong_device_key_is_refused_with_401_unauthorized(server: ServerProcess) -> None:
    """A device signing with a key that is not its enrollment's: the register PUT answers 401
    (errorCode 401000) and register() rejects with UnauthorizedError."""
    registration_id = unique_id("node-http-badkey")
    put_enrollment(server, registration_id, new_symmetric_key(), iotHubs=[link_hub(server)])

    refusal = refuse(server, registration_id, new_symmetric_key())

    assert refusal["error"] == "UnauthorizedError", refusal
    assert refusal["httpStatus"] == 401, refusal
    assert refusal["body"]["errorCode"] == 401000, refusal
    r = service_request(server, "GET", f"/registrations/{registration_id}")
    assert r.status_code == 404, "a refused device leaves no registration state"


def test_wrong_id_scope_is_refused_with_404(server: ServerProcess) -> None:
    """A correct device key under an id scope this server does not serve: 404 with a DPS 404xxx
    errorCode; the SDK rejects with its plain 'Not found' Error."""
    registration_id = unique_id("node-http-scope")
    key = new_symmetric_key()
    put_enrollment(server, registration_id, key, iotHubs=[link_hub(server)])
    other_scope = "0ne" + unique_id("x")[-8:].upper()
    assert other_scope.lower() != server.id_scope.lower()

    refusal = refuse(server, registration_id, key, id_scope=other_scope)

    assert refusal["httpStatus"] == 404, refusal
    assert refusal["error"] == "Error" and refusal["message"] == "Not found", refusal
    code = refusal["body"]["errorCode"]
    assert isinstance(code, int) and 404000 <= code <= 404999, refusal


def test_unknown_registration_id_is_refused_with_404201(server: ServerProcess) -> None:
    """A registration id no enrollment or group knows: 404 with errorCode 404201 (docs/errors.md)."""
    refusal = refuse(server, unique_id("node-http-nobody"), new_symmetric_key())

    assert refusal["httpStatus"] == 404, refusal
    assert refusal["error"] == "Error" and refusal["message"] == "Not found", refusal
    assert refusal["body"]["errorCode"] == 404201, refusal


def test_disabled_enrollment_is_refused_as_a_failed_registration_with_status_disabled(
    server: ServerProcess,
) -> None:
    """A device whose enrollment has provisioningStatus disabled authenticates, but the operation
    ends ``failed`` with registrationState.status ``disabled`` and an errorCode:
    register() rejects with DeviceRegistrationFailedError."""
    registration_id = unique_id("node-http-disabled")
    key = new_symmetric_key()
    put_enrollment(server, registration_id, key, iotHubs=[link_hub(server)], provisioningStatus="disabled")

    refusal = refuse(server, registration_id, key)

    state = assert_failed_registration(refusal, registration_id)
    assert state["status"] == "disabled", state
    assert isinstance(state["errorCode"], int) and 401000 <= state["errorCode"] <= 401999, state
    assert "deviceId" not in state, state


def test_webhook_naming_a_hub_outside_linked_hubs_fails_the_registration(
    server: ServerProcess, webhook: Webhook
) -> None:
    """A custom-allocation webhook answering a hub that is not one of linkedHubs: the operation ends
    ``failed`` (errorCode 400207) and register() rejects with DeviceRegistrationFailedError."""
    hub = link_hub(server)
    path, url = webhook.route(200, {"iotHubHostName": f"{unique_id('unknown-hub')}.example"})
    registration_id = unique_id("node-http-badhub")
    key = new_symmetric_key()
    put_enrollment(server, registration_id, key, iotHubs=[hub], **custom_allocation(url))

    refusal = refuse(server, registration_id, key)

    state = assert_failed_registration(refusal, registration_id)
    assert state["status"] == "failed", state
    assert state["errorCode"] == CUSTOM_ALLOCATION_FAILED, state
    assert len(webhook.received(path)) == 1


def test_webhook_that_is_down_fails_the_registration(server: ServerProcess) -> None:
    """A custom-allocation webhook on a port where nothing listens: the operation ends ``failed``
    (errorCode 400207) and register() rejects with DeviceRegistrationFailedError."""
    hub = link_hub(server)
    url = f"http://127.0.0.1:{free_port()}/allocate/{unique_id('down')}"
    registration_id = unique_id("node-http-down")
    key = new_symmetric_key()
    put_enrollment(server, registration_id, key, iotHubs=[hub], **custom_allocation(url))

    refusal = refuse(server, registration_id, key)

    state = assert_failed_registration(refusal, registration_id)
    assert state["status"] == "failed", state
    assert state["errorCode"] == CUSTOM_ALLOCATION_FAILED, state
