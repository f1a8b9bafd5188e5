"""The reseller document: served only to partners, in step with the wire structs it describes."""

from __future__ import annotations

import msgspec
import pytest

from provisiond.api.reseller import schemas as wire
from provisiond.api.reseller.openapi import (
    DOCUMENT,
    REQUESTS,
    AsyncDeviceClaim,
    CompanyReferenceIn,
    DeviceIdentifierIn,
    GoogleCompanyReference,
)
from tests.api.reseller.conftest import Reseller, assert_error

PATH = "/openapi/reseller.json"


async def test_the_document_is_served_to_a_partner_and_refused_without_a_partner_token(
    reseller: Reseller,
) -> None:
    http = reseller.api.http
    assert_error(await http.get(PATH), 403, "AUTHORIZATION_FAIL")
    forged = await http.get(PATH, headers={"Authorization": "Bearer not-a-token"})
    assert_error(forged, 403, "AUTHORIZATION_FAIL")
    _, tenant_token = await reseller.api.ctx.sphere.create_tenant("Contoso")
    assert_error(
        await http.get(PATH, headers={"Authorization": f"Bearer {tenant_token}"}), 403, "AUTHORIZATION_FAIL"
    )
    r = await http.get(PATH, headers={"Authorization": f"Bearer {reseller.token}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json() == DOCUMENT.build()


async def test_another_verb_on_the_document_is_answered_in_the_reseller_format(reseller: Reseller) -> None:
    r = await reseller.api.http.post(PATH, headers={"Authorization": f"Bearer {reseller.token}"})
    assert_error(r, 501, "NOT_IMPLEMENTED")


def _names(struct: type[msgspec.Struct]) -> set[str]:
    return {field.encode_name for field in msgspec.structs.fields(struct)}


@pytest.mark.parametrize("method", sorted(REQUESTS))
def test_each_documented_request_has_the_fields_the_route_decodes(method: str) -> None:
    documented, decoded, *_ = REQUESTS[method]
    assert _names(documented) == _names(decoded)


def test_the_documented_identifier_and_reference_have_the_wire_fields() -> None:
    assert _names(DeviceIdentifierIn) == _names(wire.DeviceIdentifier)
    assert _names(CompanyReferenceIn) == _names(wire.CompanyReferenceIn)
    assert _names(GoogleCompanyReference) == _names(wire.CompanyReferenceIn)
    assert _names(AsyncDeviceClaim) == _names(wire.DeviceClaim)
