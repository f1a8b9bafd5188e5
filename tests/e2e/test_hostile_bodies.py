"""Hostile bodies and parameters against a real server: every dialect answers its own 4xx, never a 500.

The parser limits (wirejson.py) are shared: nesting deeper than 64, NaN, Infinity and numbers
that overflow a double are invalid JSON. Each dialect renders the refusal in its own error format
(docs/errors.md), which each case checks, so a refusal in the wrong format fails too. The server log
must show no traceback afterwards.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from provisiond.domain.sas import build_sas
from tests.compat.support import link_hub, service_request
from tests.support.mqtt import device_connect
from tests.support.server import ServerProcess

KEY = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU="
# Each hostile body, and what the refusal's message must say (so a 400 for another reason fails).
HOSTILE: dict[str, tuple[bytes, str]] = {
    "nested 1000 deep": (b"[" * 1000 + b"]" * 1000, "nested more than 64"),
    "nested 65 deep in an object": (
        b'{"payload": ' + b'{"a": ' * 64 + b"1" + b"}" * 64 + b"}",
        "nested more than 64",
    ),
    "NaN": (b'{"payload": NaN}', "malformed"),
    "Infinity": (b'{"payload": [Infinity]}', "malformed"),
    "-Infinity": (b'{"payload": {"x": -Infinity}}', "malformed"),
    "1e999": (b'{"payload": 1e999}', "out of range"),
}


@dataclass(frozen=True)
class Dialect:
    """One request target of a dialect, and a check that an answer is that dialect's 400."""

    method: str
    path: str
    headers: dict[str, str]
    is_own_400: Callable[[httpx.Response], bool]


def dps_400(r: httpx.Response) -> bool:
    body = r.json()
    return r.status_code == 400 and body["errorCode"] == 400001 and r.headers["x-ms-error-code"] == "400001"


def google_400(r: httpx.Response) -> bool:
    error = r.json()["error"]
    return r.status_code == 400 and error["code"] == 400 and error["status"] == "INVALID_ARGUMENT"


def reseller_400(r: httpx.Response) -> bool:
    error = r.json()["error"]
    return r.status_code == 400 and error["code"] == "INVALID_PARAM_DEFAULT" and "errorId" in error


def sphere_400(r: httpx.Response) -> bool:
    (error,) = r.json()
    return r.status_code == 400 and error["ErrorCode"] == "InvalidJson" and error["Status"] == 400


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def log_start(server: ServerProcess) -> int:
    """Where the server log stood when this module started."""
    return len(server.log.read_text())


@pytest.fixture(scope="module")
def dialects(server: ServerProcess, log_start: int) -> dict[str, Dialect]:
    hub = link_hub(server, "hostile")
    rid = uid("hostile-dev")
    enrollment = {
        "registrationId": rid,
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY}},
        "iotHubs": [hub],
    }
    assert service_request(server, "PUT", f"/enrollments/{rid}", json=enrollment).status_code == 200
    partner = json.loads(server.cli("partner", "create", "Hostile reseller", "--json").stdout)
    tenant = json.loads(server.cli("tenant", "create", "Hostile tenant", "--json").stdout)
    owner = server.service_sas()
    device = build_sas(KEY, f"{server.id_scope}/registrations/{rid}", int(time.time()) + 3600, "registration")
    bearer = {"Authorization": f"Bearer {partner['token']}"}
    return {
        "dps service": Dialect("PUT", f"/enrollments/{uid('e')}", {"Authorization": owner}, dps_400),
        "dps device": Dialect(
            "PUT", f"/{server.id_scope}/registrations/{rid}/register", {"Authorization": device}, dps_400
        ),
        "zero-touch": Dialect(
            "POST", f"/v1/partners/{partner['partnerId']}/devices:findByIdentifier", bearer, google_400
        ),
        "reseller": Dialect("POST", "/reseller/v1/listCustomers", bearer, reseller_400),
        "sphere": Dialect(
            "PUT",
            f"/v2/tenants/{tenant['tenantId']}/devices",
            {"Authorization": f"Bearer {tenant['token']}"},
            sphere_400,
        ),
    }


def send(
    server: ServerProcess, method: str, path: str, headers: dict[str, str], body: bytes | None
) -> httpx.Response:
    """One request; the DPS paths get their api-version (a device path starts with the id scope)."""
    if path.startswith(("/enrollments", f"/{server.id_scope}/")):
        version = "2019-03-31" if path.startswith(f"/{server.id_scope}/") else "2021-10-01"
        path += ("&" if "?" in path else "?") + f"api-version={version}"
    with server.http() as client:
        return client.request(
            method, path, content=body, headers={**headers, "Content-Type": "application/json"}
        )


@pytest.mark.parametrize("case", list(HOSTILE))
@pytest.mark.parametrize("name", ["dps service", "dps device", "zero-touch", "reseller", "sphere"])
def test_hostile_json_is_the_dialects_own_400(
    server: ServerProcess, dialects: dict[str, Dialect], name: str, case: str
) -> None:
    dialect = dialects[name]
    body, reason = HOSTILE[case]
    r = send(server, dialect.method, dialect.path, dialect.headers, body)
    assert dialect.is_own_400(r), (r.status_code, r.text)
    assert reason in r.text, r.text


def test_the_device_api_authenticates_before_it_parses(server: ServerProcess) -> None:
    """An anonymous client's hostile body is never parsed: 401, not a parse error."""
    rid = uid("anonymous")
    r = send(
        server, "PUT", f"/{server.id_scope}/registrations/{rid}/register", {}, HOSTILE["nested 1000 deep"][0]
    )
    assert r.status_code == 401 and r.json()["errorCode"] == 401000, r.text


async def test_hostile_json_over_mqtt_is_a_dps_400(
    server: ServerProcess, dialects: dict[str, Dialect]
) -> None:
    rid = dialects["dps device"].path.split("/")[3]
    client, connack = await device_connect(server.mqtt_port, server.ca, server.id_scope, rid, KEY)
    assert connack.return_code == 0
    for n, (body, reason) in enumerate(HOSTILE.values()):
        answer = await client.request(f"$dps/registrations/PUT/iotdps-register/?$rid={n}", body)
        assert answer.topic.startswith(f"$dps/registrations/res/400/?$rid={n}"), answer.topic
        error = json.loads(answer.payload)
        assert error["errorCode"] == 400001 and reason in error["message"], error
    await client.close()


# -- integers out of range -----------------------------------------------------------------------------


BIG = str(2**63)


def test_out_of_range_page_sizes_and_tokens(server: ServerProcess, dialects: dict[str, Dialect]) -> None:
    """Page sizes and page tokens far outside int64: a 400 in the dialect's format, or clamped where
    the real API clamps (docs/errors.md says which)."""
    zt = dialects["zero-touch"]
    partner_path = zt.path.rsplit("/devices", 1)[0]
    r = send(server, "GET", f"{partner_path}/customers?pageSize={BIG}", zt.headers, None)
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT", r.text
    token = base64.urlsafe_b64encode(f"customers:{'9' * 40}".encode()).decode().rstrip("=")
    r = send(server, "GET", f"{partner_path}/customers?pageSize=5&pageToken={token}", zt.headers, None)
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT", r.text
    body = json.dumps({"limit": BIG, "deviceIdentifier": {"imei": "123456789012347"}}).encode()
    r = send(server, "POST", zt.path, zt.headers, body)
    assert google_400(r), r.text

    reseller = dialects["reseller"]
    r = send(server, "POST", reseller.path, reseller.headers, json.dumps({"pageSize": 2**70}).encode())
    assert r.status_code == 200, r.text  # clamped to 100, as the model says
    r = send(server, "POST", reseller.path, reseller.headers, json.dumps({"pageSize": -(2**70)}).encode())
    assert reseller_400(r), r.text

    sphere = dialects["sphere"]
    listing = sphere.path
    r = send(server, "GET", f"{listing}?maxPageSize={'9' * 40}", sphere.headers, None)
    assert r.status_code == 200, r.text  # clamped to 1,000, as the API does

    owner = dialects["dps service"].headers
    r = send(
        server, "POST", "/enrollments/query", {**owner, "x-ms-max-item-count": "9" * 40}, b'{"query": "*"}'
    )
    assert r.status_code == 200, r.text  # clamped to 1,000
    headers = {**owner, "x-ms-max-item-count": "9" * 5000}  # past what int() converts
    r = send(server, "POST", "/enrollments/query", headers, b'{"query": "*"}')
    assert r.status_code == 200, r.text
    deep = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode()
    r = send(server, "POST", "/enrollments/query", {**owner, "x-ms-continuation": deep}, b'{"query": "*"}')
    assert r.status_code == 400 and r.json()["errorCode"] == 400201, r.text  # a bad token, not a 500


# -- connection-level hostility ------------------------------------------------------------------------


def test_a_client_that_leaves_mid_body_is_one_info_line(
    server: ServerProcess, dialects: dict[str, Dialect]
) -> None:
    dialect = dialects["dps service"]
    context = ssl.create_default_context(cafile=server.ca)
    before = server.log.read_text()
    with (
        socket.create_connection(("localhost", server.port)) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        head = (
            f"{dialect.method} {dialect.path}?api-version=2021-10-01 HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: {dialect.headers['Authorization']}\r\nContent-Type: application/json\r\n"
            "Content-Length: 5000\r\n\r\n"
        )
        tls.sendall(head.encode() + b'{"registrationId": ')
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "client went away" not in server.log.read_text()[len(before) :]:
        time.sleep(0.1)
    added = server.log.read_text()[len(before) :]
    assert "client went away during PUT" in added, added
    assert "Traceback" not in added and "ERROR" not in added, added


def test_no_traceback_was_logged(server: ServerProcess, log_start: int) -> None:
    """Runs last in this module: nothing above left an unexpected failure in the server log."""
    added = server.log.read_text()[log_start:]
    assert "Traceback" not in added and "unexpected failure" not in added, added
