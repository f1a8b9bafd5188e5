"""What fails a whole request, writing nothing: malformed JSON or types, more than 100,000 devices,
a body over 32 MiB. Unknown methods are NOT_IMPLEMENTED. Never a bare 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.api.reseller.conftest import Reseller, assert_error, claim, imei
from tests.api.reseller.test_isolation import METHODS

MIB = 1024 * 1024


async def nothing_written(reseller: Reseller, customer: dict[str, Any] | None = None) -> None:
    assert (await reseller.ok("listOperations"))["totalCount"] == 0
    if customer is not None:
        page = await reseller.ok("findDevicesByOwner", {"customers": [customer["companyReference"]]})
        assert page["totalCount"] == 0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "body", [b"{not json", b'{"claims": [', b"\xff\xfe", b"[]", b'"text"', b"42", b"null"]
)
async def test_malformed_json_is_invalid_param_default_for_every_method(
    reseller: Reseller, method: str, body: bytes
) -> None:
    error = assert_error(await reseller.call(method, content=body), 400, "INVALID_PARAM_DEFAULT")
    assert error["vendorMsg"].startswith("malformed request body")
    await nothing_written(reseller)


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("claimDevicesAsync", {}),
        ("claimDevicesAsync", {"claims": "all"}),
        ("claimDevicesAsync", {"claims": [{"deviceIdentifier": {"imei": 490154203237518}}]}),
        ("claimDevicesAsync", {"claims": [{"deviceIdentifier": "490154203237518"}]}),
        ("claimDevicesAsync", {"claims": [{"orderNumber": 7}]}),
        ("claimDevicesAsync", {"claims": [{"vendorParams": {"n": 1}}]}),
        ("claimDevicesAsync", {"claims": [{"customer": {"companyId": True}}]}),
        ("unclaimDevicesAsync", {}),
        ("unclaimDevicesAsync", {"unclaims": [{"deviceId": 5}]}),
        ("claimDevice", {"deviceIdentifier": []}),
        ("createCustomer", {"companyName": ["Acme"]}),
        ("listCustomers", {"pageSize": "10"}),
        ("listCustomers", {"pageSize": 1.5}),
        ("listOperations", {"state": 3}),
        ("getOperation", {"operationId": 12345}),
        ("findDevicesByOwner", {"customers": {"companyId": "1"}}),
        ("findDevicesByDeviceIdentifier", {"deviceIdentifier": {"model": None, "imei": 5}}),
    ],
)
async def test_wrong_json_types_are_invalid_param_default_naming_the_field(
    reseller: Reseller, method: str, body: dict[str, Any]
) -> None:
    error = assert_error(await reseller.call(method, body), 400, "INVALID_PARAM_DEFAULT")
    assert "$" in error["vendorMsg"] or "missing required field" in error["vendorMsg"]
    await nothing_written(reseller)


async def test_one_badly_typed_claim_among_a_thousand_fails_the_request_and_writes_nothing(
    reseller: Reseller,
) -> None:
    customer = await reseller.customer()
    claims: list[dict[str, Any]] = [claim(customer, n) for n in range(1000)]
    claims[999] = {"deviceIdentifier": {"imei": 1}, "customer": customer["companyReference"]}
    error = assert_error(
        await reseller.call("claimDevicesAsync", {"claims": claims}), 400, "INVALID_PARAM_DEFAULT"
    )
    assert "$.claims[999].deviceIdentifier.imei" in error["vendorMsg"]
    await nothing_written(reseller, customer)


async def test_an_unknown_vendor_spelling_fails_the_request(reseller: Reseller) -> None:
    customer = await reseller.customer()
    claims = [
        claim(customer, 1),
        {"deviceIdentifier": {"imei": imei(2)}, "customer": {"companyId": "1", "vendor": "Googel"}},
    ]
    assert_error(await reseller.call("claimDevicesAsync", {"claims": claims}), 400, "INVALID_PARAM_DEFAULT")
    await nothing_written(reseller, customer)


def many_claims(customer: dict[str, Any], count: int) -> bytes:
    """A claimDevicesAsync body with ``count`` valid, distinct claims (built as text: it is large)."""
    ref = json.dumps(customer["companyReference"])
    items = ",".join(
        f'{{"deviceIdentifier":{{"imei":"{imei(n)}","manufacturer":"Google"}},"customer":{ref}}}'
        for n in range(count)
    )
    return f'{{"claims":[{items}]}}'.encode()


async def test_more_than_100000_claims_is_device_upload_count_exceeded_with_nothing_written(
    reseller: Reseller,
) -> None:
    customer = await reseller.customer()
    r = await reseller.call("claimDevicesAsync", content=many_claims(customer, 100_001))
    error = assert_error(r, 400, "DEVICE_UPLOAD_COUNT_EXCEEDED")
    assert error["vendorParams"] == {"limit": "100000", "count": "100001"}
    await nothing_written(reseller, customer)
    found = await reseller.ok(
        "findDevicesByDeviceIdentifier", {"deviceIdentifier": {"manufacturer": "Google"}}
    )
    assert found["totalCount"] == 0


async def test_more_than_100000_unclaims_is_device_upload_count_exceeded_with_nothing_written(
    reseller: Reseller,
) -> None:
    customer = await reseller.customer()
    device_id = (await reseller.ok("claimDevice", claim(customer, 1)))["deviceId"]
    body = ('{"unclaims":[' + ",".join([f'{{"deviceId":"{device_id}"}}'] * 100_001) + "]}").encode()
    assert_error(
        await reseller.call("unclaimDevicesAsync", content=body), 400, "DEVICE_UPLOAD_COUNT_EXCEEDED"
    )
    await nothing_written(reseller)
    page = await reseller.ok("findDevicesByOwner", {"customers": [customer["companyReference"]]})
    assert [d["deviceId"] for d in page["devices"]] == [device_id]


async def test_a_body_over_32_mib_is_refused_before_it_is_parsed(reseller: Reseller) -> None:
    body = b'{"claims": [], "padding": "' + b"x" * (32 * MIB) + b'"}'
    error = assert_error(await reseller.call("claimDevicesAsync", content=body), 400, "INVALID_PARAM_DEFAULT")
    assert "larger than 33554432 bytes" in error["vendorMsg"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(33):
            yield b" " * MIB
        yield b"{}"

    r = await reseller.api.http.post(
        "/reseller/v1/listCustomers", content=chunks(), headers={"Authorization": f"Bearer {reseller.token}"}
    )
    assert_error(r, 400, "INVALID_PARAM_DEFAULT")


async def test_a_body_just_under_32_mib_is_read(reseller: Reseller) -> None:
    body = b'{"padding": "' + b"x" * (32 * MIB - 100) + b'"}'
    assert (await reseller.call("listCustomers", content=body)).status_code == 200


async def test_an_empty_body_is_the_empty_request_object(reseller: Reseller) -> None:
    r = await reseller.call("listOperations", content=b"")
    assert r.status_code == 200 and r.json()["operations"] == []


@pytest.mark.parametrize(
    ("verb", "path"),
    [
        ("POST", "/reseller/v1/deleteAllDevices"),
        ("POST", "/reseller/v1/updateClaims"),
        ("GET", "/reseller/v1/listCustomers"),
        ("PUT", "/reseller/v1/claimDevice"),
        ("POST", "/reseller/v2/listCustomers"),
        ("GET", "/reseller"),
    ],
)
async def test_unknown_methods_and_verbs_are_not_implemented(
    reseller: Reseller, verb: str, path: str
) -> None:
    headers = {"Authorization": f"Bearer {reseller.token}"}
    assert_error(await reseller.api.http.request(verb, path, headers=headers), 501, "NOT_IMPLEMENTED")


async def test_unknown_fields_are_ignored(reseller: Reseller) -> None:
    company = await reseller.ok(
        "createCustomer", {"companyName": "Acme", "ownerEmails": ["a@b.c"], "x": {"y": 1}}
    )
    assert company["companyName"] == "Acme"


async def test_an_unexpected_fault_is_internal_server_error_with_its_error_id_logged(
    reseller: Reseller, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(reseller.api.ctx.claims, "customers", broken)
    error = assert_error(await reseller.call("listCustomers", {}), 500, "INTERNAL_SERVER_ERROR")
    assert "fire" not in error["vendorMsg"]
    assert any(error["errorId"] in record.getMessage() for record in caplog.records)
