"""Refusals: the error array for bad bodies and ids (400), no token (401), another tenant's path
(403), unknown operations and routes (404); a refused claim writes nothing."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from provisiond.store.tables import operations, sphere_devices
from tests.api.sphere.conftest import SphereApi, assert_sphere_error, device_id


async def nothing_written(sphere: SphereApi) -> bool:
    async with sphere.app.db.read() as conn:
        ops = (await conn.execute(select(func.count()).select_from(operations))).scalar_one()
        devices = (await conn.execute(select(func.count()).select_from(sphere_devices))).scalar_one()
    return ops == 0 and devices == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(b"[not json", "InvalidJson", id="malformed"),
        pytest.param(b"\xff\xfe", "InvalidJson", id="not-utf8"),
        pytest.param(b"", "InvalidDeviceList", id="empty-body"),
        pytest.param(b"[]", "InvalidDeviceList", id="empty-array"),
        pytest.param(b'{"DeviceIds": []}', "InvalidDeviceList", id="object"),
        pytest.param(b'"' + b"0" * 128 + b'"', "InvalidDeviceList", id="bare-string"),
        pytest.param(b"null", "InvalidDeviceList", id="null"),
        pytest.param(b"[1, 2]", "InvalidDeviceId", id="numbers"),
        pytest.param(b'["' + b"0" * 128 + b'", null]', "InvalidDeviceId", id="null-item"),
        pytest.param(b'["' + b"0" * 127 + b'"]', "InvalidDeviceId", id="127-chars"),
        pytest.param(b'["' + b"a-" * 64 + b'"]', "InvalidDeviceId", id="public-pattern-but-not-hex"),
        pytest.param(b'["' + b"0" * 128 + b'", "xyz"]', "InvalidDeviceId", id="one-bad-among-good"),
    ],
)
async def test_a_bad_bulk_body_is_a_400_and_writes_nothing(sphere: SphereApi, body: bytes, code: str) -> None:
    r = await sphere.call(
        "PUT", f"{sphere.root}/devices", content=body, headers={"Content-Type": "application/json"}
    )
    assert_sphere_error(r, 400, code)
    assert await nothing_written(sphere)


async def test_more_than_1000_ids_is_a_400_and_writes_nothing(sphere: SphereApi) -> None:
    r = await sphere.call("PUT", f"{sphere.root}/devices", json=[device_id(i) for i in range(1001)])
    assert_sphere_error(r, 400, "TooManyDevices")
    assert await nothing_written(sphere)


async def test_a_body_over_256_kib_is_a_400_before_parsing(sphere: SphereApi) -> None:
    body = b"[" + b" " * (256 * 1024) + b"]"
    r = await sphere.call(
        "PUT", f"{sphere.root}/devices", content=body, headers={"Content-Type": "application/json"}
    )
    assert_sphere_error(r, 400, "RequestBodyTooLarge")
    assert await nothing_written(sphere)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("0" * 127, id="127-chars"),
        pytest.param("0" * 129, id="129-chars"),
        pytest.param("g" * 128, id="not-hex"),
        pytest.param("a-" * 64, id="public-pattern-but-not-hex"),
        pytest.param("é" * 128, id="non-ascii"),
    ],
)
async def test_claiming_a_malformed_device_id_is_a_400_and_writes_nothing(
    sphere: SphereApi, bad: str
) -> None:
    r = await sphere.call("PUT", f"{sphere.root}/devices/{bad}/claim")
    assert_sphere_error(r, 400, "InvalidDeviceId")
    assert await nothing_written(sphere)


def _endpoints(sphere: SphereApi, tenant: str) -> list[tuple[str, str]]:
    root = f"/v2/tenants/{tenant}"
    op = uuid.uuid4()
    return [
        ("PUT", f"{root}/devices/{device_id(1)}/claim"),
        ("PUT", f"{root}/devices"),
        ("GET", f"{root}/devices"),
        ("GET", f"{root}/devices/{device_id(1)}"),
        ("GET", f"{root}/operations/{op}"),
        ("GET", f"{root}/operations/{op}/details"),
    ]


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param(None, id="missing"),
        pytest.param("Bearer", id="empty-bearer"),
        pytest.param("Bearer not-a-token", id="unknown-token"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic"),
    ],
)
async def test_every_endpoint_refuses_a_missing_or_unknown_token_with_401(
    sphere: SphereApi, auth: str | None
) -> None:
    headers = {"Authorization": auth} if auth else {}
    for method, path in [*_endpoints(sphere, str(sphere.tenant.id)), ("GET", "/v2/tenants")]:
        body = [device_id(1)] if path.endswith("/devices") and method == "PUT" else None
        r = await sphere.call(method, path, json=body, headers=headers, bearer=None)
        assert_sphere_error(r, 401, "Unauthorized")
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert await nothing_written(sphere)


@pytest.mark.parametrize(
    "tenant",
    [
        pytest.param("other", id="another-tenant"),
        pytest.param(str(uuid.UUID(int=7)), id="no-such-tenant"),
        pytest.param("not-a-uuid", id="malformed-tenant"),
    ],
)
async def test_every_endpoint_refuses_a_tenant_that_is_not_the_tokens_with_403(
    sphere: SphereApi, tenant: str
) -> None:
    path_tenant = str(sphere.other.id) if tenant == "other" else tenant
    for method, path in _endpoints(sphere, path_tenant):
        body = [device_id(1)] if path.endswith("/devices") and method == "PUT" else None
        r = await sphere.call(method, path, json=body)
        assert_sphere_error(r, 403, "Forbidden")
    assert await nothing_written(sphere)


async def test_a_403_comes_before_the_body_is_looked_at(sphere: SphereApi) -> None:
    r = await sphere.call(
        "PUT",
        f"/v2/tenants/{sphere.other.id}/devices",
        content=b"[garbage",
        headers={"Content-Type": "application/json"},
    )
    assert_sphere_error(r, 403, "Forbidden")


@pytest.mark.parametrize("op", ["caba02c9-95e8-48dd-8bce-438b9870e0e3", "not-a-uuid", "1234"])
async def test_an_unknown_operation_is_a_404(sphere: SphereApi, op: str) -> None:
    for suffix in ("", "/details"):
        r = await sphere.call("GET", f"{sphere.root}/operations/{op}{suffix}")
        assert_sphere_error(r, 404, "OperationNotFound")


async def test_unknown_routes_and_methods_under_v2_tenants_answer_in_the_sphere_format(
    sphere: SphereApi,
) -> None:
    assert_sphere_error(await sphere.call("GET", f"{sphere.root}/products/x/devices"), 404, "NotFound")
    assert_sphere_error(await sphere.call("GET", f"{sphere.root}/nothing"), 404, "NotFound")
    assert_sphere_error(
        await sphere.call("POST", f"{sphere.root}/devices/{device_id(1)}/claim"), 405, "MethodNotAllowed"
    )
    assert_sphere_error(await sphere.call("DELETE", f"{sphere.root}/devices"), 405, "MethodNotAllowed")
