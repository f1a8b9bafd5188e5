"""claimDevicesAsync, unclaimDevicesAsync, getOperation, listOperations: durable operations with
per-device errors in request order, deviceId and deviceIdentifier exactly as requested."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from provisiond.domain.claims import OperationKind, UpdateItem
from provisiond.domain.device_identifiers import DeviceIdentifier, Vendor
from tests.api.reseller.conftest import Reseller, assert_error, claim, imei


async def test_claim_async_reports_each_failed_device_in_request_order(reseller: Reseller) -> None:
    customer = await reseller.customer()
    ref = customer["companyReference"]
    claims = [claim(customer, n) for n in range(10)]
    claims[2] = {"deviceIdentifier": {"imei": "12345", "manufacturer": "Google"}, "customer": ref}
    claims[4] = {"deviceIdentifier": {"imei": imei(4), "manufacturer": "Nobody Inc"}, "customer": ref}
    claims[6] = {
        "deviceIdentifier": {"imei": imei(6), "manufacturer": "Google"},
        "customer": {"companyId": "424242"},
    }
    claims[8] = {"deviceIdentifier": {"imei": imei(7), "manufacturer": "GOOGLE"}, "customer": ref}  # = item 7
    answered = (await reseller.ok("claimDevicesAsync", {"claims": claims}))["operations"]
    assert len(answered) == 1
    assert answered[0]["operationId"].startswith("google/")
    assert answered[0]["operationType"] == "CLAIM_DEVICES"
    assert answered[0]["state"] in ("IN_PROGRESS", "COMPLETE_WITH_ERRORS")
    op = await reseller.wait(answered[0]["operationId"])
    assert op["state"] == "COMPLETE_WITH_ERRORS"
    assert op["vendorParams"] == {
        "devicesCount": "10",
        "processedCount": "10",
        "successCount": "7",
        "progress": "100",
    }
    errors = op["deviceErrors"]
    assert [e["error"]["code"] for e in errors] == [
        "INVALID_DEVICE_IMEI",
        "INVALID_MANUFACTURER",
        "INVALID_CUSTOMER_ID",
        "DUPLICATE_DEVICE",
    ]
    assert [e["deviceIdentifier"] for e in errors] == [claims[i]["deviceIdentifier"] for i in (2, 4, 6, 8)]
    assert all(e["deviceId"] == "" for e in errors)  # a DeviceClaim carries no deviceId
    assert all(set(e["error"]) == {"code", "message", "vendorMsg", "errorId", "vendorParams"} for e in errors)
    assert len({e["error"]["errorId"] for e in errors}) == 4
    seven = await reseller.ok("findDevicesByDeviceIdentifier", {"deviceIdentifier": {"imei": imei(7)}})
    assert errors[3]["error"]["vendorParams"] == {"deviceId": seven["devices"][0]["deviceId"]}
    owned = await reseller.ok("findDevicesByOwner", {"customers": [ref]})
    assert owned["totalCount"] == 6  # seven successes, one of them the duplicate of item 7


async def test_duplicates_alone_leave_the_operation_complete_but_are_listed(reseller: Reseller) -> None:
    customer = await reseller.customer()
    await reseller.run("claimDevicesAsync", {"claims": [claim(customer, n) for n in range(3)]})
    [op] = await reseller.run("claimDevicesAsync", {"claims": [claim(customer, n) for n in range(3)]})
    assert op["state"] == "COMPLETE"
    assert [e["error"]["code"] for e in op["deviceErrors"]] == ["DUPLICATE_DEVICE"] * 3


async def test_a_clean_claim_async_completes_without_device_errors(reseller: Reseller) -> None:
    customer = await reseller.customer()
    [op] = await reseller.run("claimDevicesAsync", {"claims": [claim(customer, n) for n in range(50)]})
    assert op["state"] == "COMPLETE" and op["deviceErrors"] == []
    assert op["vendorParams"]["successCount"] == "50"


async def test_claims_of_two_google_customers_share_one_operation(reseller: Reseller) -> None:
    one, two = await reseller.customer("one"), await reseller.customer("two")
    [op] = await reseller.run("claimDevicesAsync", {"claims": [claim(one, 1), claim(two, 2)]})
    assert op["state"] == "COMPLETE"
    for customer in (one, two):
        page = await reseller.ok("findDevicesByOwner", {"customers": [customer["companyReference"]]})
        assert page["totalCount"] == 1


async def test_when_no_claim_names_a_customer_of_yours_the_operation_fails_before_it_starts(
    reseller: Reseller,
) -> None:
    """Empty operationId, state FAILED, every device in deviceErrors; nothing is stored."""
    claims = [
        {
            "deviceIdentifier": {"imei": imei(1), "manufacturer": "Google"},
            "customer": {"companyId": "424242"},
        },
        {"deviceIdentifier": {"imei": imei(2), "manufacturer": "Google"}},
    ]
    [op] = (await reseller.ok("claimDevicesAsync", {"claims": claims}))["operations"]
    assert op["operationId"] == "" and op["state"] == "FAILED" and op["operationType"] == "CLAIM_DEVICES"
    assert [e["error"]["code"] for e in op["deviceErrors"]] == ["INVALID_CUSTOMER_ID"] * 2
    assert [e["deviceIdentifier"] for e in op["deviceErrors"]] == [c["deviceIdentifier"] for c in claims]
    assert (await reseller.ok("listOperations"))["totalCount"] == 0


async def test_an_empty_claim_list_answers_no_operations(reseller: Reseller) -> None:
    assert await reseller.ok("claimDevicesAsync", {"claims": []}) == {"operations": []}


async def test_unclaim_async_by_id_and_identifier_with_each_device_fault(reseller: Reseller) -> None:
    customer = await reseller.customer()
    await reseller.run("claimDevicesAsync", {"claims": [claim(customer, n) for n in range(4)]})
    found = await reseller.ok("findDevicesByOwner", {"customers": [customer["companyReference"]]})
    ids = [d["deviceId"] for d in found["devices"]]
    unclaims: list[dict[str, Any]] = [
        {"deviceId": ids[0]},
        {"deviceIdentifier": {"imei": imei(1), "manufacturer": "Google"}},
        {"deviceId": "not-an-id"},
        {},
        {"deviceId": "google/987654321"},
        {"deviceIdentifier": {"imei": "1", "manufacturer": "Google"}},
        {"deviceId": ids[0]},  # already unclaimed by the first item
        {"deviceId": ids[2], "deviceIdentifier": {"imei": imei(3), "manufacturer": "Google"}},
    ]
    [op] = await reseller.run("unclaimDevicesAsync", {"unclaims": unclaims})
    assert op["operationType"] == "UNCLAIM_DEVICES" and op["state"] == "COMPLETE_WITH_ERRORS"
    errors = op["deviceErrors"]
    assert [(e["deviceId"], e["error"]["code"]) for e in errors] == [
        ("not-an-id", "INVALID_DEVICE_ID"),
        ("", "INVALID_IDENTIFIER_SET"),
        ("google/987654321", "AUTHORIZATION_FAIL"),
        ("", "INVALID_DEVICE_IMEI"),
        (ids[0], "AUTHORIZATION_FAIL"),
        (ids[2], "INVALID_IDENTIFIER_SET"),
    ]
    assert errors[3]["deviceIdentifier"] == {"imei": "1", "manufacturer": "Google"}
    left = await reseller.ok("findDevicesByOwner", {"customers": [customer["companyReference"]]})
    assert [d["deviceId"] for d in left["devices"]] == [ids[2], ids[3]]


async def test_get_operation_can_show_only_one_error_code_in_either_spelling(reseller: Reseller) -> None:
    """vendorParams.errorCode filters deviceErrors; the method pages' DUPLICATE_DEVICES and
    AUTHORIZATION_FAILED are read as DUPLICATE_DEVICE and AUTHORIZATION_FAIL."""
    one, two = await reseller.customer("one"), await reseller.customer("two")
    await reseller.run("claimDevicesAsync", {"claims": [claim(one, 1), claim(one, 2)]})
    [op] = await reseller.run(
        "claimDevicesAsync",
        {"claims": [claim(one, 1), claim(two, 2), claim(one, 3, imei="1", manufacturer="Google")]},
    )
    assert len(op["deviceErrors"]) == 3
    for spelling, code in [
        ("DUPLICATE_DEVICES", "DUPLICATE_DEVICE"),
        ("duplicate_device", "DUPLICATE_DEVICE"),
        ("AUTHORIZATION_FAILED", "AUTHORIZATION_FAIL"),
        ("AUTHORIZATION_FAIL", "AUTHORIZATION_FAIL"),
    ]:
        only = await reseller.ok(
            "getOperation", {"operationId": op["operationId"], "vendorParams": {"errorCode": spelling}}
        )
        assert [e["error"]["code"] for e in only["deviceErrors"]] == [code]
    bad = {"operationId": op["operationId"], "vendorParams": {"errorCode": "NO_SUCH_CODE"}}
    assert_error(await reseller.call("getOperation", bad), 400, "INVALID_PARAM_DEFAULT")


@pytest.mark.parametrize(
    "operation_id", [None, "", "12345", "google/", "google/x", "apple/12345", "google/-1"]
)
async def test_a_malformed_operation_id_is_invalid_operation_id(
    reseller: Reseller, operation_id: str | None
) -> None:
    r = await reseller.call("getOperation", {"operationId": operation_id})
    assert_error(r, 400, "INVALID_OPERATION_ID")


async def test_an_unknown_operation_or_the_wrong_vendor_prefix_is_authorization_fail_404(
    reseller: Reseller,
) -> None:
    customer = await reseller.customer()
    [op] = await reseller.run("claimDevicesAsync", {"claims": [claim(customer, 1)]})
    number = op["operationId"].split("/")[1]
    for operation_id in (f"samsung/{number}", "google/1234567890"):
        r = await reseller.call("getOperation", {"operationId": operation_id})
        assert_error(r, 404, "AUTHORIZATION_FAIL")
    assert (await reseller.ok("getOperation", {"operationId": f"GOOGLE/{number}"}))["state"] == "COMPLETE"


async def test_list_operations_filters_by_type_and_state_and_pages(reseller: Reseller) -> None:
    customer = await reseller.customer()
    claimed = [
        (await reseller.run("claimDevicesAsync", {"claims": [claim(customer, n)]}))[0] for n in range(3)
    ]
    [bad] = await reseller.run(
        "claimDevicesAsync", {"claims": [claim(customer, 9, imei="1", manufacturer="Google")]}
    )
    [unclaimed] = await reseller.run(
        "unclaimDevicesAsync",
        {"unclaims": [{"deviceIdentifier": {"imei": imei(0), "manufacturer": "Google"}}]},
    )
    # a metadata update, as zero-touch's updateMetadataAsync stores it, is listed as UPDATE_CLAIMS
    device = (await reseller.ok("findDevicesByDeviceIdentifier", {"deviceIdentifier": {"imei": imei(1)}}))[
        "devices"
    ][0]
    update = UpdateItem(int(device["deviceId"].split("/")[1]), None, {"k": "v"})
    core_op = await reseller.api.ctx.claims.submit(
        reseller.partner, OperationKind.UPDATE_METADATA, Vendor.GOOGLE, [(update, {})]
    )
    updated = await reseller.wait(f"google/{core_op.id}")
    assert updated["operationType"] == "UPDATE_CLAIMS" and updated["state"] == "COMPLETE"

    async def listed(**filters: Any) -> list[str]:
        ids, token = [], None
        while True:
            page = await reseller.ok("listOperations", {**filters, "pageSize": 2, "pageToken": token})
            assert len(page["operations"]) <= 2
            ids += [op["operationId"] for op in page["operations"]]
            token = page["nextPageToken"]
            if not token:
                assert len(ids) == page["totalCount"]
                return ids

    everything = await listed()
    assert len(everything) == 6
    assert await listed(operationType="CLAIM_DEVICES") == sorted(
        [op["operationId"] for op in [*claimed, bad]], key=lambda i: int(i.split("/")[1])
    )
    assert await listed(operationType="UNCLAIM_DEVICES") == [unclaimed["operationId"]]
    assert await listed(operationType="update_claims") == [updated["operationId"]]
    assert await listed(state="COMPLETE_WITH_ERRORS") == [bad["operationId"]]
    assert await listed(state="IN_PROGRESS") == []
    assert await listed(state="FAILED") == []
    assert len(await listed(state="COMPLETE")) == 5
    assert await listed(operationType="CLAIM_DEVICES", state="COMPLETE_WITH_ERRORS") == [bad["operationId"]]
    page = await reseller.ok("listOperations", {"state": "COMPLETE_WITH_ERRORS"})
    assert page["operations"][0]["deviceErrors"] == []  # getOperation lists them
    assert page["operations"][0]["vendorParams"]["successCount"] == "0"


@pytest.mark.parametrize("body", [{"operationType": "DELETE_DEVICES"}, {"state": "DONE"}])
async def test_unknown_list_operations_filters_are_malformed(
    reseller: Reseller, body: dict[str, str]
) -> None:
    assert_error(await reseller.call("listOperations", body), 400, "INVALID_PARAM_DEFAULT")


async def test_an_operation_is_in_progress_until_the_worker_has_run_it(reseller: Reseller) -> None:
    """Submitted operations are stored first and run later: until then getOperation and
    listOperations show IN_PROGRESS with processedCount 0 and no deviceErrors yet (they are
    listed once the operation has ended)."""
    customer = await reseller.customer()
    worker, claims = reseller.api.ctx.worker, reseller.api.ctx.claims
    worker.idle_seconds, claims.wake = 3600, None  # the worker sleeps and nobody wakes it
    await asyncio.sleep(0.7)  # let it finish the short sleep it may be in
    body = [claim(customer, n) for n in range(20)]
    body[3]["deviceIdentifier"]["imei"] = "1"
    [op] = (await reseller.ok("claimDevicesAsync", {"claims": body}))["operations"]
    assert op["state"] == "IN_PROGRESS"
    seen = await reseller.ok("getOperation", {"operationId": op["operationId"]})
    assert seen["state"] == "IN_PROGRESS" and seen["vendorParams"]["processedCount"] == "0"
    assert seen["deviceErrors"] == []
    listed = await reseller.ok("listOperations", {"state": "IN_PROGRESS"})
    assert [o["operationId"] for o in listed["operations"]] == [op["operationId"]]
    worker.wake.set()
    done = await reseller.wait(op["operationId"])
    assert done["state"] == "COMPLETE_WITH_ERRORS" and done["vendorParams"]["progress"] == "100"
    assert [e["error"]["code"] for e in done["deviceErrors"]] == ["INVALID_DEVICE_IMEI"]


async def test_an_operation_another_dialect_submitted_renders_its_device_errors_from_the_core(
    reseller: Reseller,
) -> None:
    """Zero-touch stores its own request items; here its failed devices still show their deviceId
    (prefixed) and deviceIdentifier, rebuilt from the core's item."""
    items = [
        (UpdateItem(987654321, None, {"k": "v"}), {"zeroTouch": {"deviceId": "987654321"}}),
        (
            UpdateItem(None, DeviceIdentifier(imei=imei(3), manufacturer="Google"), {"k": "v"}),
            {"zeroTouch": {}},
        ),
    ]
    core_op = await reseller.api.ctx.claims.submit(
        reseller.partner, OperationKind.UPDATE_METADATA, Vendor.GOOGLE, items
    )
    op = await reseller.wait(f"google/{core_op.id}")
    assert op["operationType"] == "UPDATE_CLAIMS" and op["state"] == "COMPLETE_WITH_ERRORS"
    assert [(e["deviceId"], e["deviceIdentifier"], e["error"]["code"]) for e in op["deviceErrors"]] == [
        ("google/987654321", {}, "AUTHORIZATION_FAIL"),
        ("", {"imei": imei(3), "manufacturer": "Google"}, "AUTHORIZATION_FAIL"),
    ]
