"""claimDevice and unclaimDevice: one device, its failure as the call's error with the library's code."""

from __future__ import annotations

from typing import Any

import pytest

from provisiond.domain.device_identifiers import DEFAULT_MANUFACTURERS, ManufacturerRules
from tests.api.reseller.conftest import Reseller, assert_error, claim, imei


async def owned(reseller: Reseller, customer: dict[str, Any]) -> list[dict[str, Any]]:
    page = await reseller.ok("findDevicesByOwner", {"customers": [customer["companyReference"]]})
    devices: list[dict[str, Any]] = page["devices"]
    return devices


async def test_claim_device_answers_a_google_prefixed_device_id_and_the_device_is_found(
    reseller: Reseller,
) -> None:
    customer = await reseller.customer()
    body = {**claim(customer, 1), "orderNumber": "PO-7", "vendorParams": {"note": "first"}}
    answer = await reseller.ok("claimDevice", body)
    assert answer["deviceId"].startswith("google/") and answer["vendorParams"] == {}
    [device] = await owned(reseller, customer)
    assert device == {
        "deviceId": answer["deviceId"],
        "deviceIdentifier": {"imei": imei(1), "manufacturer": "Google"},
        "customer": customer["companyReference"],
        "orderNumber": "PO-7",
        "vendorParams": {"note": "first"},
    }


async def test_claiming_again_for_the_same_customer_is_duplicate_device_naming_the_device(
    reseller: Reseller,
) -> None:
    customer = await reseller.customer()
    first = await reseller.ok("claimDevice", claim(customer, 1))
    error = assert_error(await reseller.call("claimDevice", claim(customer, 1)), 409, "DUPLICATE_DEVICE")
    assert error["vendorParams"] == {"deviceId": first["deviceId"]}


async def test_claiming_a_device_another_customer_holds_is_authorization_fail_409(reseller: Reseller) -> None:
    first, second = await reseller.customer("one"), await reseller.customer("two")
    await reseller.ok("claimDevice", claim(first, 1))
    error = assert_error(await reseller.call("claimDevice", claim(second, 1)), 409, "AUTHORIZATION_FAIL")
    assert error["vendorParams"] == {}
    assert await owned(reseller, second) == []


@pytest.mark.parametrize(
    ("identifier", "code"),
    [
        ({"imei": "123456789012345", "manufacturer": "Google"}, "INVALID_DEVICE_IMEI"),
        ({"imei": "12345", "manufacturer": "Google"}, "INVALID_DEVICE_IMEI"),
        ({"meid": "XYZ", "manufacturer": "Google"}, "INVALID_DEVICE_MEID"),
        ({"meid": "A00000000000001", "manufacturer": "Google"}, "INVALID_DEVICE_MEID"),
        ({"serialNumber": " S1", "manufacturer": "Google", "model": "Pixel 8"}, "INVALID_DEVICE_SERIAL"),
        ({"imei": "123456789012347"}, "INVALID_IDENTIFIER_SET"),
        ({"serialNumber": "S1", "manufacturer": "Google"}, "INVALID_IDENTIFIER_SET"),
        ({}, "INVALID_IDENTIFIER_SET"),
        ({"imei": "123456789012347", "manufacturer": "Nobody Inc"}, "INVALID_MANUFACTURER"),
        ({"serialNumber": "S1", "manufacturer": "Google", "model": "Pixel 1"}, "INVALID_MODEL"),
    ],
)
async def test_each_identifier_fault_has_its_error_code_and_writes_nothing(
    reseller: Reseller, identifier: dict[str, str], code: str
) -> None:
    """INVALID_MODEL arises where a model list is configured (here: Google makes only the Pixel 8)."""
    rules = ManufacturerRules(DEFAULT_MANUFACTURERS, {"Google": ["Pixel 8"]})
    reseller.api.ctx.claims.rules = rules
    customer = await reseller.customer()
    body = {"deviceIdentifier": identifier, "customer": customer["companyReference"]}
    error = assert_error(await reseller.call("claimDevice", body), 400, code)
    assert error["vendorMsg"]
    assert await owned(reseller, customer) == []


async def test_a_claim_without_a_device_identifier_is_invalid_identifier_set(reseller: Reseller) -> None:
    customer = await reseller.customer()
    body = {"customer": customer["companyReference"]}
    assert_error(await reseller.call("claimDevice", body), 400, "INVALID_IDENTIFIER_SET")


@pytest.mark.parametrize(
    ("customer", "status"),
    [
        (None, 400),
        ({"vendor": "GOOGLE"}, 400),
        ({"companyId": "not-a-number", "vendor": "GOOGLE"}, 400),
        ({"companyId": "-5"}, 400),
        ({"companyId": "424242"}, 404),
        ({"companyId": 424242, "vendor": "GOOGLE"}, 404),
    ],
)
async def test_a_missing_or_malformed_customer_is_400_an_unknown_one_404_invalid_customer_id(
    reseller: Reseller, customer: dict[str, Any] | None, status: int
) -> None:
    body = {"deviceIdentifier": {"imei": imei(1), "manufacturer": "Google"}, "customer": customer}
    assert_error(await reseller.call("claimDevice", body), status, "INVALID_CUSTOMER_ID")


async def test_a_reference_whose_vendor_contradicts_the_customer_is_invalid_customer_id(
    reseller: Reseller,
) -> None:
    samsung = await reseller.customer("s", "SAMSUNG")
    ref = {**samsung["companyReference"], "vendor": "GOOGLE"}
    body = {"deviceIdentifier": {"imei": imei(1), "manufacturer": "Google"}, "customer": ref}
    assert_error(await reseller.call("claimDevice", body), 404, "INVALID_CUSTOMER_ID")


async def test_a_company_id_sent_as_a_json_number_is_accepted(reseller: Reseller) -> None:
    customer = await reseller.customer()
    ref = {"companyId": int(customer["companyReference"]["companyId"]), "vendor": "google"}
    answer = await reseller.ok(
        "claimDevice", {"deviceIdentifier": {"imei": imei(1), "manufacturer": "Google"}, "customer": ref}
    )
    assert answer["deviceId"].startswith("google/")


async def test_unclaim_device_by_device_id_frees_the_device(reseller: Reseller) -> None:
    customer = await reseller.customer()
    device_id = (await reseller.ok("claimDevice", claim(customer, 1)))["deviceId"]
    assert await reseller.ok("unclaimDevice", {"deviceId": device_id}) == {
        "deviceId": device_id,
        "vendorParams": {},
    }
    assert await owned(reseller, customer) == []
    # a second unclaim finds nothing of the caller's to unclaim
    assert_error(await reseller.call("unclaimDevice", {"deviceId": device_id}), 404, "AUTHORIZATION_FAIL")
    # and the device can be claimed again, as the same record
    assert (await reseller.ok("claimDevice", claim(customer, 1)))["deviceId"] == device_id


async def test_unclaim_device_by_identifier(reseller: Reseller) -> None:
    customer = await reseller.customer()
    device_id = (await reseller.ok("claimDevice", claim(customer, 1)))["deviceId"]
    body = {"deviceIdentifier": {"imei": imei(1), "manufacturer": "google"}}
    assert (await reseller.ok("unclaimDevice", body))["deviceId"] == device_id
    assert await owned(reseller, customer) == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"deviceId": "12345"}, 400, "INVALID_DEVICE_ID"),
        ({"deviceId": "apple/12345"}, 400, "INVALID_DEVICE_ID"),
        ({"deviceId": "google/abc"}, 400, "INVALID_DEVICE_ID"),
        ({"deviceId": ""}, 400, "INVALID_DEVICE_ID"),
        ({}, 400, "INVALID_IDENTIFIER_SET"),
        ({"deviceIdentifier": {"imei": "123456789012347"}}, 400, "INVALID_IDENTIFIER_SET"),
        ({"deviceIdentifier": {"imei": "1", "manufacturer": "Google"}}, 400, "INVALID_DEVICE_IMEI"),
        ({"deviceId": "google/987654321"}, 404, "AUTHORIZATION_FAIL"),
        (
            {"deviceIdentifier": {"imei": "123456789012347", "manufacturer": "Google"}},
            404,
            "AUTHORIZATION_FAIL",
        ),
    ],
)
async def test_unclaim_device_answers_malformed_input_400_and_devices_not_yours_404(
    reseller: Reseller, body: dict[str, Any], status: int, code: str
) -> None:
    assert_error(await reseller.call("unclaimDevice", body), status, code)


async def test_unclaim_naming_two_different_devices_is_invalid_identifier_set(reseller: Reseller) -> None:
    customer = await reseller.customer()
    first = (await reseller.ok("claimDevice", claim(customer, 1)))["deviceId"]
    await reseller.ok("claimDevice", claim(customer, 2))
    body = {"deviceId": first, "deviceIdentifier": {"imei": imei(2), "manufacturer": "Google"}}
    assert_error(await reseller.call("unclaimDevice", body), 400, "INVALID_IDENTIFIER_SET")
    assert len(await owned(reseller, customer)) == 2
