"""Tenants: the list a token sees, token rotation, isolation between tenants, the operator's release."""

from __future__ import annotations

from tests.api.sphere.conftest import OPERATION_KEYS, SphereApi, assert_sphere_error, device_id


async def test_the_tenant_list_shows_only_the_tokens_own_tenant(sphere: SphereApi) -> None:
    r = await sphere.call("GET", "/v2/tenants")
    assert r.status_code == 200
    assert r.json() == [{"Id": str(sphere.tenant.id), "Name": "Contoso", "Roles": ["Administrator"]}]
    r = await sphere.call("GET", "/v2/tenants", bearer=sphere.other_token)
    assert [t["Id"] for t in r.json()] == [str(sphere.other.id)]


async def test_a_rotated_token_replaces_the_old_one_at_once(sphere: SphereApi) -> None:
    new = await sphere.app.ctx.sphere.rotate_token(sphere.tenant.id)
    assert_sphere_error(await sphere.call("GET", "/v2/tenants"), 401, "Unauthorized")
    r = await sphere.call("GET", "/v2/tenants", bearer=new)
    assert r.status_code == 200 and r.json()[0]["Id"] == str(sphere.tenant.id)


async def test_a_tenant_sees_none_of_another_tenants_devices_or_operations(sphere: SphereApi) -> None:
    device = device_id(1)
    theirs = await sphere.claim(device, as_other=True)
    own_root = sphere.root
    assert_sphere_error(await sphere.call("GET", f"{own_root}/devices/{device}"), 404, "DeviceNotFound")
    assert await sphere.device_ids() == []
    for suffix in ("", "/details"):
        r = await sphere.call("GET", f"{own_root}/operations/{theirs['OperationId']}{suffix}")
        assert_sphere_error(r, 404, "OperationNotFound")
        r = await sphere.call(
            "GET", f"/v2/tenants/{sphere.other.id}/operations/{theirs['OperationId']}{suffix}"
        )
        assert_sphere_error(r, 403, "Forbidden")


async def test_a_partner_token_of_the_zero_touch_dialects_is_no_tenant_token(sphere: SphereApi) -> None:
    _, partner_token = await sphere.app.ctx.claims.create_partner("reseller")
    assert_sphere_error(await sphere.call("GET", "/v2/tenants", bearer=partner_token), 401, "Unauthorized")


async def test_a_release_is_a_completed_device_unclaim_operation_and_frees_the_device(
    sphere: SphereApi,
) -> None:
    device = device_id(2)
    await sphere.claim(device)
    released = await sphere.app.ctx.sphere.release(sphere.tenant.id, device.upper())
    op = await sphere.operation({"TenantId": str(sphere.tenant.id), "OperationId": str(released.id)})
    assert set(op) == OPERATION_KEYS
    assert op["OperationType"] == 1 and op["State"] == 2 and op["Error"] is None
    assert op["StartedDateUTC"] is not None and op["CompletedDateUTC"] is not None
    assert op["ResourceLocation"].endswith(f"/devices/{device.upper()}")
    assert await sphere.device_ids() == []
    again = await sphere.claim(device, as_other=True)  # a released device is claimable by anyone
    assert again["State"] == 2
    assert await sphere.device_ids(as_other=True) == [device.upper()]
