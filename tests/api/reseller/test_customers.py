"""createCustomer and listCustomers: Company objects, vendor spellings, paging with "" as last token."""

from __future__ import annotations

import pytest

from tests.api.reseller.conftest import Reseller, assert_error


@pytest.mark.parametrize(
    ("given", "written"),
    [
        ("GOOGLE", "GOOGLE"),
        ("Google", "GOOGLE"),
        ("google", "GOOGLE"),
        ("SAMSUNG", "SAMSUNG"),
        ("Samsung", "SAMSUNG"),
        ("samsung", "SAMSUNG"),
    ],
)
async def test_create_customer_reads_any_vendor_spelling_and_writes_it_upper_case(
    reseller: Reseller, given: str, written: str
) -> None:
    company = await reseller.ok(
        "createCustomer",
        {"companyName": "Acme", "companyReference": {"vendor": given}, "vendorParams": {"region": "EU"}},
    )
    assert company["companyReference"]["vendor"] == written
    assert company["companyReference"]["companyId"].isdigit()
    assert company["companyName"] == "Acme" and company["vendorParams"] == {"region": "EU"}


async def test_create_customer_without_a_vendor_makes_a_google_customer(reseller: Reseller) -> None:
    company = await reseller.ok("createCustomer", {"companyName": "Plain"})
    assert company["companyReference"]["vendor"] == "GOOGLE"


@pytest.mark.parametrize(
    "body",
    [
        {"companyName": ""},
        {},
        {"companyName": "x" * 201},
        {"companyName": "Acme", "companyReference": {"companyId": "123", "vendor": "GOOGLE"}},
        {"companyName": "Acme", "companyReference": {"vendor": "APPLE"}},
    ],
)
async def test_create_customer_refuses_a_missing_name_a_given_company_id_or_an_unknown_vendor(
    reseller: Reseller, body: dict[str, object]
) -> None:
    assert_error(await reseller.call("createCustomer", body), 400, "INVALID_PARAM_DEFAULT")
    assert (await reseller.ok("listCustomers"))["totalCount"] == 0


async def test_list_customers_pages_with_an_empty_token_on_the_last_page(reseller: Reseller) -> None:
    made = [await reseller.customer(f"c{i}") for i in range(5)]
    seen, token, pages = [], None, 0
    while True:
        page = await reseller.ok("listCustomers", {"pageSize": 2, "pageToken": token})
        pages += 1
        assert page["totalCount"] == 5 and page["vendorParams"] == {}
        seen += page["customers"]
        token = page["nextPageToken"]
        assert isinstance(token, str)
        if token == "":
            break
    assert pages == 3
    assert sorted(c["companyReference"]["companyId"] for c in seen) == sorted(
        c["companyReference"]["companyId"] for c in made
    )


async def test_page_size_null_zero_or_over_100_means_100(reseller: Reseller) -> None:
    for i in range(101):
        await reseller.customer(f"c{i}")
    for size in (None, 0, 101, 5000):
        page = await reseller.ok("listCustomers", {"pageSize": size})
        assert len(page["customers"]) == 100 and page["totalCount"] == 101 and page["nextPageToken"]
        last = await reseller.ok("listCustomers", {"pageSize": size, "pageToken": page["nextPageToken"]})
        assert len(last["customers"]) == 1 and last["nextPageToken"] == ""


async def test_list_customers_filters_by_vendor_in_vendor_params(reseller: Reseller) -> None:
    await reseller.customer("g", "GOOGLE")
    samsung = await reseller.customer("s", "SAMSUNG")
    page = await reseller.ok("listCustomers", {"vendorParams": {"vendor": "samsung"}})
    assert page["customers"] == [samsung] and page["totalCount"] == 1


@pytest.mark.parametrize("token", ["garbage!", "bm90LWEtdG9rZW4", "bGlzdE9wZXJhdGlvbnM6MTIz"])
async def test_a_page_token_that_is_malformed_or_from_another_method_is_invalid_page_token(
    reseller: Reseller, token: str
) -> None:
    """The last case is a well-formed token issued by listOperations."""
    assert_error(await reseller.call("listCustomers", {"pageToken": token}), 400, "INVALID_PAGE_TOKEN")


@pytest.mark.parametrize(
    "method", ["listCustomers", "listOperations", "findDevicesByDeviceIdentifier", "findDevicesByOwner"]
)
async def test_a_page_token_with_non_ascii_characters_is_invalid_page_token_not_a_500(
    reseller: Reseller, method: str
) -> None:
    """Found by the fuzzer: base64 decoding raised ValueError on "é", which answered 500."""
    customer = await reseller.customer()
    body = {
        "pageToken": "é",
        "deviceIdentifier": {"manufacturer": "Google"},
        "customers": [customer["companyReference"]],
    }
    assert_error(await reseller.call(method, body), 400, "INVALID_PAGE_TOKEN")


async def test_a_negative_page_size_is_a_malformed_request(reseller: Reseller) -> None:
    assert_error(await reseller.call("listCustomers", {"pageSize": -1}), 400, "INVALID_PARAM_DEFAULT")
