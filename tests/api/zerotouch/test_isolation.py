"""Partner isolation: a partner sees, claims, unclaims and reads only its own customers, devices and operations.

A path naming another partner is 403; another partner's device, customer or operation is
answered exactly like one that does not exist (404, or a per-device failure), so nothing leaks.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.api.zerotouch.conftest import SECTION, Partner, assert_google_error, ident, imei

S = "SINGLE_DEVICE_STATUS_"


async def _setup_b(b: Partner) -> dict[str, Any]:
    """B's customer, a device B claimed, and one of B's operations."""
    customer = await b.customer("B Co")
    device = await b.claim(customer, 1, deviceMetadata={"entries": {"b": "secret"}})
    op = await b.run(
        "claimAsync",
        {"claims": [{"customerId": customer, "sectionType": SECTION, "deviceIdentifier": ident(2)}]},
    )
    return {"customer": customer, "device": device, "op": op["name"]}


async def test_a_cannot_address_b_through_b_path(partner: Partner, other: Partner) -> None:
    """Every method on /v1/partners/{B}/… with A's token is 403, whatever it names."""
    b = await _setup_b(other)
    calls = [
        ("GET", "customers", None),
        ("POST", "customers", {"customer": {"companyName": "X", "ownerEmails": ["o@x.example"]}}),
        ("GET", f"devices/{b['device']}", None),
        ("POST", f"devices/{b['device']}/metadata", {"deviceMetadata": {"entries": {}}}),
        ("POST", "devices:unclaim", {"deviceId": b["device"], "sectionType": SECTION}),
        (
            "POST",
            "devices:claim",
            {"customerId": b["customer"], "sectionType": SECTION, "deviceIdentifier": ident(3)},
        ),
        ("POST", "devices:findByOwner", {"customerId": [b["customer"]], "sectionType": SECTION, "limit": 10}),
        ("POST", "devices:findByIdentifier", {"deviceIdentifier": {"imei": imei(1)}, "limit": 10}),
        ("POST", "devices:claimAsync", {"claims": []}),
        ("POST", "devices:unclaimAsync", {"unclaims": [{"deviceId": b["device"], "sectionType": SECTION}]}),
        ("POST", "devices:updateMetadataAsync", {"updates": []}),
    ]
    for method, path, body in calls:
        r = await partner.call(method, f"/v1/partners/{other.id}/{path}", json=body)
        assert_google_error(r, 403, "PERMISSION_DENIED")
    assert (await other.ok("GET", "customers"))["totalSize"] == 1


async def test_b_objects_through_a_own_path_look_like_nothing_at_all(
    partner: Partner, other: Partner
) -> None:
    b = await _setup_b(other)
    mine = await partner.customer("A Co")
    # Reading: B's device and operation are 404, exactly as ids that do not exist.
    for path in (f"devices/{b['device']}", "devices/987654321"):
        r = await partner.call("GET", path)
        assert assert_google_error(r, 404, "NOT_FOUND")["message"].startswith("no device")
    for name in (b["op"], "operations/apibatchoperation/987654321"):
        assert_google_error(await partner.call("GET", f"/v1/{name}"), 404, "NOT_FOUND")
    # Listing and finding: B's customers and devices are not there.
    assert [c["companyId"] for c in (await partner.ok("GET", "customers"))["customers"]] == [mine]
    assert await partner.ok(
        "POST", "devices:findByOwner", {"customerId": [b["customer"]], "sectionType": SECTION, "limit": 10}
    ) == {"devices": [], "totalSize": 0}
    assert await partner.ok(
        "POST", "devices:findByIdentifier", {"deviceIdentifier": {"imei": imei(1)}, "limit": 10}
    ) == {"devices": [], "totalSize": 0}
    # Writing: B's customer is unknown, B's device is not A's to unclaim or annotate.
    r = await partner.call(
        "POST",
        "devices:claim",
        json={"customerId": b["customer"], "sectionType": SECTION, "deviceIdentifier": ident(3)},
    )
    assert_google_error(r, 404, "NOT_FOUND")
    for body in (
        {"deviceId": b["device"], "sectionType": SECTION},
        {"deviceIdentifier": ident(1), "sectionType": SECTION},
    ):
        assert_google_error(await partner.call("POST", "devices:unclaim", json=body), 404, "NOT_FOUND")
    r = await partner.call(
        "POST", f"devices/{b['device']}/metadata", json={"deviceMetadata": {"entries": {"a": "x"}}}
    )
    assert_google_error(r, 404, "NOT_FOUND")
    # Claiming B's device for A's own customer conflicts, and leaves B's claim alone.
    r = await partner.call(
        "POST",
        "devices:claim",
        json={"customerId": mine, "sectionType": SECTION, "deviceIdentifier": ident(1)},
    )
    assert_google_error(r, 409, "ALREADY_EXISTS")

    device = await other.ok("GET", f"devices/{b['device']}")
    assert device["claims"] == [
        {"ownerCompanyId": b["customer"], "resellerId": other.id, "sectionType": SECTION}
    ]
    assert device["deviceMetadata"] == {"entries": {"b": "secret"}}


async def test_async_methods_report_b_objects_per_device_without_touching_them(
    partner: Partner, other: Partner
) -> None:
    b = await _setup_b(other)
    mine = await partner.customer("A Co")
    claims = [
        {"customerId": b["customer"], "sectionType": SECTION, "deviceIdentifier": ident(5)},
        {"customerId": mine, "sectionType": SECTION, "deviceIdentifier": ident(1)},
    ]
    op = await partner.run("claimAsync", {"claims": claims})
    assert [s["result"]["status"] for s in op["response"]["perDeviceStatus"]] == [
        S + "PERMISSION_DENIED",
        S + "SECTION_NOT_YOURS",
    ]
    # By server-assigned id, B's device is answered as an unknown id: B's ids do not leak.
    unclaims = [
        {"deviceId": b["device"], "sectionType": SECTION},
        {"deviceId": "987654321", "sectionType": SECTION},
    ]
    op = await partner.run("unclaimAsync", {"unclaims": unclaims})
    results = [s["result"] for s in op["response"]["perDeviceStatus"]]
    assert (
        results[0]
        == results[1]
        == {
            "status": S + "INVALID_DEVICE_IDENTIFIER",
            "errorIdentifier": "INVALID_DEVICE",
            "errorMessage": "no such device among your claimed devices",
        }
    )
    op = await partner.run(
        "updateMetadataAsync", {"updates": [{"deviceId": b["device"], "deviceMetadata": {"entries": {}}}]}
    )
    assert op["response"]["perDeviceStatus"][0]["result"]["status"] == S + "INVALID_DEVICE_IDENTIFIER"
    # B still owns everything, metadata intact.
    device = await other.ok("GET", f"devices/{b['device']}")
    assert device["claims"][0]["ownerCompanyId"] == b["customer"] and device["deviceMetadata"]["entries"] == {
        "b": "secret"
    }
    found = await other.ok(
        "POST", "devices:findByOwner", {"customerId": [b["customer"]], "sectionType": SECTION, "limit": 10}
    )
    assert found["totalSize"] == 2


async def test_two_partners_racing_to_claim_one_new_device_leave_exactly_one_owner(
    partner: Partner, other: Partner
) -> None:
    """Concurrent sync claims of the same fresh IMEI: one 200, one 409, and the device has one claim."""
    a_customer, b_customer = await partner.customer("A Co"), await other.customer("B Co")
    for n in range(5):
        body_a = {"customerId": a_customer, "sectionType": SECTION, "deviceIdentifier": ident(100 + n)}
        body_b = {"customerId": b_customer, "sectionType": SECTION, "deviceIdentifier": ident(100 + n)}
        ra, rb = await asyncio.gather(
            partner.call("POST", "devices:claim", json=body_a),
            other.call("POST", "devices:claim", json=body_b),
        )
        assert sorted([ra.status_code, rb.status_code]) == [200, 409], (ra.text, rb.text)
        winner, loser = (partner, other) if ra.status_code == 200 else (other, partner)
        assert_google_error(rb if winner is partner else ra, 409, "ALREADY_EXISTS")
        device_id = (ra if winner is partner else rb).json()["deviceId"]
        assert len((await winner.ok("GET", f"devices/{device_id}"))["claims"]) == 1
        assert_google_error(await loser.call("GET", f"devices/{device_id}"), 404, "NOT_FOUND")


async def test_two_partners_racing_with_async_claims_leave_exactly_one_owner(
    partner: Partner, other: Partner
) -> None:
    """The same 50 devices in two partners' claimAsync at once: every device ends with one owner."""
    a_customer, b_customer = await partner.customer("A Co"), await other.customer("B Co")

    def items(customer: str) -> dict[str, Any]:
        return {
            "claims": [
                {"customerId": customer, "sectionType": SECTION, "deviceIdentifier": ident(200 + n)}
                for n in range(50)
            ]
        }

    op_a, op_b = await asyncio.gather(
        partner.ok("POST", "devices:claimAsync", items(a_customer)),
        other.ok("POST", "devices:claimAsync", items(b_customer)),
    )
    op_a, op_b = await asyncio.gather(partner.wait(op_a), other.wait(op_b))
    for n, (sa, sb) in enumerate(
        zip(op_a["response"]["perDeviceStatus"], op_b["response"]["perDeviceStatus"], strict=True)
    ):
        statuses = sorted([sa["result"]["status"], sb["result"]["status"]])
        assert statuses == [S + "SECTION_NOT_YOURS", S + "SUCCESS"], n
    assert op_a["response"]["successCount"] + op_b["response"]["successCount"] == 50


async def test_two_partners_racing_to_claim_a_released_device_leave_exactly_one_owner(
    partner: Partner, other: Partner
) -> None:
    """The device record exists (claimed once, then released): the claims race on the claim row alone.

    On PostgreSQL both transactions may read "no claim"; the claim insert refuses to overwrite, so
    the loser is rolled back, decides again, and is told 409.
    """
    a_customer, b_customer = await partner.customer("A Co"), await other.customer("B Co")
    for n in range(5):
        device_id = await partner.claim(a_customer, 300 + n)
        await partner.ok("POST", "devices:unclaim", {"deviceId": device_id, "sectionType": SECTION})
        body_a = {"customerId": a_customer, "sectionType": SECTION, "deviceIdentifier": ident(300 + n)}
        body_b = {"customerId": b_customer, "sectionType": SECTION, "deviceIdentifier": ident(300 + n)}
        ra, rb = await asyncio.gather(
            partner.call("POST", "devices:claim", json=body_a),
            other.call("POST", "devices:claim", json=body_b),
        )
        owners = [p for p, r in ((partner, ra), (other, rb)) if r.status_code == 200]
        visible = [
            p for p in (partner, other) if (await p.call("GET", f"devices/{device_id}")).status_code == 200
        ]
        assert len(visible) == 1  # the store never holds two claims of one section
        assert sorted([ra.status_code, rb.status_code]) == [200, 409], (ra.text, rb.text)
        assert owners == visible
