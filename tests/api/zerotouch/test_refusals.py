"""Auth, oversized and malformed requests, standard query parameters and unknown routes under /v1/."""

from __future__ import annotations

import pytest

from provisiond.store.db import Database
from tests.api.zerotouch.conftest import SECTION, Partner, assert_google_error, ident

# Every method, with a body that would be accepted from the right caller.
METHODS = [
    ("POST", "customers", {"customer": {"companyName": "X", "ownerEmails": ["o@x.example"]}}),
    ("GET", "customers", None),
    ("POST", "devices:claim", {"customerId": "1", "sectionType": SECTION, "deviceIdentifier": ident(1)}),
    ("POST", "devices:unclaim", {"deviceId": "1", "sectionType": SECTION}),
    ("POST", "devices:claimAsync", {"claims": []}),
    ("POST", "devices:unclaimAsync", {"unclaims": []}),
    ("POST", "devices:updateMetadataAsync", {"updates": []}),
    ("POST", "devices:findByIdentifier", {"deviceIdentifier": {"imei": "1"}, "limit": 1}),
    ("POST", "devices:findByOwner", {"customerId": ["1"], "sectionType": SECTION, "limit": 1}),
    ("GET", "devices/1", None),
    ("POST", "devices/1/metadata", {"deviceMetadata": {"entries": {}}}),
    ("GET", "/v1/operations/apibatchoperation/1", None),
]


@pytest.mark.parametrize(("method", "path", "body"), METHODS)
@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({}, {}),
        ({}, {"key": "AIzaSyAnApiKey"}),
        ({"Authorization": "Bearer not-a-token"}, {}),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, {}),
        ({"Authorization": "Bearer "}, {}),
    ],
    ids=["none", "api-key-only", "unknown-token", "basic", "empty-bearer"],
)
async def test_every_method_wants_a_valid_bearer_token(
    partner: Partner, method: str, path: str, body: object, headers: dict[str, str], params: dict[str, str]
) -> None:
    url = path if path.startswith("/") else f"/v1/partners/{partner.id}/{path}"
    r = await partner.api.http.request(method, url, json=body, headers=headers, params=params)
    assert_google_error(r, 401, "UNAUTHENTICATED")
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path", "body"), [m for m in METHODS if not m[1].startswith("/")])
async def test_a_path_naming_another_partner_is_403(
    partner: Partner, other: Partner, method: str, path: str, body: object
) -> None:
    for foreign in (other.id, "999", "not-a-number"):
        r = await partner.call(method, f"/v1/partners/{foreign}/{path}", json=body)
        assert_google_error(r, 403, "PERMISSION_DENIED")


async def test_a_rotated_token_stops_working_at_once(partner: Partner) -> None:
    new = await partner.api.ctx.claims.rotate_token(int(partner.id))
    assert_google_error(await partner.call("GET", "customers"), 401, "UNAUTHENTICATED")
    assert (await partner.call("GET", "customers", token=new)).status_code == 200


async def test_standard_query_parameters_are_ignored(partner: Partner) -> None:
    params = {
        "alt": "json",
        "prettyPrint": "false",
        "fields": "customers",
        "key": "k",
        "quotaUser": "q",
        "$.xgafv": "2",
    }
    r = await partner.call("GET", "customers", params=params)
    assert r.status_code == 200 and r.json() == {"customers": [], "totalSize": 0}


async def test_the_bearer_scheme_is_case_insensitive(partner: Partner) -> None:
    r = await partner.api.http.get(
        f"/v1/partners/{partner.id}/customers", headers={"Authorization": f"bearer {partner.token}"}
    )
    assert r.status_code == 200


@pytest.mark.parametrize("body", [b"{", b"\xff\xfe", b'{"claims": "all"}', b'{"claims": [1]}', b"null"])
async def test_a_body_that_is_not_the_request_json_is_400(partner: Partner, body: bytes) -> None:
    r = await partner.call("POST", "devices:claimAsync", content=body)
    assert "Invalid JSON payload" in assert_google_error(r, 400, "INVALID_ARGUMENT")["message"]


async def test_a_body_over_32_mib_is_refused_before_parsing(partner: Partner) -> None:
    body = b'{"claims": [' + b" " * (32 * 1024 * 1024) + b"]}"
    r = await partner.call("POST", "devices:claimAsync", content=body)
    assert "exceeds the limit" in assert_google_error(r, 400, "INVALID_ARGUMENT")["message"]


async def test_a_body_just_under_32_mib_is_read(partner: Partner) -> None:
    body = b'{"claims": [' + b" " * (32 * 1024 * 1024 - 20) + b"]}"
    r = await partner.call("POST", "devices:claimAsync", content=body)
    assert r.status_code == 200 and r.json()["done"] is True


@pytest.mark.parametrize(
    ("method", "path", "status", "canonical"),
    [
        ("GET", "/v1/partners/1/nothing", 404, "NOT_FOUND"),
        ("GET", "/v1", 404, "NOT_FOUND"),
        ("POST", "/v1/partners/1/devices:explode", 404, "NOT_FOUND"),
        ("DELETE", "/v1/partners/1/customers", 405, "UNIMPLEMENTED"),
        ("GET", "/v1/partners/1/devices:claim", 405, "UNIMPLEMENTED"),
    ],
)
async def test_unknown_routes_and_methods_answer_in_google_format(
    partner: Partner, method: str, path: str, status: int, canonical: str
) -> None:
    assert_google_error(await partner.call(method, path), status, canonical)


async def test_a_nul_character_in_text_is_refused_with_400_where_the_database_cannot_store_it(
    partner: Partner, db: Database
) -> None:
    """Found probing fuzz inputs on PostgreSQL: PostgreSQL text holds no NUL, and a customer name
    or an identifier lookup with one was a 500 (SQLite stored it). Both engines now refuse it
    when the body is read, before anything is written."""
    customer = {"customer": {"companyName": "A\x00B", "ownerEmails": ["o@acme.example"]}}
    created = await partner.call("POST", "customers", json=customer)
    lookup = {"deviceIdentifier": {"serialNumber": "S\x00"}, "limit": 5}
    found = await partner.call("POST", "devices:findByIdentifier", json=lookup)
    assert "NUL" in assert_google_error(created, 400, "INVALID_ARGUMENT")["message"]
    assert (await partner.ok("GET", "customers"))["customers"] == []  # nothing was written
    assert "NUL" in assert_google_error(found, 400, "INVALID_ARGUMENT")["message"]
