"""Synchronous device methods: claim, unclaim, get, metadata, findByIdentifier, findByOwner."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.zerotouch.conftest import SECTION, Partner, assert_google_error, bad_imei, ident, imei


async def test_claim_returns_the_device_id_and_name_and_get_shows_the_claim(partner: Partner) -> None:
    customer = await partner.customer()
    body = {
        "customerId": customer,
        "sectionType": SECTION,
        "deviceIdentifier": ident(1),
        "deviceMetadata": {"entries": {"order": "PO-1"}},
    }
    claimed = await partner.ok("POST", "devices:claim", body)
    device_id = claimed["deviceId"]
    assert (
        isinstance(device_id, str) and claimed["deviceName"] == f"partners/{partner.id}/devices/{device_id}"
    )
    device = await partner.ok("GET", f"devices/{device_id}")
    assert device == {
        "deviceId": device_id,
        "name": f"partners/{partner.id}/devices/{device_id}",
        "deviceIdentifier": {"imei": imei(1), "manufacturer": "Google"},
        "deviceMetadata": {"entries": {"order": "PO-1"}},
        "claims": [{"ownerCompanyId": customer, "resellerId": partner.id, "sectionType": SECTION}],
    }


async def test_int64_fields_are_accepted_as_json_numbers_too(partner: Partner) -> None:
    customer = await partner.customer()
    body = {"customerId": int(customer), "sectionType": SECTION, "deviceIdentifier": ident(1)}
    device_id = (await partner.ok("POST", "devices:claim", body))["deviceId"]
    found = await partner.ok(
        "POST", "devices:findByOwner", {"customerId": [int(customer)], "sectionType": SECTION, "limit": 5}
    )
    assert [d["deviceId"] for d in found["devices"]] == [device_id]


async def test_int64_fields_take_integral_json_numbers_written_with_a_fraction_or_exponent(
    partner: Partner,
) -> None:
    """Fuzz finding: ``5.0`` is a JSON Schema integer, and protobuf's JSON parser reads it as 5,
    but the int64 decoder refused it with 400."""
    customer = await partner.customer()
    body = {"customerId": float(customer), "sectionType": SECTION, "deviceIdentifier": ident(1)}  # < 2**53
    device_id = (await partner.ok("POST", "devices:claim", body))["deviceId"]
    found = await partner.ok(
        "POST", "devices:findByOwner", {"customerId": [customer], "sectionType": SECTION, "limit": 5.0}
    )
    assert [d["deviceId"] for d in found["devices"]] == [device_id]
    by_id = await partner.ok("POST", "devices:findByIdentifier", {"deviceIdentifier": ident(1), "limit": 1e1})
    assert by_id["totalSize"] == 1
    r = await partner.call(
        "POST", "devices:findByIdentifier", json={"deviceIdentifier": ident(1), "limit": 2.5}
    )
    assert_google_error(r, 400, "INVALID_ARGUMENT")


async def test_claiming_again_for_the_same_customer_succeeds_with_the_same_device(partner: Partner) -> None:
    customer = await partner.customer()
    first = await partner.claim(customer, 1)
    assert await partner.claim(customer, 1) == first
    # The manufacturer matches case-insensitively: the same device.
    body = {"customerId": customer, "sectionType": SECTION, "deviceIdentifier": ident(1, "GOOGLE")}
    assert (await partner.ok("POST", "devices:claim", body))["deviceId"] == first


async def test_claiming_a_device_held_by_another_customer_is_409_already_exists(partner: Partner) -> None:
    first, second = await partner.customer("First"), await partner.customer("Second")
    device_id = await partner.claim(first, 1)
    r = await partner.call(
        "POST",
        "devices:claim",
        json={"customerId": second, "sectionType": SECTION, "deviceIdentifier": ident(1)},
    )
    assert_google_error(r, 409, "ALREADY_EXISTS")
    device = await partner.ok("GET", f"devices/{device_id}")
    assert [c["ownerCompanyId"] for c in device["claims"]] == [first]


@pytest.mark.parametrize(
    ("identifier", "code"),
    [
        ({"imei": bad_imei(1), "manufacturer": "Google"}, "INVALID_DEVICE_IMEI"),
        ({"imei": "12345", "manufacturer": "Google"}, "INVALID_DEVICE_IMEI"),
        ({"meid": "XYZ", "manufacturer": "Google"}, "INVALID_DEVICE_MEID"),
        ({"imei": imei(1)}, "INVALID_IDENTIFIER_SET"),
        ({"serialNumber": "SN1", "manufacturer": "Google"}, "INVALID_IDENTIFIER_SET"),
        ({"imei": imei(1), "manufacturer": "Nobody Inc"}, "INVALID_MANUFACTURER"),
        (None, "INVALID_IDENTIFIER_SET"),
    ],
)
async def test_a_bad_identifier_in_a_sync_claim_is_400_and_writes_nothing(
    partner: Partner, identifier: dict[str, str] | None, code: str
) -> None:
    customer = await partner.customer()
    body: dict[str, Any] = {"customerId": customer, "sectionType": SECTION}
    if identifier is not None:
        body["deviceIdentifier"] = identifier
    error = assert_google_error(
        await partner.call("POST", "devices:claim", json=body), 400, "INVALID_ARGUMENT"
    )
    assert code in error["message"]
    found = await partner.ok(
        "POST", "devices:findByOwner", {"customerId": [customer], "sectionType": SECTION, "limit": 1}
    )
    assert found["totalSize"] == 0


async def test_wifi_only_devices_are_claimed_by_serial_manufacturer_and_model(partner: Partner) -> None:
    customer = await partner.customer()
    body = {
        "customerId": customer,
        "sectionType": SECTION,
        "deviceIdentifier": {"serialNumber": "Ab-1", "manufacturer": "Google", "model": "Pixel Tablet"},
    }
    device_id = (await partner.ok("POST", "devices:claim", body))["deviceId"]
    # The serial is case-sensitive: another case is another device.
    body["deviceIdentifier"] = {"serialNumber": "AB-1", "manufacturer": "google", "model": "pixel tablet"}
    assert (await partner.ok("POST", "devices:claim", body))["deviceId"] != device_id


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"customerId": "424242", "deviceIdentifier": ident(1), "sectionType": SECTION}, 404),
        ({"googleWorkspaceCustomerId": "C01abc", "deviceIdentifier": ident(1), "sectionType": SECTION}, 404),
        ({"deviceIdentifier": ident(1), "sectionType": SECTION}, 400),
        (
            {
                "customerId": "1",
                "googleWorkspaceCustomerId": "C0",
                "deviceIdentifier": ident(1),
                "sectionType": SECTION,
            },
            400,
        ),
        ({"customerId": "1", "deviceIdentifier": ident(1)}, 400),
        ({"customerId": "1", "deviceIdentifier": ident(1), "sectionType": "SECTION_TYPE_UNSPECIFIED"}, 400),
        ({"customerId": "1", "deviceIdentifier": ident(1), "sectionType": "SECTION_TYPE_OTHER"}, 400),
        ({"customerId": "one", "deviceIdentifier": ident(1), "sectionType": SECTION}, 400),
        ({"customerId": 1.5, "deviceIdentifier": ident(1), "sectionType": SECTION}, 400),
        ({"customerId": "1", "deviceIdentifier": {"imei": 350000000000006}, "sectionType": SECTION}, 400),
    ],
)
async def test_sync_claim_refusals(partner: Partner, body: dict[str, Any], status: int) -> None:
    """Unknown customers are 404 (as another partner's are); a malformed request is 400."""
    r = await partner.call("POST", "devices:claim", json=body)
    assert_google_error(r, status, "NOT_FOUND" if status == 404 else "INVALID_ARGUMENT")


async def test_unclaim_by_id_or_identifier_releases_the_device(partner: Partner) -> None:
    customer = await partner.customer()
    by_id, by_identifier = await partner.claim(customer, 1), await partner.claim(customer, 2)
    assert await partner.ok("POST", "devices:unclaim", {"deviceId": by_id, "sectionType": SECTION}) == {}
    assert (
        await partner.ok("POST", "devices:unclaim", {"deviceIdentifier": ident(2), "sectionType": SECTION})
        == {}
    )
    for device_id in (by_id, by_identifier):
        assert_google_error(await partner.call("GET", f"devices/{device_id}"), 404, "NOT_FOUND")
    # Once released, the device can be claimed for another customer.
    assert await partner.claim(await partner.customer("Next"), 1) == by_id


async def test_a_released_device_loses_its_metadata_so_the_next_owner_never_reads_it(
    partner: Partner, other: Partner
) -> None:
    """Metadata describes the device for the customer it was claimed for; released by its last
    claim, the device is claimed again (here by another partner) with none (docs/zerotouch.md)."""
    body = {
        "customerId": await partner.customer(),
        "sectionType": SECTION,
        "deviceIdentifier": ident(1),
        "deviceMetadata": {"entries": {"order": "PO-SECRET"}},
    }
    device_id = (await partner.ok("POST", "devices:claim", body))["deviceId"]
    await partner.ok("POST", "devices:unclaim", {"deviceId": device_id, "sectionType": SECTION})
    assert await other.claim(await other.customer("Theirs"), 1) == device_id
    device = await other.ok("GET", f"devices/{device_id}")
    assert device["deviceMetadata"] == {"entries": {}}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"deviceId": "999999", "sectionType": SECTION}, 404),
        ({"deviceIdentifier": ident(77), "sectionType": SECTION}, 404),
        ({"deviceIdentifier": {"imei": "1", "manufacturer": "Google"}, "sectionType": SECTION}, 400),
        ({"sectionType": SECTION}, 400),
        ({"deviceId": "1"}, 400),
    ],
)
async def test_unclaim_refusals(partner: Partner, body: dict[str, Any], status: int) -> None:
    r = await partner.call("POST", "devices:unclaim", json=body)
    assert_google_error(r, status, "NOT_FOUND" if status == 404 else "INVALID_ARGUMENT")


async def test_metadata_replaces_the_entries_and_returns_them(partner: Partner) -> None:
    device_id = await partner.claim(await partner.customer(), 1, deviceMetadata={"entries": {"a": "1"}})
    out = await partner.ok(
        "POST", f"devices/{device_id}/metadata", {"deviceMetadata": {"entries": {"b": "2"}}}
    )
    assert out == {"entries": {"b": "2"}}
    assert (await partner.ok("GET", f"devices/{device_id}"))["deviceMetadata"] == {"entries": {"b": "2"}}


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("devices/999999/metadata", {"deviceMetadata": {"entries": {}}}, 404),
        ("devices/abc/metadata", {"deviceMetadata": {"entries": {}}}, 400),
        ("devices/{id}/metadata", {}, 400),
        ("devices/{id}/metadata", {"deviceMetadata": {"entries": {"a": 1}}}, 400),
    ],
)
async def test_metadata_refusals(partner: Partner, path: str, body: dict[str, Any], status: int) -> None:
    device_id = await partner.claim(await partner.customer(), 1)
    r = await partner.call("POST", path.format(id=device_id), json=body)
    assert_google_error(r, status, "NOT_FOUND" if status == 404 else "INVALID_ARGUMENT")


async def test_get_of_an_unknown_or_malformed_device_id(partner: Partner) -> None:
    assert_google_error(await partner.call("GET", "devices/123456"), 404, "NOT_FOUND")
    assert_google_error(await partner.call("GET", "devices/x1"), 400, "INVALID_ARGUMENT")


async def _page_through(partner: Partner, verb: str, body: dict[str, Any]) -> tuple[list[str], list[int]]:
    ids: list[str] = []
    totals: list[int] = []
    token = None
    while True:
        page = await partner.ok(
            "POST", f"devices:{verb}", {**body, **({"pageToken": token} if token else {})}
        )
        ids += [d["deviceId"] for d in page["devices"]]
        totals.append(page["totalSize"])
        token = page.get("nextPageToken")
        if token is None:
            return ids, totals


async def test_find_by_owner_pages_with_limit_and_counts_every_match(partner: Partner) -> None:
    a, b = await partner.customer("A"), await partner.customer("B")
    mine = [await partner.claim(a, n) for n in range(5)]
    theirs = [await partner.claim(b, n) for n in range(5, 7)]
    ids, totals = await _page_through(
        partner, "findByOwner", {"customerId": [a], "sectionType": SECTION, "limit": "2"}
    )
    assert sorted(ids) == sorted(mine) and totals == [5, 5, 5]
    ids, totals = await _page_through(
        partner, "findByOwner", {"customerId": [a, b], "sectionType": SECTION, "limit": 100}
    )
    assert sorted(ids) == sorted(mine + theirs) and totals == [7]
    none = await partner.ok(
        "POST", "devices:findByOwner", {"customerId": [a], "sectionType": "SECTION_TYPE_SIM_LOCK", "limit": 1}
    )
    assert none == {"devices": [], "totalSize": 0}


async def test_find_by_identifier_matches_the_hardware_id_and_pages(partner: Partner) -> None:
    customer = await partner.customer()
    wanted = await partner.claim(customer, 1)
    await partner.claim(customer, 2)
    found = await partner.ok(
        "POST", "devices:findByIdentifier", {"deviceIdentifier": {"imei": imei(1)}, "limit": 10}
    )
    assert [d["deviceId"] for d in found["devices"]] == [wanted] and found["totalSize"] == 1
    assert "nextPageToken" not in found
    serials = [
        (
            await partner.ok(
                "POST",
                "devices:claim",
                {
                    "customerId": customer,
                    "sectionType": SECTION,
                    "deviceIdentifier": {"serialNumber": "SER-1", "manufacturer": "Google", "model": m},
                },
            )
        )["deviceId"]
        for m in ("Pixel A", "Pixel B", "Pixel C")
    ]
    ids, totals = await _page_through(
        partner, "findByIdentifier", {"deviceIdentifier": {"serialNumber": "SER-1"}, "limit": 2}
    )
    assert sorted(ids) == sorted(serials) and totals == [3, 3]
    found = await partner.ok(
        "POST", "devices:findByIdentifier", {"deviceIdentifier": {"imei": imei(99)}, "limit": 10}
    )
    assert found == {"devices": [], "totalSize": 0}


@pytest.mark.parametrize(
    ("verb", "body"),
    [
        ("findByOwner", {"customerId": ["1"], "sectionType": SECTION}),
        ("findByOwner", {"customerId": ["1"], "sectionType": SECTION, "limit": 0}),
        ("findByOwner", {"customerId": ["1"], "sectionType": SECTION, "limit": "101"}),
        ("findByOwner", {"customerId": ["1"], "limit": 10}),
        ("findByOwner", {"customerId": ["1"], "sectionType": SECTION, "limit": 10, "pageToken": "nope"}),
        ("findByOwner", {"customerId": [str(n) for n in range(1001)], "sectionType": SECTION, "limit": 10}),
        ("findByIdentifier", {"deviceIdentifier": {"imei": "1"}}),
        ("findByIdentifier", {"deviceIdentifier": {"imei": "1"}, "limit": -1}),
        ("findByIdentifier", {"deviceIdentifier": {"manufacturer": "Google"}, "limit": 10}),
        ("findByIdentifier", {"limit": 10}),
        (
            "findByIdentifier",
            {"deviceIdentifier": {"imei": "1"}, "limit": 10, "pageToken": "Y3VzdG9tZXJzOjE"},
        ),
    ],
)
async def test_find_refusals(partner: Partner, verb: str, body: dict[str, Any]) -> None:
    """limit is required (1-100), sectionType too, a page token must be one this listing issued."""
    assert_google_error(await partner.call("POST", f"devices:{verb}", json=body), 400, "INVALID_ARGUMENT")
