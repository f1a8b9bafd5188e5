"""The Sphere document: served only to tenants, its answer structs in step with the wire's."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from provisiond.api.sphere import openapi as doc
from provisiond.api.sphere import schemas as wire
from tests.api.sphere.conftest import SphereApi, assert_sphere_error

PATH = "/openapi/sphere.json"


async def test_the_document_is_served_to_a_tenant_and_refused_without_a_tenant_token(
    sphere: SphereApi,
) -> None:
    anonymous = await sphere.call("GET", PATH, bearer=None)
    assert_sphere_error(anonymous, 401, "Unauthorized")
    assert anonymous.headers["www-authenticate"] == "Bearer"
    _, partner_token = await sphere.app.ctx.claims.create_partner("reseller")
    assert_sphere_error(await sphere.call("GET", PATH, bearer=partner_token), 401, "Unauthorized")
    r = await sphere.call("GET", PATH)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json() == doc.DOCUMENT.build()


async def test_another_verb_on_the_document_is_answered_in_the_sphere_format(sphere: SphereApi) -> None:
    assert_sphere_error(await sphere.call("PUT", PATH), 405, "MethodNotAllowed")


@pytest.mark.parametrize(
    ("documented", "rendered"),
    [
        (doc.OperationOut, wire.Operation),
        (doc.OperationItem, wire.OperationItem),
        (doc.OperationDetails, wire.OperationDetails),
        (doc.DeviceV2, wire.DeviceV2),
        (doc.DevicePage, wire.DevicePage),
        (doc.TenantV2, wire.TenantV2),
        (doc.ErrorResponse, wire.ErrorResponse),
        (doc.PublicApiErrorDetails, wire.ErrorDetails),
    ],
)
def test_each_documented_answer_has_the_fields_mapping_renders(
    documented: type[msgspec.Struct], rendered: Any
) -> None:
    assert set(documented.__struct_fields__) == set(rendered.__annotations__)
