"""The zero-touch reseller API's OpenAPI document, with Google's wire names.

Request bodies are the JSON Schema of the msgspec Structs the routes decode with (``schemas``),
tightened where the routes or the claims core refuse more than the Struct does: a required
``sectionType``, ``limit`` 1-100, the customer fields of ``customers.create`` (``mapping``). The
answers are the Structs of ``responses``, which mirror ``mapping`` and ``lro`` output
field for field (the fuzzer checks every answer against them).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import msgspec

from provisiond.api.openapi import (
    DialectDocument,
    Operation,
    Schema,
    json_content,
    msgspec_components,
    path_param,
    query_param,
    ref,
)
from provisiond.api.zerotouch import schemas as wire
from provisiond.api.zerotouch.mapping import MAX_INT32, MAX_OWNER_IDS
from provisiond.api.zerotouch.responses import RESPONSES
from provisiond.domain.claims import MAX_ITEMS
from provisiond.domain.device_identifiers import MAX_SERIAL_LENGTH

__all__ = ["DOCUMENT"]

ERROR = "Error"
_SECTION_TYPES = ["SECTION_TYPE_SIM_LOCK", "SECTION_TYPE_ZERO_TOUCH"]
# What Python's str.isspace() (which the checks use) calls whitespace, written so that both
# JSON Schema's regex dialect and Python's read it alike (``\s`` differs between them).
_WS = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_CC = r"\x00-\x1f\x7f-\x9f"  # Unicode category Cc
_EMAIL: Schema = {"type": "string", "pattern": f"^[^@{_WS}]+@[^{_WS}]+$"}
_SERIAL: Schema = {
    "type": "string",
    "pattern": f"^[^{_WS}{_CC}](?:[^{_CC}]*[^{_WS}{_CC}])?$",
    "maxLength": MAX_SERIAL_LENGTH,
}
_GIVEN = f"[^{_WS}]"  # not blank


def _at_most(limit: str) -> str:
    """A regex of the decimal strings of ``len(limit)`` digits whose value is at most ``limit``."""
    parts = [
        f"{limit[:i]}[0-{int(digit) - 1}][0-9]{{{len(limit) - i - 1}}}"
        for i, digit in enumerate(limit)
        if digit != "0"
    ]
    return "|".join([*parts, limit])


_MAX = str(2**63 - 1)
# An int64 field: proto3 JSON writes a decimal string (leading zeros and all, up to 19 digits),
# and the routes also take an integral JSON number (schemas.parse_int64).
INT64: Schema = {
    "type": ["string", "integer"],
    "format": "int64",
    "pattern": f"^(?:[0-9]{{1,18}}|{_at_most(_MAX)}|-(?:[0-9]{{1,18}}|{_at_most(str(2**63))}))$",
    "minimum": -(2**63),
    "maximum": 2**63 - 1,
}
_LIMIT: Schema = {**INT64, "pattern": "^0{0,16}(?:[1-9]|[1-9][0-9]|100)$", "minimum": 1, "maximum": 100}


def _int64_hook(kind: type) -> Schema:
    if kind is wire.Int64:
        return ref("Int64")
    raise NotImplementedError(kind)


def _request_components() -> dict[str, Schema]:
    _, defs = msgspec.json.schema_components(
        [
            wire.CreateCustomerRequest,
            wire.ClaimDevicesRequest,
            wire.UnclaimDevicesRequest,
            wire.UpdateDeviceMetadataInBatchRequest,
            wire.UpdateDeviceMetadataRequest,
            wire.FindDevicesByDeviceIdentifierRequest,
            wire.FindDevicesByOwnerRequest,
        ],
        schema_hook=_int64_hook,
        ref_template="#/components/schemas/{name}",
    )
    components: dict[str, Schema] = {**copy.deepcopy(dict(defs)), "Int64": INT64}
    for schema in components.values():
        schema.pop("description", None)  # the Structs' docstrings are for this code's readers
    _tighten(components)
    return components


def _set(components: dict[str, Schema], name: str, field: str, schema: Schema, *, required: bool) -> None:
    """Replace a property's schema (msgspec's allows ``null`` for every ``X | None`` field, which
    decodes as "not given"); a required field must be given and not null."""
    target = components[name]
    target["properties"][field] = schema
    if required:
        target["required"] = sorted({*target.get("required", ()), field})
    elif not target.get("required"):
        target.pop("required", None)


def _tighten(c: dict[str, Schema]) -> None:
    """What ``mapping``, the routes and the claims core refuse beyond the Structs' types."""
    section = {"type": "string", "enum": _SECTION_TYPES}
    identifier = c["DeviceIdentifierIn"]["properties"]
    identifier["imei"] = {"type": "string", "pattern": "^[0-9]{15}$"}
    identifier["meid"] = {"type": "string", "pattern": "^[0-9A-Fa-f]{14,15}$"}
    identifier["serialNumber"] = _SERIAL
    del c["SectionTypeIn"]  # every sectionType is replaced below: UNSPECIFIED is refused
    for schema in c.values():
        if schema.get("required") == []:
            del schema["required"]

    company = c["CompanyIn"]
    for server_assigned in ("companyId", "name"):  # setting them is refused with 400
        company["properties"].pop(server_assigned)
    company_name = {"type": "string", "pattern": _GIVEN, "maxLength": 200}  # stripped, then 1-200
    _set(c, "CompanyIn", "companyName", company_name, required=True)
    owners = {"type": "array", "items": _EMAIL, "minItems": 1}
    _set(c, "CompanyIn", "ownerEmails", owners, required=True)
    _set(c, "CompanyIn", "adminEmails", {"type": "array", "items": _EMAIL}, required=False)
    _set(c, "CreateCustomerRequest", "customer", ref("CompanyIn"), required=True)

    # A synchronous claim needs its section, a device and exactly one of the two customer ids.
    claim = c["ClaimDeviceRequest"] = copy.deepcopy(c["PartnerClaim"])
    claim["title"] = "ClaimDeviceRequest"
    _set(c, "ClaimDeviceRequest", "sectionType", section, required=True)
    _set(c, "ClaimDeviceRequest", "deviceIdentifier", ref("DeviceIdentifierSet"), required=True)
    _set(c, "ClaimDeviceRequest", "customerId", ref("Int64"), required=False)
    _set(
        c,
        "ClaimDeviceRequest",
        "googleWorkspaceCustomerId",
        {"type": "string", "minLength": 1},
        required=False,
    )
    claim["oneOf"] = [{"required": ["customerId"]}, {"required": ["googleWorkspaceCustomerId"]}]
    # In claimAsync, only a missing section fails the request; the rest fails its device.
    _set(c, "PartnerClaim", "sectionType", section, required=True)

    unclaim = c["UnclaimDeviceRequest"] = copy.deepcopy(c["PartnerUnclaim"])
    unclaim["title"] = "UnclaimDeviceRequest"
    _set(c, "UnclaimDeviceRequest", "sectionType", section, required=True)
    _set(c, "UnclaimDeviceRequest", "deviceId", ref("Int64"), required=False)
    _set(c, "UnclaimDeviceRequest", "deviceIdentifier", ref("DeviceIdentifierSet"), required=False)
    unclaim["anyOf"] = [{"required": ["deviceId"]}, {"required": ["deviceIdentifier"]}]
    _set(c, "PartnerUnclaim", "sectionType", section, required=True)

    for name, field, item in (
        ("ClaimDevicesRequest", "claims", "PartnerClaim"),
        ("UnclaimDevicesRequest", "unclaims", "PartnerUnclaim"),
        ("UpdateDeviceMetadataInBatchRequest", "updates", "UpdateMetadataArguments"),
    ):
        items = {"type": "array", "items": ref(item), "maxItems": MAX_ITEMS}
        _set(c, name, field, items, required=False)

    _set(c, "UpdateDeviceMetadataRequest", "deviceMetadata", ref("DeviceMetadataIn"), required=True)

    find = "FindDevicesByDeviceIdentifierRequest"
    _set(c, find, "deviceIdentifier", ref("FindDeviceIdentifier"), required=True)
    _set(c, find, "limit", _LIMIT, required=True)
    # findByIdentifier reads any imei, meid or serialNumber (one of them), unchecked.
    query = c["FindDeviceIdentifier"] = copy.deepcopy(c["DeviceIdentifierIn"])
    query["title"] = "FindDeviceIdentifier"
    for field in ("imei", "meid", "serialNumber"):
        query["properties"][field] = {"type": "string"}
    query["anyOf"] = [_given(field) for field in ("imei", "meid", "serialNumber")]
    # A device named in a synchronous call must be named well enough for a claim (the core's
    # identifier sets); the allow-list of manufacturers is configuration, so not listed here.
    named = c["DeviceIdentifierSet"] = copy.deepcopy(c["DeviceIdentifierIn"])
    named["title"] = "DeviceIdentifierSet"
    named["anyOf"] = [
        _given("imei", "manufacturer"),
        _given("meid", "manufacturer"),
        _given("serialNumber", "manufacturer", "model"),
    ]

    owner = "FindDevicesByOwnerRequest"
    _set(c, owner, "sectionType", section, required=True)
    _set(c, owner, "limit", _LIMIT, required=True)
    ids = {"type": "array", "items": ref("Int64"), "maxItems": MAX_OWNER_IDS}
    _set(c, owner, "customerId", ids, required=False)


def _given(*fields: str) -> Schema:
    """Each of ``fields`` present and not blank."""
    return {
        "required": list(fields),
        "properties": {f: {"type": "string", "pattern": _GIVEN} for f in fields},
    }


_KEY = query_param("key", "An API key; accepted and ignored (the bearer token is the credential).")
_STANDARD = (
    query_param(
        "$.xgafv", "The error format version; accepted and ignored.", {"type": "string", "enum": ["1", "2"]}
    ),
    query_param("alt", "The answer's format: JSON only.", {"type": "string", "enum": ["json"]}),
    _KEY,
    query_param("prettyPrint", "Accepted and ignored: answers are compact.", {"type": "boolean"}),
    query_param("fields", "Accepted and ignored: answers are whole."),
    query_param("quotaUser", "Accepted and ignored."),
)
_PARTNER = path_param("partnerId", "The caller's own partner id (any other is 403).", {"type": "string"})
_DEVICE = path_param("deviceId", "A device id.", {"type": "string", "pattern": INT64["pattern"]})
_OPERATION = {
    **path_param(
        "name",
        "The operation's name after `operations/`: `apibatchoperation/<id>`, its `/` sent as is.",
        {"type": "string", "pattern": "^apibatchoperation/[0-9]{1,19}$"},
    ),
    "example": "apibatchoperation/6471920323",  # with its "/" (which tells fuzzers a "/" is meant)
}
_REASONS = {
    400: "The request is malformed: body, parameter or a rule of the API (`message` says which).",
    401: "No bearer token, or not a valid one.",
    403: "The path names another partner.",
    404: "No such resource among the partner's.",
    409: "The device is already claimed by another customer.",
    503: "The database is unavailable; retry.",
}


def zt_errors(*statuses: int) -> dict[str, dict[str, Any]]:
    """The error answers of an operation, each Google's error body."""
    return {str(s): json_content(ref(ERROR), _REASONS[s]) for s in statuses}


def _ok(name: str, description: str) -> dict[str, Any]:
    return json_content(ref(name), description)


def _body(name: str) -> dict[str, Any]:
    return {"required": True, **json_content(ref(name), f"A {name}.")}


def _partner_op(
    method: str,
    tail: str,
    op_id: str,
    summary: str,
    answer: dict[str, Any],
    body: str | None,
    errors: tuple[int, ...] = (),
    query: tuple[dict[str, Any], ...] = (),
) -> Operation:
    """An operation under ``/v1/partners/{partnerId}``, named as in Google's discovery document."""
    params = (_PARTNER, _DEVICE) if "{deviceId}" in tail else (_PARTNER,)
    return Operation(
        method,
        f"/v1/partners/{{partnerId}}{tail}",
        op_id,
        summary,
        {"200": answer, **zt_errors(400, 401, 403, *errors, 503)},
        (*params, *query, *_STANDARD),
        _body(body) if body else None,
        tags=(op_id.rsplit(".", 1)[0],),
    )


_ASYNC = "Up to 100,000 items; each device's outcome is in its own result once the operation is done."
_DEVICE_VERBS: tuple[tuple[str, str, str, str, tuple[int, ...]], ...] = (
    ("claim", "Claim a device for a customer.", "ClaimDeviceResponse", "ClaimDeviceRequest", (404, 409)),
    ("unclaim", "Unclaim a device.", "Empty", "UnclaimDeviceRequest", (404,)),
    (
        "findByIdentifier",
        "Find the partner's devices by a hardware id.",
        "FindDevicesByDeviceIdentifierResponse",
        "FindDevicesByDeviceIdentifierRequest",
        (),
    ),
    (
        "findByOwner",
        "Find the partner's devices claimed for customers.",
        "FindDevicesByOwnerResponse",
        "FindDevicesByOwnerRequest",
        (),
    ),
    ("claimAsync", f"Claim devices. {_ASYNC}", "Operation", "ClaimDevicesRequest", ()),
    ("unclaimAsync", f"Unclaim devices. {_ASYNC}", "Operation", "UnclaimDevicesRequest", ()),
    (
        "updateMetadataAsync",
        f"Replace the metadata of devices. {_ASYNC}",
        "Operation",
        "UpdateDeviceMetadataInBatchRequest",
        (),
    ),
)


def _operations() -> Iterator[Operation]:
    customers, devices = "partners.customers", "partners.devices"
    yield _partner_op(
        "POST",
        "/customers",
        f"{customers}.create",
        "Create a customer.",
        _ok("Company", "The customer."),
        "CreateCustomerRequest",
    )
    size = {"type": "integer", "minimum": 0, "maximum": MAX_INT32}
    yield _partner_op(
        "GET",
        "/customers",
        f"{customers}.list",
        "The partner's customers, a page at a time.",
        _ok("ListCustomersResponse", "A page of customers."),
        None,
        query=(
            query_param("pageSize", "Customers per page; absent or 0: all of them.", size),
            query_param("pageToken", "The nextPageToken of the page before."),
        ),
    )
    for verb, summary, answer, body, errors in _DEVICE_VERBS:
        yield _partner_op(
            "POST", f"/devices:{verb}", f"{devices}.{verb}", summary, _ok(answer, "The answer."), body, errors
        )
    yield _partner_op(
        "GET",
        "/devices/{deviceId}",
        f"{devices}.get",
        "A device the partner claimed.",
        _ok("Device", "The device, with the partner's own claims."),
        None,
        (404,),
    )
    yield _partner_op(
        "POST",
        "/devices/{deviceId}/metadata",
        f"{devices}.metadata",
        "Replace the partner's metadata of a device it claimed.",
        _ok("DeviceMetadata", "The metadata as set."),
        "UpdateDeviceMetadataRequest",
        (404,),
    )
    yield Operation(
        "GET",
        "/v1/operations/{name}",
        "operations.get",
        "A long-running operation of one of the partner's async calls.",
        {"200": _ok("Operation", "The operation."), **zt_errors(401, 404, 503)},
        (_OPERATION, *_STANDARD),
        tags=("operations",),
    )


def _components() -> dict[str, Schema]:
    components = _request_components()
    components.update(msgspec_components(RESPONSES))
    return components


DOCUMENT = DialectDocument(
    name="zerotouch",
    title="provisiond: Android zero-touch reseller API (androiddeviceprovisioning v1)",
    api_version="v1",
    description=(
        "Customers, device claims and long-running batch operations of a zero-touch reseller, "
        "as Google's Android Device Provisioning Partner API v1. Every call needs the partner's "
        "bearer token (provisiond partner create); `partnerId` in a path must be the caller's own."
    ),
    operations=_operations,
    components=_components,
    security_schemes={
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A partner token from `provisiond partner create` (opaque, not OAuth 2).",
        }
    },
)
