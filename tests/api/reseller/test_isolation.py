"""Partners are isolated: another partner's customer, device or operation answers exactly as one
that does not exist (AUTHORIZATION_FAIL / 404, or the per-device equivalent), and stays untouched.
Every method needs a valid bearer token."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.reseller.conftest import Reseller, assert_error, claim, imei

METHODS = [
    "createCustomer",
    "listCustomers",
    "claimDevice",
    "claimDevicesAsync",
    "unclaimDevice",
    "unclaimDevicesAsync",
    "getOperation",
    "listOperations",
    "findDevicesByOwner",
    "findDevicesByDeviceIdentifier",
]


def outcome(r: Any) -> tuple[int, str, str]:
    """What a caller can tell from an error: status, code, detail (errorId is always fresh)."""
    error = r.json()["error"]
    return r.status_code, error["code"], error["vendorMsg"]


def masked(text: str, *ids: str) -> str:
    """``text`` with the ids it names replaced, to compare two answers about different ids."""
    for i in ids:
        text = text.replace(i, "ID")
    return text


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer not-a-token", "Basic dXNlcjpwdw==", "Bearer ", "bearer"]
)
async def test_every_method_refuses_a_missing_or_invalid_token(
    reseller: Reseller, method: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    r = await reseller.api.http.post(f"/reseller/v1/{method}", json={"companyName": "x"}, headers=headers)
    assert_error(r, 403, "AUTHORIZATION_FAIL")
    assert (await reseller.ok("listCustomers"))["totalCount"] == 0


async def test_a_rotated_token_stops_working_at_once(reseller: Reseller) -> None:
    old = reseller.token
    reseller.token = await reseller.api.ctx.claims.rotate_token(reseller.partner.id)
    assert_error(await reseller.call("listCustomers", {}, token=old), 403, "AUTHORIZATION_FAIL")
    await reseller.ok("listCustomers")


async def test_another_partners_customer_reads_as_one_that_does_not_exist(
    reseller: Reseller, other: Reseller
) -> None:
    mine = await reseller.customer("mine")
    theirs = (await other.customer("theirs"))["companyReference"]
    missing = {"companyId": "424242", "vendor": "GOOGLE"}
    ident = {"imei": imei(1), "manufacturer": "Google"}

    def same(a: Any, b: Any) -> None:
        assert outcome(a)[:2] == outcome(b)[:2]
        assert masked(a.json()["error"]["vendorMsg"], theirs["companyId"]) == masked(
            b.json()["error"]["vendorMsg"], "424242"
        )

    for ref in (theirs, missing):
        assert_error(
            await reseller.call("claimDevice", {"deviceIdentifier": ident, "customer": ref}),
            404,
            "INVALID_CUSTOMER_ID",
        )
        assert_error(
            await reseller.call("findDevicesByOwner", {"customers": [ref]}), 404, "AUTHORIZATION_FAIL"
        )
        [op] = (
            await reseller.ok("claimDevicesAsync", {"claims": [{"deviceIdentifier": ident, "customer": ref}]})
        )["operations"]
        assert op["operationId"] == "" and op["deviceErrors"][0]["error"]["code"] == "INVALID_CUSTOMER_ID"
    same(
        await reseller.call("claimDevice", {"deviceIdentifier": ident, "customer": theirs}),
        await reseller.call("claimDevice", {"deviceIdentifier": ident, "customer": missing}),
    )
    same(
        await reseller.call("findDevicesByOwner", {"customers": [theirs]}),
        await reseller.call("findDevicesByOwner", {"customers": [missing]}),
    )
    # in a request that also names one of mine, theirs is a per-device INVALID_CUSTOMER_ID
    [op] = await reseller.run(
        "claimDevicesAsync", {"claims": [claim(mine, 2), {"deviceIdentifier": ident, "customer": theirs}]}
    )
    assert [e["error"]["code"] for e in op["deviceErrors"]] == ["INVALID_CUSTOMER_ID"]
    listed = await reseller.ok("listCustomers")
    assert [c["companyReference"] for c in listed["customers"]] == [mine["companyReference"]]
    assert (await other.ok("findDevicesByOwner", {"customers": [theirs]}))["totalCount"] == 0


async def test_another_partners_samsung_customer_cannot_scope_an_unclaim(
    reseller: Reseller, other: Reseller
) -> None:
    theirs = (await other.customer("theirs", "SAMSUNG"))["companyReference"]["companyId"]
    body = {"deviceId": "samsung/1", "vendorParams": {"customerId": theirs}}
    assert_error(await reseller.call("unclaimDevice", body), 404, "INVALID_CUSTOMER_ID")


async def test_another_partners_device_reads_as_one_that_does_not_exist(
    reseller: Reseller, other: Reseller
) -> None:
    theirs = await other.customer("theirs")
    device_id = (await other.ok("claimDevice", claim(theirs, 1)))["deviceId"]
    number = device_id.split("/")[1]
    mine = await reseller.customer("mine")
    missing_id = f"google/{int(number) + 1000}"

    by_id = await reseller.call("unclaimDevice", {"deviceId": device_id})
    assert_error(by_id, 404, "AUTHORIZATION_FAIL")
    assert outcome(by_id) == outcome(await reseller.call("unclaimDevice", {"deviceId": missing_id}))
    by_identifier = await reseller.call(
        "unclaimDevice", {"deviceIdentifier": {"imei": imei(1), "manufacturer": "Google"}}
    )
    unknown = await reseller.call(
        "unclaimDevice", {"deviceIdentifier": {"imei": imei(2), "manufacturer": "Google"}}
    )
    assert outcome(by_identifier) == outcome(unknown) == (404, "AUTHORIZATION_FAIL", outcome(unknown)[2])

    [op] = await reseller.run(
        "unclaimDevicesAsync", {"unclaims": [{"deviceId": device_id}, {"deviceId": missing_id}]}
    )
    assert [e["error"]["code"] for e in op["deviceErrors"]] == ["AUTHORIZATION_FAIL"] * 2
    assert op["deviceErrors"][0]["error"]["vendorMsg"] == op["deviceErrors"][1]["error"]["vendorMsg"]
    assert op["deviceErrors"][0]["error"]["vendorParams"] == {}

    found = await reseller.ok("findDevicesByDeviceIdentifier", {"deviceIdentifier": {"imei": imei(1)}})
    assert found == {"devices": [], "totalCount": 0, "nextPageToken": "", "vendorParams": {}}
    # claiming it is refused (it has an owner), without naming the owner or the device
    error = assert_error(await reseller.call("claimDevice", claim(mine, 1)), 409, "AUTHORIZATION_FAIL")
    assert error["vendorParams"] == {} and number not in error["vendorMsg"]
    # and it is still theirs
    owned = await other.ok("findDevicesByOwner", {"customers": [theirs["companyReference"]]})
    assert [d["deviceId"] for d in owned["devices"]] == [device_id]


async def test_another_partners_operation_reads_as_one_that_does_not_exist(
    reseller: Reseller, other: Reseller
) -> None:
    theirs = await other.customer("theirs")
    [op] = await other.run("claimDevicesAsync", {"claims": [claim(theirs, 1)]})
    number = int(op["operationId"].split("/")[1])
    r = await reseller.call("getOperation", {"operationId": op["operationId"]})
    missing = await reseller.call("getOperation", {"operationId": f"google/{number + 1}"})
    assert_error(r, 404, "AUTHORIZATION_FAIL")
    assert outcome(r)[:2] == outcome(missing)[:2]
    assert masked(outcome(r)[2], str(number)) == masked(outcome(missing)[2], str(number + 1))
    assert (await reseller.ok("listOperations"))["totalCount"] == 0
    assert (await other.ok("listOperations"))["totalCount"] == 1
