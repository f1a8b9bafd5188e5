"""The Samsung rules: no synchronous claim, one customer per async request, unclaims name their
customer in vendorParams.customerId, and any one of imei / serialNumber / meid names a device."""

from __future__ import annotations

from typing import Any

from tests.api.reseller.conftest import Reseller, assert_error, claim, imei


def samsung_claim(customer: dict[str, Any], n: int) -> dict[str, Any]:
    return {"deviceIdentifier": {"imei": imei(n, "49")}, "customer": customer["companyReference"]}


async def owned(reseller: Reseller, customer: dict[str, Any]) -> list[dict[str, Any]]:
    page = await reseller.ok("findDevicesByOwner", {"customers": [customer["companyReference"]]})
    devices: list[dict[str, Any]] = page["devices"]
    return devices


async def test_a_synchronous_samsung_claim_is_not_implemented_and_writes_nothing(reseller: Reseller) -> None:
    samsung = await reseller.customer("s", "SAMSUNG")
    assert_error(await reseller.call("claimDevice", samsung_claim(samsung, 1)), 501, "NOT_IMPLEMENTED")
    unknown = {
        "deviceIdentifier": {"imei": imei(1)},
        "customer": {"companyId": "424242", "vendor": "Samsung"},
    }
    assert_error(await reseller.call("claimDevice", unknown), 501, "NOT_IMPLEMENTED")
    assert await owned(reseller, samsung) == []


async def test_samsung_devices_need_only_one_hardware_id_and_carry_the_samsung_prefix(
    reseller: Reseller,
) -> None:
    samsung = await reseller.customer("s", "SAMSUNG")
    ref = samsung["companyReference"]
    claims = [
        {"deviceIdentifier": {"imei": imei(1, "49")}, "customer": ref},
        {"deviceIdentifier": {"serialNumber": "R58M123"}, "customer": ref},
        {"deviceIdentifier": {"meid": "A0000000000001"}, "customer": ref},
        {"deviceIdentifier": {"model": "SM-G991B"}, "customer": ref},
    ]
    [op] = await reseller.run("claimDevicesAsync", {"claims": claims})
    assert op["operationId"].startswith("samsung/") and op["state"] == "COMPLETE_WITH_ERRORS"
    assert [e["error"]["code"] for e in op["deviceErrors"]] == ["INVALID_IDENTIFIER_SET"]
    devices = await owned(reseller, samsung)
    assert len(devices) == 3 and all(d["deviceId"].startswith("samsung/") for d in devices)
    assert all(d["customer"] == ref for d in devices)


async def test_two_samsung_customers_in_one_request_fail_that_group_only(reseller: Reseller) -> None:
    """One operation per vendor in order of first appearance; the Samsung one fails before it starts
    with INTERNAL_SERVER_ERROR for each of its devices, the Google one runs."""
    google = await reseller.customer("g")
    first, second = await reseller.customer("s1", "SAMSUNG"), await reseller.customer("s2", "SAMSUNG")
    claims = [samsung_claim(first, 1), claim(google, 2), samsung_claim(second, 3), claim(google, 4)]
    samsung_op, google_op = await reseller.run("claimDevicesAsync", {"claims": claims})
    assert samsung_op["operationId"] == "" and samsung_op["state"] == "FAILED"
    assert samsung_op["vendorParams"]["vendor"] == "SAMSUNG"
    assert [e["error"]["code"] for e in samsung_op["deviceErrors"]] == ["INTERNAL_SERVER_ERROR"] * 2
    assert [e["deviceIdentifier"] for e in samsung_op["deviceErrors"]] == [
        claims[0]["deviceIdentifier"],
        claims[2]["deviceIdentifier"],
    ]
    assert google_op["operationId"].startswith("google/") and google_op["state"] == "COMPLETE"
    assert await owned(reseller, first) == [] and await owned(reseller, second) == []
    assert len(await owned(reseller, google)) == 2
    assert (await reseller.ok("listOperations"))["totalCount"] == 1


async def test_one_samsung_customer_with_some_unknown_customers_runs_and_reports_them(
    reseller: Reseller,
) -> None:
    samsung = await reseller.customer("s", "SAMSUNG")
    stray = {
        "deviceIdentifier": {"imei": imei(2, "49")},
        "customer": {"companyId": "424242", "vendor": "SAMSUNG"},
    }
    [op] = await reseller.run("claimDevicesAsync", {"claims": [samsung_claim(samsung, 1), stray]})
    assert op["operationId"].startswith("samsung/")
    assert [e["error"]["code"] for e in op["deviceErrors"]] == ["INVALID_CUSTOMER_ID"]


async def test_samsung_unclaims_without_their_customer_fail_and_with_it_succeed(reseller: Reseller) -> None:
    samsung, google = await reseller.customer("s", "SAMSUNG"), await reseller.customer("g")
    await reseller.run("claimDevicesAsync", {"claims": [samsung_claim(samsung, n) for n in range(3)]})
    await reseller.ok("claimDevice", claim(google, 9))
    ids = [d["deviceId"] for d in await owned(reseller, samsung)]
    google_id = (await owned(reseller, google))[0]["deviceId"]

    # no customerId: the Samsung group fails before it starts, the Google one runs
    samsung_op, google_op = await reseller.run(
        "unclaimDevicesAsync", {"unclaims": [{"deviceId": ids[0]}, {"deviceId": google_id}]}
    )
    assert samsung_op["operationId"] == "" and samsung_op["state"] == "FAILED"
    assert [(e["deviceId"], e["error"]["code"]) for e in samsung_op["deviceErrors"]] == [
        (ids[0], "INVALID_CUSTOMER_ID")
    ]
    assert google_op["state"] == "COMPLETE" and await owned(reseller, google) == []

    for params in (
        {"customerId": "424242"},
        {"customerId": "x"},
        {"customerId": google["companyReference"]["companyId"]},
    ):
        [op] = await reseller.run(
            "unclaimDevicesAsync", {"unclaims": [{"deviceId": ids[0]}], "vendorParams": params}
        )
        assert op["state"] == "FAILED" and op["deviceErrors"][0]["error"]["code"] == "INVALID_CUSTOMER_ID"
    assert len(await owned(reseller, samsung)) == 3

    # with it: by id, and by a Samsung identifier alone (the customerId makes the request Samsung's)
    params = {"customerId": samsung["companyReference"]["companyId"]}
    unclaims = [{"deviceId": ids[0]}, {"deviceIdentifier": {"imei": imei(1, "49")}}]
    [op] = await reseller.run("unclaimDevicesAsync", {"unclaims": unclaims, "vendorParams": params})
    assert op["operationId"].startswith("samsung/") and op["state"] == "COMPLETE"
    assert [d["deviceId"] for d in await owned(reseller, samsung)] == [ids[2]]


async def test_a_synchronous_samsung_unclaim_needs_its_customer(reseller: Reseller) -> None:
    samsung, google = await reseller.customer("s", "SAMSUNG"), await reseller.customer("g")
    await reseller.run("claimDevicesAsync", {"claims": [samsung_claim(samsung, 1)]})
    [device] = await owned(reseller, samsung)
    body: dict[str, Any] = {"deviceId": device["deviceId"]}
    assert_error(await reseller.call("unclaimDevice", body), 400, "INVALID_CUSTOMER_ID")
    for customer_id, status in [
        ("abc", 400),
        ("424242", 404),
        (google["companyReference"]["companyId"], 404),
    ]:
        r = await reseller.call("unclaimDevice", {**body, "vendorParams": {"customerId": customer_id}})
        assert_error(r, status, "INVALID_CUSTOMER_ID")
    assert len(await owned(reseller, samsung)) == 1
    ok = {**body, "vendorParams": {"customerId": samsung["companyReference"]["companyId"]}}
    assert (await reseller.ok("unclaimDevice", ok))["deviceId"] == device["deviceId"]
    assert await owned(reseller, samsung) == []


async def test_vendor_params_vendor_routes_identifier_only_unclaims(reseller: Reseller) -> None:
    """Without a deviceId, vendorParams.vendor says which back end an unclaim goes to."""
    samsung = await reseller.customer("s", "SAMSUNG")
    await reseller.run("claimDevicesAsync", {"claims": [samsung_claim(samsung, 1)]})
    [op] = await reseller.run(
        "unclaimDevicesAsync",
        {"unclaims": [{"deviceIdentifier": {"imei": imei(1, "49")}}], "vendorParams": {"vendor": "samsung"}},
    )
    assert op["operationId"] == "" and op["deviceErrors"][0]["error"]["code"] == "INVALID_CUSTOMER_ID"
    [op] = await reseller.run(
        "unclaimDevicesAsync",
        {"unclaims": [{"deviceIdentifier": {"imei": imei(1, "49")}}], "vendorParams": {"vendor": "GOOGLE"}},
    )
    # Google's rules want a manufacturer beside the IMEI
    assert op["operationId"].startswith("google/")
    assert op["deviceErrors"][0]["error"]["code"] == "INVALID_IDENTIFIER_SET"
    assert_error(
        await reseller.call("unclaimDevicesAsync", {"unclaims": [], "vendorParams": {"vendor": "NOKIA"}}),
        400,
        "INVALID_PARAM_DEFAULT",
    )
