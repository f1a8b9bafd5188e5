"""The zero-touch OpenAPI document: served only to a partner, and true to what the routes answer.

The fuzzer (tests/fuzz/test_fuzz_zerotouch.py) rarely produces a successful synchronous claim or
unclaim (it would need a valid IMEI and an existing customer), so those answers, and a finished
operation with failed items, are checked here against the documented Structs.
"""

from __future__ import annotations

import typing
from typing import Any

import httpx
import msgspec
import pytest
from jsonschema import Draft202012Validator

from provisiond.api.zerotouch import responses
from provisiond.api.zerotouch.errors import _CANONICAL
from provisiond.api.zerotouch.openapi import DOCUMENT
from tests.api.zerotouch.conftest import SECTION, Partner, assert_google_error, bad_imei, ident

PATH = "/openapi/zerotouch.json"


async def test_the_document_is_served_to_a_partner_only(partner: Partner) -> None:
    anonymous = await partner.api.http.get(PATH)
    assert_google_error(anonymous, 401, "UNAUTHENTICATED")
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    forged = await partner.api.http.get(PATH, headers={"Authorization": "Bearer not-a-token"})
    assert_google_error(forged, 401, "UNAUTHENTICATED")
    r = await partner.call("GET", PATH)
    assert r.status_code == 200
    assert r.json() == DOCUMENT.build()


async def test_a_wrong_method_on_the_document_is_answered_in_google_format(partner: Partner) -> None:
    assert_google_error(await partner.call("POST", PATH), 405, "UNIMPLEMENTED")


def _schema(name: str) -> Draft202012Validator:
    doc = DOCUMENT.build()
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": doc["components"]})


def _answer(r: httpx.Response, struct: type[Any]) -> Any:
    """The answer decoded with its documented Struct (unknown fields refused) and valid against
    the document's schema of it."""
    decoded = msgspec.json.decode(r.content, type=struct)
    errors = [e.message for e in _schema(struct.__name__).iter_errors(r.json())]
    assert errors == [], (r.text, errors)
    return decoded


async def test_every_kind_of_answer_matches_its_documented_schema(partner: Partner) -> None:
    company = _answer(await partner.call("POST", "customers", json=_customer()), responses.Company)
    _answer(await partner.call("GET", "customers", params={"pageSize": "1"}), responses.ListCustomersResponse)
    claim = {"customerId": company.companyId, "sectionType": SECTION, "deviceIdentifier": ident(1)}
    claimed = _answer(await partner.call("POST", "devices:claim", json=claim), responses.ClaimDeviceResponse)
    device = await partner.call("GET", f"devices/{claimed.deviceId}")
    _answer(device, responses.Device)
    metadata = {"deviceMetadata": {"entries": {"order": "PO-1"}}}
    _answer(
        await partner.call("POST", f"devices/{claimed.deviceId}/metadata", json=metadata),
        responses.DeviceMetadata,
    )
    find = {"deviceIdentifier": ident(1), "limit": 1}
    found = await partner.call("POST", "devices:findByIdentifier", json=find)
    _answer(found, responses.FindDevicesByDeviceIdentifierResponse)
    owner = {"customerId": [company.companyId], "sectionType": SECTION, "limit": 1}
    _answer(
        await partner.call("POST", "devices:findByOwner", json=owner), responses.FindDevicesByOwnerResponse
    )
    unclaim = {"deviceId": claimed.deviceId, "sectionType": SECTION}
    _answer(await partner.call("POST", "devices:unclaim", json=unclaim), responses.Empty)
    assert_documented_error(await partner.call("GET", "devices/1"))


async def test_operations_match_their_documented_schema_pending_and_done(partner: Partner) -> None:
    customer = (await partner.ok("POST", "customers", _customer()))["companyId"]
    claims: list[dict[str, Any]] = [
        {"customerId": customer, "sectionType": SECTION, "deviceIdentifier": ident(1), "configurationId": 7},
        {"customerId": customer, "sectionType": SECTION, "deviceIdentifier": {"imei": bad_imei(2)}},
        {"customerId": "1", "sectionType": SECTION, "deviceIdentifier": ident(3)},
        {"customerId": customer, "sectionType": "SECTION_TYPE_SIM_LOCK", "deviceIdentifier": ident(4)},
    ]
    pending = await partner.call("POST", "devices:claimAsync", json={"claims": claims})
    _answer(pending, responses.Operation)
    done = await partner.wait(pending.json())
    op = _answer(await partner.call("GET", f"/v1/{done['name']}"), responses.Operation)
    statuses = [entry.result.status for entry in op.response.perDeviceStatus]
    assert statuses == [
        "SINGLE_DEVICE_STATUS_SUCCESS",
        "SINGLE_DEVICE_STATUS_INVALID_DEVICE_IDENTIFIER",
        "SINGLE_DEVICE_STATUS_PERMISSION_DENIED",
        "SINGLE_DEVICE_STATUS_INVALID_SECTION_TYPE",
    ]
    for verb, body in (
        ("unclaimAsync", {"unclaims": [{"deviceIdentifier": ident(1), "sectionType": SECTION}]}),
        ("updateMetadataAsync", {"updates": [{"deviceId": "1", "deviceMetadata": {}}]}),
    ):
        finished = await partner.wait(await partner.ok("POST", f"devices:{verb}", body))
        _answer(await partner.call("GET", f"/v1/{finished['name']}"), responses.Operation)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "devices:claim", {"sectionType": SECTION}),
        ("GET", "/v1/operations/apibatchoperation/1", None),
        ("GET", "/v1/partners/1/customers", None),
    ],
)
async def test_errors_match_the_documented_error_schema(
    partner: Partner, method: str, path: str, body: Any
) -> None:
    assert_documented_error(await partner.call(method, path, json=body))


def assert_documented_error(r: httpx.Response) -> None:
    assert 400 <= r.status_code < 500, r.text
    error = _answer(r, responses.Error)
    assert error.error.code == r.status_code


def test_the_documented_error_statuses_are_the_ones_the_error_table_emits() -> None:
    hints = typing.get_type_hints(responses.Status)
    assert set(typing.get_args(hints["code"])) == set(_CANONICAL)
    assert set(typing.get_args(hints["status"])) == set(_CANONICAL.values())


def _customer() -> dict[str, Any]:
    return {
        "customer": {
            "companyName": "Acme",
            "ownerEmails": ["o@acme.example"],
            "adminEmails": ["a@acme.example"],
        }
    }
