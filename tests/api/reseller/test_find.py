"""findDevicesByOwner and findDevicesByDeviceIdentifier: the caller's devices, paged, partial
identifiers; and the device record is the one every dialect shares."""

from __future__ import annotations

from typing import Any

import pytest

from provisiond.domain.claims import ClaimItem, ItemStatus, OperationKind, SectionType
from provisiond.domain.device_identifiers import DeviceIdentifier, Vendor
from tests.api.reseller.conftest import Reseller, assert_error, claim, imei


async def pages(reseller: Reseller, method: str, body: dict[str, Any], size: int) -> list[dict[str, Any]]:
    """Every page until the empty nextPageToken; checks page sizes and totalCount on the way."""
    devices: list[dict[str, Any]] = []
    token = None
    while True:
        page = await reseller.ok(method, {**body, "pageSize": size, "pageToken": token})
        assert len(page["devices"]) <= size and page["vendorParams"] == {}
        devices += page["devices"]
        token = page["nextPageToken"]
        if token == "":
            assert len(devices) == page["totalCount"]
            return devices


async def test_find_by_owner_pages_over_several_customers(reseller: Reseller) -> None:
    one, two, three = [await reseller.customer(name) for name in ("one", "two", "three")]
    owners = (one, two, three)
    await reseller.run("claimDevicesAsync", {"claims": [claim(owners[n % 3], n) for n in range(7)]})
    devices = await pages(
        reseller, "findDevicesByOwner", {"customers": [one["companyReference"], two["companyReference"]]}, 2
    )
    assert len(devices) == 5
    assert {d["customer"]["companyId"] for d in devices} == {
        one["companyReference"]["companyId"],
        two["companyReference"]["companyId"],
    }
    assert len({d["deviceId"] for d in devices}) == 5


async def test_find_by_owner_refuses_bad_customer_lists_wrong_vendors_and_foreign_tokens(
    reseller: Reseller,
) -> None:
    google = await reseller.customer()
    ref = google["companyReference"]
    assert_error(await reseller.call("findDevicesByOwner", {}), 400, "INVALID_CUSTOMER_ID")
    assert_error(await reseller.call("findDevicesByOwner", {"customers": []}), 400, "INVALID_CUSTOMER_ID")
    assert_error(
        await reseller.call("findDevicesByOwner", {"customers": [{"companyId": "x1"}]}),
        400,
        "INVALID_CUSTOMER_ID",
    )
    assert_error(
        await reseller.call("findDevicesByOwner", {"customers": [ref] * 101}), 400, "INVALID_PARAM_DEFAULT"
    )
    assert (await reseller.ok("findDevicesByOwner", {"customers": [ref] * 100}))["totalCount"] == 0
    wrong_vendor = {**ref, "vendor": "SAMSUNG"}
    assert_error(
        await reseller.call("findDevicesByOwner", {"customers": [wrong_vendor]}), 404, "AUTHORIZATION_FAIL"
    )
    token = (await reseller.ok("listCustomers", {"pageSize": 1}))["nextPageToken"] or "bGlzdEN1c3RvbWVyczox"
    r = await reseller.call("findDevicesByOwner", {"customers": [ref], "pageToken": token})
    assert_error(r, 400, "INVALID_PAGE_TOKEN")


async def test_find_by_identifier_takes_partial_identifiers(reseller: Reseller) -> None:
    customer = await reseller.customer()
    ref = customer["companyReference"]
    claims = [claim(customer, n) for n in range(5)]
    claims += [
        {
            "deviceIdentifier": {
                "serialNumber": "SER-1",
                "manufacturer": "Zebra Technologies",
                "model": "TC52",
            },
            "customer": ref,
        },
        {
            "deviceIdentifier": {
                "serialNumber": "ser-1",
                "manufacturer": "Zebra Technologies",
                "model": "TC52",
            },
            "customer": ref,
        },
        {"deviceIdentifier": {"meid": "a0000000000001", "manufacturer": "motorola"}, "customer": ref},
    ]
    [op] = await reseller.run("claimDevicesAsync", {"claims": claims})
    assert op["state"] == "COMPLETE"

    async def found(**identifier: str) -> list[dict[str, Any]]:
        return await pages(reseller, "findDevicesByDeviceIdentifier", {"deviceIdentifier": identifier}, 2)

    assert [d["deviceIdentifier"] for d in await found(imei=imei(3))] == [
        {"imei": imei(3), "manufacturer": "Google"}
    ]
    assert len(await found(manufacturer="google")) == 5  # case-folded
    assert len(await found(manufacturer="Zebra Technologies", model="tc52")) == 2
    assert [d["deviceIdentifier"]["serialNumber"] for d in await found(serialNumber="SER-1")] == [
        "SER-1"
    ]  # exact
    assert len(await found(meid="a0000000000001")) == 1  # MEIDs are stored upper-case
    assert await found(imei=imei(99)) == []
    device = (await found(imei=imei(0)))[0]
    assert (
        device["customer"] == ref
        and device["orderNumber"] is None
        and device["deviceId"].startswith("google/")
    )


@pytest.mark.parametrize("identifier", [None, {}, {"imei": "  ", "model": ""}])
async def test_find_by_identifier_needs_something_to_search_by(reseller: Reseller, identifier: Any) -> None:
    r = await reseller.call("findDevicesByDeviceIdentifier", {"deviceIdentifier": identifier})
    assert_error(r, 400, "INVALID_IDENTIFIER_SET")


async def test_a_device_claimed_here_is_the_record_the_core_and_zero_touch_see(reseller: Reseller) -> None:
    """Zero-touch reads the same core: its findByIdentifier and devices/{id} see this device."""
    customer = await reseller.customer()
    device_id = (await reseller.ok("claimDevice", {**claim(customer, 1), "orderNumber": "PO-1"}))["deviceId"]
    number = int(device_id.split("/")[1])
    claims = reseller.api.ctx.claims
    device = await claims.device(reseller.partner, number)
    assert device.identifier.imei == imei(1)
    [held] = device.claims
    assert held.customer_id == int(customer["companyReference"]["companyId"])
    assert held.section_type is SectionType.ZERO_TOUCH and held.order_number == "PO-1"
    listed, total, _ = await claims.find_by_identifier(
        reseller.partner, DeviceIdentifier(imei=imei(1)), None, 10
    )
    assert [d.id for d in listed] == [number] and total == 1


async def test_a_device_claimed_through_the_core_as_zero_touch_does_is_seen_and_unclaimed_here(
    reseller: Reseller,
) -> None:
    customer = await reseller.customer()
    claims = reseller.api.ctx.claims
    item = ClaimItem(
        DeviceIdentifier(imei=imei(5), manufacturer="Google"), int(customer["companyReference"]["companyId"])
    )
    result = await claims.apply_now(reseller.partner, OperationKind.CLAIM, Vendor.GOOGLE, item)
    assert result.status is ItemStatus.SUCCESS and result.device_id is not None
    found = await reseller.ok("findDevicesByDeviceIdentifier", {"deviceIdentifier": {"imei": imei(5)}})
    assert [d["deviceId"] for d in found["devices"]] == [f"google/{result.device_id}"]
    await reseller.ok("unclaimDevice", {"deviceId": f"google/{result.device_id}"})
    device_claims = (await claims.devices([result.device_id]))[0].claims
    assert device_claims == ()
