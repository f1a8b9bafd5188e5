"""The Azure Sphere v2 contract against a real ``provisiond serve`` over HTTPS (plain httpx, as
no official Sphere SDK is in scope): tenants from the CLI, every endpoint, exact JSON names,
null-until-set fields and integer enums, paging, the 1,000-id limit, the conflict, each refusal,
and the operator's release as a DeviceUnclaim operation."""

from __future__ import annotations

import json
import secrets
import ssl
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess

OPERATION_KEYS = {
    "OperationId",
    "OperationType",
    "State",
    "TenantId",
    "CreatedDateUTC",
    "StartedDateUTC",
    "CompletedDateUTC",
    "ResourceLocation",
    "DetailsLocation",
    "Error",
}
DEVICE_V2 = {
    "DeviceId",
    "TenantId",
    "ChipSku",
    "DeviceGroupId",
    "ProductId",
    "LastAvailableOSVersion",
    "LastInstalledOSVersion",
    "LastOSUpdateUTC",
    "LastUpdateRequestUTC",
}


def new_tenant(server: ServerProcess, name: str) -> tuple[str, str]:
    """``provisiond tenant create NAME --json`` → (tenantId, token)."""
    out = json.loads(server.cli("tenant", "create", name, "--json").stdout)
    assert set(out) == {"tenantId", "token"}
    assert str(uuid.UUID(out["tenantId"])) == out["tenantId"]
    return out["tenantId"], out["token"]


def device() -> str:
    return secrets.token_hex(64)  # lower case on purpose: the API folds case


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.base_url, verify=ssl.create_default_context(cafile=server.ca), timeout=30
    ) as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def finish(client: httpx.Client, location: str, token: str) -> dict[str, Any]:
    """Poll the operation at ``location`` (absolute URL) until it has finished."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = client.get(location, headers=bearer(token))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        assert set(body) == OPERATION_KEYS
        if body["State"] in (2, 3, 4):
            return body
        assert body["State"] in (0, 1)
        time.sleep(0.05)
    raise AssertionError(f"operation at {location} did not finish")


def assert_error_array(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    [entry] = r.json()
    assert set(entry) == {"ErrorCode", "Detail", "Status", "Title"}
    assert entry["ErrorCode"] == code and entry["Status"] == status


def test_tenant_list_shows_the_tokens_tenant(server: ServerProcess, client: httpx.Client) -> None:
    tenant, token = new_tenant(server, "Contoso")
    r = client.get("/v2/tenants", headers=bearer(token))
    assert r.status_code == 200
    assert r.json() == [{"Id": tenant, "Name": "Contoso", "Roles": ["Administrator"]}]


def test_single_claim_202_location_polling_and_device_v2(server: ServerProcess, client: httpx.Client) -> None:
    tenant, token = new_tenant(server, "single")
    dev = device()
    r = client.put(f"/v2/tenants/{tenant}/devices/{dev}/claim", headers=bearer(token))
    assert r.status_code == 202
    op = r.json()
    assert set(op) == OPERATION_KEYS
    assert op["OperationType"] == 0 and op["State"] in (0, 1) and op["Error"] is None
    assert op["CompletedDateUTC"] is None and op["TenantId"] == tenant
    base = f"{server.base_url}/v2/tenants/{tenant}"
    assert r.headers["Location"] == f"{base}/operations/{op['OperationId']}"
    assert op["ResourceLocation"] == f"{base}/devices/{dev.upper()}"
    assert op["DetailsLocation"] == f"{base}/operations/{op['OperationId']}/details"
    done = finish(client, r.headers["Location"], token)
    assert done["State"] == 2 and done["Error"] is None
    assert done["StartedDateUTC"].endswith("Z") and done["CompletedDateUTC"].endswith("Z")
    got = client.get(done["ResourceLocation"], headers=bearer(token))
    assert got.status_code == 200
    assert set(got.json()) == DEVICE_V2
    assert got.json()["DeviceId"] == dev.upper() and got.json()["ChipSku"] == 0
    assert got.json()["TenantId"] == tenant
    assert all(got.json()[k] is None for k in DEVICE_V2 - {"DeviceId", "TenantId", "ChipSku"})
    again = client.put(f"/v2/tenants/{tenant}/devices/{dev.upper()}/claim", headers=bearer(token))
    assert finish(client, again.headers["Location"], token)["State"] == 2  # same tenant: no change


def test_conflict_fails_a_single_claim_and_bulk_completes_with_errors_with_details(
    server: ServerProcess, client: httpx.Client
) -> None:
    mine, token = new_tenant(server, "mine")
    theirs, their_token = new_tenant(server, "theirs")
    taken = device()
    r = client.put(f"/v2/tenants/{theirs}/devices/{taken}/claim", headers=bearer(their_token))
    finish(client, r.headers["Location"], their_token)

    r = client.put(f"/v2/tenants/{mine}/devices/{taken}/claim", headers=bearer(token))
    failed = finish(client, r.headers["Location"], token)
    assert failed["State"] == 3 and failed["Error"]["Code"] == 7 and failed["Error"]["Message"]

    free = [device(), device()]
    r = client.put(f"/v2/tenants/{mine}/devices", headers=bearer(token), json=[free[0], taken, free[1]])
    assert r.status_code == 202 and r.json()["OperationType"] == 11
    assert r.json()["ResourceLocation"] == f"{server.base_url}/v2/tenants/{mine}/devices"
    bulk = finish(client, r.headers["Location"], token)
    assert bulk["State"] == 4 and bulk["Error"]["Code"] == 7
    details = client.get(bulk["DetailsLocation"], headers=bearer(token)).json()
    assert [(i["DeviceId"], i["State"]) for i in details["Items"]] == [
        (free[0].upper(), 2),
        (taken.upper(), 3),
        (free[1].upper(), 2),
    ]
    assert details["Items"][1]["Error"]["Code"] == 7
    theirs_now = client.get(f"/v2/tenants/{theirs}/devices/{taken}", headers=bearer(their_token))
    assert theirs_now.status_code == 200


def test_paging_1000_devices_with_continuation_and_the_1001_limit(
    server: ServerProcess, client: httpx.Client
) -> None:
    tenant, token = new_tenant(server, "fleet")
    devices = [device() for _ in range(1000)]
    r = client.put(f"/v2/tenants/{tenant}/devices", headers=bearer(token), json=devices)
    assert r.status_code == 202
    assert finish(client, r.headers["Location"], token)["State"] == 2
    seen: list[str] = []
    token_header: str | None = None
    pages = 0
    while True:
        headers = bearer(token) | ({"Sphere-Continuation": token_header} if token_header else {})
        page = client.get(f"/v2/tenants/{tenant}/devices", params={"maxPageSize": 300}, headers=headers)
        assert page.status_code == 200
        body = page.json()
        assert set(body) == {"Items", "ContinuationToken"}
        seen += [d["DeviceId"] for d in body["Items"]]
        pages += 1
        token_header = body["ContinuationToken"]
        if token_header is None:
            break
    assert pages == 4 and seen == sorted(d.upper() for d in devices)

    too_many = client.put(f"/v2/tenants/{tenant}/devices", headers=bearer(token), json=[*devices, device()])
    assert_error_array(too_many, 400, "TooManyDevices")


def test_each_refusal_answers_with_the_error_array(server: ServerProcess, client: httpx.Client) -> None:
    tenant, token = new_tenant(server, "refusals")
    other, _ = new_tenant(server, "other")
    root = f"/v2/tenants/{tenant}"
    json_headers = bearer(token) | {"Content-Type": "application/json"}
    assert_error_array(
        client.put(f"{root}/devices", headers=json_headers, content=b"[oops"), 400, "InvalidJson"
    )
    assert_error_array(
        client.put(f"{root}/devices", headers=bearer(token), json=["abc"]), 400, "InvalidDeviceId"
    )
    assert_error_array(
        client.put(f"{root}/devices/{'z' * 128}/claim", headers=bearer(token)), 400, "InvalidDeviceId"
    )
    big = b"[" + b" " * (256 * 1024) + b"]"
    assert_error_array(
        client.put(f"{root}/devices", headers=json_headers, content=big), 400, "RequestBodyTooLarge"
    )
    missing = client.get(f"{root}/devices")
    assert_error_array(missing, 401, "Unauthorized")
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert_error_array(client.get(f"/v2/tenants/{other}/devices", headers=bearer(token)), 403, "Forbidden")
    assert_error_array(
        client.get(f"/v2/tenants/{uuid.uuid4()}/devices", headers=bearer(token)), 403, "Forbidden"
    )
    assert_error_array(
        client.get(f"{root}/operations/{uuid.uuid4()}", headers=bearer(token)), 404, "OperationNotFound"
    )
    assert_error_array(client.get(f"{root}/devices/{device()}", headers=bearer(token)), 404, "DeviceNotFound")


def test_cli_release_is_a_device_unclaim_operation_and_token_rotation_revokes(
    server: ServerProcess, client: httpx.Client
) -> None:
    tenant, token = new_tenant(server, "ops")
    dev = device()
    r = client.put(f"/v2/tenants/{tenant}/devices/{dev}/claim", headers=bearer(token))
    finish(client, r.headers["Location"], token)
    released = json.loads(server.cli("tenant", "release", tenant, dev, "--json").stdout)
    assert released["deviceId"] == dev.upper() and released["tenantId"] == tenant
    op = client.get(
        f"/v2/tenants/{tenant}/operations/{released['operationId']}", headers=bearer(token)
    ).json()
    assert op["OperationType"] == 1 and op["State"] == 2 and op["Error"] is None
    assert client.get(f"/v2/tenants/{tenant}/devices/{dev}", headers=bearer(token)).status_code == 404
    again = server.cli("tenant", "release", tenant, dev, check=False)
    assert again.returncode == 1 and "not claimed" in again.stderr

    rotated = json.loads(server.cli("tenant", "token", "rotate", tenant, "--json").stdout)
    assert rotated["tenantId"] == tenant and rotated["token"] != token
    assert_error_array(client.get("/v2/tenants", headers=bearer(token)), 401, "Unauthorized")
    assert client.get("/v2/tenants", headers=bearer(rotated["token"])).status_code == 200
