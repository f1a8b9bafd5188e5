"""partners.customers.create and .list: Company JSON, paging, refusals, and the invisible SAMSUNG customers."""

from __future__ import annotations

from typing import Any

import pytest

from provisiond.domain.device_identifiers import Vendor
from tests.api.zerotouch.conftest import Partner, assert_google_error


async def test_create_returns_the_company_with_string_ids_and_its_resource_name(partner: Partner) -> None:
    body = {
        "customer": {
            "companyName": "Acme Corp",
            "ownerEmails": ["owner@acme.example"],
            "adminEmails": ["admin@acme.example"],
            "languageCode": "en",
            "skipWelcomeEmail": True,
        }
    }
    company = await partner.ok("POST", "customers", body)
    assert isinstance(company["companyId"], str) and company["companyId"].isdigit()
    assert company == {
        "companyId": company["companyId"],
        "companyName": "Acme Corp",
        "name": f"partners/{partner.id}/customers/{company['companyId']}",
        "adminEmails": ["admin@acme.example"],
        "termsStatus": "TERMS_STATUS_NOT_ACCEPTED",
    }


@pytest.mark.parametrize(
    ("customer", "fragment"),
    [
        (None, "customer is required"),
        ({"ownerEmails": ["o@x.example"]}, "companyName"),
        ({"companyName": "  ", "ownerEmails": ["o@x.example"]}, "companyName"),
        ({"companyName": "X"}, "ownerEmails"),
        ({"companyName": "X", "ownerEmails": ["not-an-email"]}, "not an email"),
        ({"companyName": "X", "ownerEmails": ["o@x.example"], "companyId": "12"}, "assigned by the server"),
        ({"companyName": "X", "ownerEmails": ["o@x.example"], "name": "partners/1/customers/2"}, "assigned"),
    ],
)
async def test_create_refuses_an_incomplete_company_and_writes_nothing(
    partner: Partner, customer: dict[str, Any] | None, fragment: str
) -> None:
    r = await partner.call("POST", "customers", json={} if customer is None else {"customer": customer})
    assert fragment in assert_google_error(r, 400, "INVALID_ARGUMENT")["message"]
    assert (await partner.ok("GET", "customers"))["totalSize"] == 0


@pytest.mark.parametrize(
    "body",
    [
        b'{"customer": {"companyName": 5, "ownerEmails": ["o@x.example"]}}',
        b'{"customer": {"companyName": "X", "ownerEmails": "o@x.example"}}',
        b'{"customer": {"companyName": "X", "ownerEmails": ["o@x.example"], "skipWelcomeEmail": "yes"}}',
        b'{"customer": ',
        b"[]",
    ],
)
async def test_create_refuses_wrong_json_types_as_invalid_argument(partner: Partner, body: bytes) -> None:
    assert_google_error(await partner.call("POST", "customers", content=body), 400, "INVALID_ARGUMENT")
    assert (await partner.ok("GET", "customers"))["totalSize"] == 0


async def test_list_pages_with_page_size_and_omits_the_token_on_the_last_page(partner: Partner) -> None:
    made = [await partner.customer(f"C{n}") for n in range(5)]
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        params = {"pageSize": "2", **({"pageToken": token} if token else {})}
        page = await partner.ok("GET", "customers", params=params)
        pages += 1
        assert page["totalSize"] == 5
        seen += [c["companyId"] for c in page["customers"]]
        token = page.get("nextPageToken")
        if token is None:
            break
        assert len(page["customers"]) == 2
    assert pages == 3 and sorted(seen) == sorted(made)


@pytest.mark.parametrize("params", [{}, {"pageSize": "0"}])
async def test_list_without_a_page_size_returns_every_customer(
    partner: Partner, params: dict[str, str]
) -> None:
    for n in range(3):
        await partner.customer(f"C{n}")
    page = await partner.ok("GET", "customers", params=params)
    assert len(page["customers"]) == 3 and page["totalSize"] == 3 and "nextPageToken" not in page


@pytest.mark.parametrize("params", [{"pageSize": "-1"}, {"pageSize": "two"}, {"pageToken": "garbage!"}])
async def test_list_refuses_a_bad_page_size_or_token(partner: Partner, params: dict[str, str]) -> None:
    assert_google_error(await partner.call("GET", "customers", params=params), 400, "INVALID_ARGUMENT")


async def test_a_page_token_of_another_listing_is_refused(partner: Partner) -> None:
    """Tokens are opaque and typed: a findByOwner token does not page customers."""
    customer = await partner.customer()
    for n in range(2):
        await partner.claim(customer, n)
    body = {"customerId": [customer], "sectionType": "SECTION_TYPE_ZERO_TOUCH", "limit": "1"}
    token = (await partner.ok("POST", "devices:findByOwner", body))["nextPageToken"]
    r = await partner.call("GET", "customers", params={"pageToken": token})
    assert_google_error(r, 400, "INVALID_ARGUMENT")


async def test_samsung_customers_are_invisible_in_this_dialect(partner: Partner) -> None:
    """Knox customers (made through the reseller dialect) are neither listed nor claimable here."""
    core = partner.core
    knox = await partner.api.ctx.claims.create_customer(core, "Knox Co", Vendor.SAMSUNG, ["k@knox.example"])
    google = await partner.customer("Google Co")
    listed = await partner.ok("GET", "customers")
    assert [c["companyId"] for c in listed["customers"]] == [google] and listed["totalSize"] == 1

    r = await partner.call(
        "POST",
        "devices:claim",
        json={
            "customerId": str(knox.id),
            "sectionType": "SECTION_TYPE_ZERO_TOUCH",
            "deviceIdentifier": {"imei": "123456789012347", "manufacturer": "Google"},
        },
    )
    assert_google_error(r, 404, "NOT_FOUND")
    op = await partner.run(
        "claimAsync",
        {
            "claims": [
                {
                    "customerId": str(knox.id),
                    "sectionType": "SECTION_TYPE_ZERO_TOUCH",
                    "deviceIdentifier": {"imei": "123456789012347", "manufacturer": "Google"},
                }
            ]
        },
    )
    assert (
        op["response"]["perDeviceStatus"][0]["result"]["status"] == "SINGLE_DEVICE_STATUS_PERMISSION_DENIED"
    )
    found = await partner.ok(
        "POST",
        "devices:findByOwner",
        {"customerId": [str(knox.id)], "sectionType": "SECTION_TYPE_ZERO_TOUCH", "limit": 10},
    )
    assert found == {"devices": [], "totalSize": 0}
