"""Listing and reading a tenant's devices: DeviceV2 bodies, paging with Sphere-Continuation."""

from __future__ import annotations

import pytest

from tests.api.sphere.conftest import DEVICE_KEYS, SphereApi, assert_sphere_error, device_id


async def test_an_empty_tenant_lists_no_devices_and_no_continuation(sphere: SphereApi) -> None:
    r = await sphere.call("GET", f"{sphere.root}/devices")
    assert r.status_code == 200
    assert r.json() == {"Items": [], "ContinuationToken": None}


async def test_paging_with_max_page_size_and_continuation_returns_every_device_once_in_order(
    sphere: SphereApi,
) -> None:
    devices = sorted(device_id().upper() for _ in range(25))
    await sphere.bulk([d.lower() for d in devices])
    seen: list[str] = []
    sizes: list[int] = []
    token: str | None = None
    while True:
        headers = {"Sphere-Continuation": token} if token else {}
        r = await sphere.call("GET", f"{sphere.root}/devices", params={"maxPageSize": "10"}, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"Items", "ContinuationToken"}
        assert all(set(item) == DEVICE_KEYS for item in body["Items"])
        seen += [item["DeviceId"] for item in body["Items"]]
        sizes.append(len(body["Items"]))
        token = body["ContinuationToken"]
        if token is None:
            break
        assert isinstance(token, str) and token
    assert sizes == [10, 10, 5]
    assert seen == devices


async def test_a_page_exactly_at_the_end_carries_a_null_continuation_token(sphere: SphereApi) -> None:
    await sphere.bulk([device_id(n) for n in range(4)])
    first = (await sphere.call("GET", f"{sphere.root}/devices", params={"maxPageSize": "2"})).json()
    second = (
        await sphere.call(
            "GET",
            f"{sphere.root}/devices",
            params={"maxPageSize": "2"},
            headers={"Sphere-Continuation": first["ContinuationToken"]},
        )
    ).json()
    assert len(second["Items"]) == 2 and second["ContinuationToken"] is None


async def test_a_page_size_over_1000_is_served_as_1000(sphere: SphereApi) -> None:
    await sphere.bulk([device_id(n) for n in range(3)])
    r = await sphere.call("GET", f"{sphere.root}/devices", params={"maxPageSize": "5000"})
    assert r.status_code == 200 and len(r.json()["Items"]) == 3


@pytest.mark.parametrize("size", ["0", "-1", "ten", "1.5", "", "٣"])
async def test_a_bad_max_page_size_is_a_400(sphere: SphereApi, size: str) -> None:
    r = await sphere.call("GET", f"{sphere.root}/devices", params={"maxPageSize": size})
    assert_sphere_error(r, 400, "InvalidPageSize")


@pytest.mark.parametrize("token", ["garbage", "AAAA", "x" * 86, "!" * 10])
async def test_a_continuation_token_we_did_not_issue_is_a_400(sphere: SphereApi, token: str) -> None:
    r = await sphere.call("GET", f"{sphere.root}/devices", headers={"Sphere-Continuation": token})
    assert_sphere_error(r, 400, "InvalidContinuationToken")


async def test_an_unknown_well_formed_device_is_not_found(sphere: SphereApi) -> None:
    r = await sphere.call("GET", f"{sphere.root}/devices/{device_id(99)}")
    assert_sphere_error(r, 404, "DeviceNotFound")


@pytest.mark.parametrize("bad", ["abc", "0" * 127, "0" * 129, "g" * 128, "-" * 128])
async def test_reading_a_malformed_device_id_is_a_400(sphere: SphereApi, bad: str) -> None:
    r = await sphere.call("GET", f"{sphere.root}/devices/{bad}")
    assert_sphere_error(r, 400, "InvalidDeviceId")
