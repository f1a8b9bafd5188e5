"""claimAsync, unclaimAsync, updateMetadataAsync and operations.get: the LRO JSON, per-device results in order."""

from __future__ import annotations

from typing import Any

import pytest

from provisiond.api.zerotouch.lro import METADATA_TYPE, RESPONSE_TYPE
from tests.api.zerotouch.conftest import SECTION, Partner, assert_google_error, bad_imei, ident, imei

S = "SINGLE_DEVICE_STATUS_"


def claim(customer: str, identifier: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"customerId": customer, "sectionType": SECTION, "deviceIdentifier": identifier, **extra}


async def test_claim_async_answers_the_long_running_operation_json_exactly(partner: Partner) -> None:
    customer = await partner.customer()
    items = [claim(customer, ident(1)), claim(customer, {"imei": bad_imei(2), "manufacturer": "Google"})]
    started = await partner.ok("POST", "devices:claimAsync", {"claims": items})
    assert started["name"].startswith("operations/apibatchoperation/")
    assert started["metadata"]["@type"] == METADATA_TYPE and started["metadata"]["devicesCount"] == 2
    op = await partner.wait(started)
    device_id = op["response"]["perDeviceStatus"][0]["result"]["deviceId"]
    assert op == {
        "name": started["name"],
        "done": True,
        "metadata": {
            "@type": METADATA_TYPE,
            "processingStatus": "BATCH_PROCESS_PROCESSED",
            "progress": 100,
            "devicesCount": 2,
        },
        "response": {
            "@type": RESPONSE_TYPE,
            "successCount": 1,
            "perDeviceStatus": [
                {"claim": items[0], "result": {"status": S + "SUCCESS", "deviceId": device_id}},
                {
                    "claim": items[1],
                    "result": {
                        "status": S + "INVALID_DEVICE_IDENTIFIER",
                        "errorIdentifier": "INVALID_DEVICE_IMEI",
                        "errorMessage": op["response"]["perDeviceStatus"][1]["result"]["errorMessage"],
                    },
                },
            ],
        },
    }
    assert (await partner.ok("GET", f"devices/{device_id}"))["claims"][0]["ownerCompanyId"] == customer


async def test_every_per_device_outcome_is_reported_in_request_order(
    partner: Partner, other: Partner
) -> None:
    """Identifier, customer and ownership problems fail only their own device."""
    mine, second = await partner.customer("Mine"), await partner.customer("Second")
    theirs = await other.customer("Theirs")
    await partner.claim(second, 3)  # held by another customer of the same partner
    await other.claim(theirs, 4)  # held by another partner
    await partner.claim(mine, 5)  # already this customer's: a success, nothing to do
    items = [
        claim(mine, ident(1)),
        claim(mine, {"imei": bad_imei(2), "manufacturer": "Google"}),
        claim(mine, ident(3)),
        claim(mine, ident(4)),
        claim(mine, ident(5)),
        claim("424242", ident(6)),
        claim(theirs, ident(7)),
        claim(mine, {"imei": imei(8)}),
        claim(mine, {"meid": "A0000000002329", "manufacturer": "Google"}),
        claim(mine, {"imei": imei(9), "manufacturer": "Nobody Inc"}),
        {"googleWorkspaceCustomerId": "C0abc", "sectionType": SECTION, "deviceIdentifier": ident(10)},
        claim(mine, ident(1, "GOOGLE")),  # the device of item 0 again, in the same request
    ]
    op = await partner.run("claimAsync", {"claims": items})
    statuses = op["response"]["perDeviceStatus"]
    assert [s["claim"] for s in statuses] == items
    got = [(s["result"]["status"].removeprefix(S), s["result"].get("errorIdentifier")) for s in statuses]
    assert got == [
        ("SUCCESS", None),
        ("INVALID_DEVICE_IDENTIFIER", "INVALID_DEVICE_IMEI"),
        ("SECTION_NOT_YOURS", "AUTHORIZATION_FAIL"),
        ("SECTION_NOT_YOURS", "AUTHORIZATION_FAIL"),
        ("SUCCESS", None),
        ("PERMISSION_DENIED", "INVALID_CUSTOMER_ID"),
        ("PERMISSION_DENIED", "INVALID_CUSTOMER_ID"),
        ("INVALID_DEVICE_IDENTIFIER", "INVALID_IDENTIFIER_SET"),
        ("SUCCESS", None),
        ("INVALID_DEVICE_IDENTIFIER", "INVALID_MANUFACTURER"),
        ("PERMISSION_DENIED", "INVALID_CUSTOMER_ID"),
        ("SUCCESS", None),
    ]
    assert statuses[11]["result"]["deviceId"] == statuses[0]["result"]["deviceId"]
    assert op["response"]["successCount"] == 4 and op["metadata"]["devicesCount"] == 12
    assert all("deviceId" not in s["result"] for s in statuses if s["result"]["status"] != S + "SUCCESS")
    # The other partner's device is still theirs.
    found = await other.ok(
        "POST", "devices:findByIdentifier", {"deviceIdentifier": {"imei": imei(4)}, "limit": 1}
    )
    assert found["devices"][0]["claims"][0]["ownerCompanyId"] == theirs


async def test_unclaim_async_and_update_metadata_async_by_id_and_identifier(partner: Partner) -> None:
    customer = await partner.customer()
    ids = [await partner.claim(customer, n) for n in range(4)]
    updates = [
        {"deviceId": ids[0], "deviceMetadata": {"entries": {"k": "v0"}}},
        {"deviceIdentifier": ident(1), "deviceMetadata": {"entries": {"k": "v1"}}},
        {"deviceId": "999999", "deviceMetadata": {"entries": {}}},
    ]
    op = await partner.run("updateMetadataAsync", {"updates": updates})
    statuses = op["response"]["perDeviceStatus"]
    assert [s["updateMetadata"] for s in statuses] == updates
    assert [s["result"]["status"] for s in statuses] == [
        S + "SUCCESS",
        S + "SUCCESS",
        S + "INVALID_DEVICE_IDENTIFIER",
    ]
    assert (await partner.ok("GET", f"devices/{ids[1]}"))["deviceMetadata"] == {"entries": {"k": "v1"}}

    unclaims = [
        {"deviceId": ids[2], "sectionType": SECTION, "vacationModeDays": 3},
        {"deviceIdentifier": ident(3), "sectionType": SECTION},
        {"deviceIdentifier": ident(3), "sectionType": SECTION},  # already released by the item before
        {"deviceIdentifier": {"imei": "42", "manufacturer": "Google"}, "sectionType": SECTION},
    ]
    op = await partner.run("unclaimAsync", {"unclaims": unclaims})
    statuses = op["response"]["perDeviceStatus"]
    assert [s["unclaim"] for s in statuses] == unclaims
    assert [s["result"]["status"].removeprefix(S) for s in statuses] == [
        "SUCCESS",
        "SUCCESS",
        "SECTION_NOT_YOURS",
        "INVALID_DEVICE_IDENTIFIER",
    ]
    assert op["response"]["successCount"] == 2
    for device_id in ids[2:]:
        assert_google_error(await partner.call("GET", f"devices/{device_id}"), 404, "NOT_FOUND")


async def test_items_naming_another_section_than_the_first_are_invalid_section_type(partner: Partner) -> None:
    """One request is processed in one section type; an item naming another one has no effect."""
    customer = await partner.customer()
    items = [claim(customer, ident(1)), claim(customer, ident(2), sectionType="SECTION_TYPE_SIM_LOCK")]
    op = await partner.run("claimAsync", {"claims": items})
    results = [s["result"] for s in op["response"]["perDeviceStatus"]]
    assert results[0]["status"] == S + "SUCCESS"
    assert results[1]["status"] == S + "INVALID_SECTION_TYPE" and results[1]["errorIdentifier"]
    found = await partner.ok(
        "POST", "devices:findByIdentifier", {"deviceIdentifier": {"imei": imei(2)}, "limit": 1}
    )
    assert found["totalSize"] == 0


@pytest.mark.parametrize(
    ("verb", "field"),
    [("claimAsync", "claims"), ("unclaimAsync", "unclaims"), ("updateMetadataAsync", "updates")],
)
async def test_an_empty_request_is_an_operation_done_at_once(partner: Partner, verb: str, field: str) -> None:
    op = await partner.ok("POST", f"devices:{verb}", {field: []})
    assert op["done"] is True and op["metadata"]["devicesCount"] == 0
    assert op["response"] == {"@type": RESPONSE_TYPE, "successCount": 0, "perDeviceStatus": []}
    assert await partner.ok("GET", f"/v1/{op['name']}") == op


@pytest.mark.parametrize(
    ("verb", "body"),
    [
        ("claimAsync", {"claims": [{"customerId": "1", "deviceIdentifier": ident(1)}]}),
        (
            "claimAsync",
            {
                "claims": [
                    {"customerId": "1", "sectionType": SECTION, "deviceIdentifier": ident(1)},
                    {"customerId": "1"},
                ]
            },
        ),
        ("claimAsync", {"claims": [{"customerId": "x", "sectionType": SECTION}]}),
        ("claimAsync", {"claims": {"customerId": "1"}}),
        ("unclaimAsync", {"unclaims": [{"deviceId": "1"}]}),
        ("unclaimAsync", {"unclaims": [{"deviceId": True, "sectionType": SECTION}]}),
        ("updateMetadataAsync", {"updates": [{"deviceId": "1", "deviceMetadata": {"entries": {"a": None}}}]}),
    ],
)
async def test_a_malformed_item_or_missing_section_fails_the_whole_request(
    partner: Partner, verb: str, body: dict[str, Any]
) -> None:
    assert_google_error(await partner.call("POST", f"devices:{verb}", json=body), 400, "INVALID_ARGUMENT")
    assert await partner.api.ctx.claims.operations(partner.core, None, None, None, 10) == (
        [],
        0,
        False,
    )


async def test_more_than_100000_items_fail_the_request_and_write_nothing(partner: Partner) -> None:
    customer = await partner.customer()
    item = (
        b'{"customerId":"%s","sectionType":"SECTION_TYPE_ZERO_TOUCH","deviceIdentifier":{"imei":"%s","manufacturer":"Google"}}'
        % (
            customer.encode(),
            imei(1).encode(),
        )
    )
    body = b'{"claims":[' + b",".join([item] * 100_001) + b"]}"
    error = assert_google_error(
        await partner.call("POST", "devices:claimAsync", content=body), 400, "INVALID_ARGUMENT"
    )
    assert "100000" in error["message"]
    assert await partner.api.ctx.claims.operations(partner.core, None, None, None, 10) == (
        [],
        0,
        False,
    )
    found = await partner.ok(
        "POST", "devices:findByOwner", {"customerId": [customer], "sectionType": SECTION, "limit": 1}
    )
    assert found["totalSize"] == 0


@pytest.mark.parametrize(
    "name", ["operations/apibatchoperation/123", "operations/other/1", "operations/apibatchoperation/x"]
)
async def test_get_of_an_unknown_operation_is_404(partner: Partner, name: str) -> None:
    assert_google_error(await partner.call("GET", f"/v1/{name}"), 404, "NOT_FOUND")
