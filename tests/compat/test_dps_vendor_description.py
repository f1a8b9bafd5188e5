"""Our DPS service document against Microsoft's description of the same API.

Microsoft's description is read out of its generated client (``tests/compat/vendor_description``).
Every difference is listed here with its reason, and docs/openapi.md explains each: a new
difference (a route, parameter or wire name that appears or goes) fails the test until it is
fixed or explained.
"""

from __future__ import annotations

from typing import Any

import pytest

from provisiond.api.dps_service.openapi import DOCUMENT
from tests.compat.vendor_description import vendor_operations, vendor_source

pytestmark = pytest.mark.compat

# difference -> why (docs/openapi.md, "DPS service API", says the same at more length). A key
# "PART · KIND: name" explains that name in every body of that part (request or answer); "KIND:
# name" in every body.
_READ_ONLY = "read-only: the swagger's request body is the whole model; sent, it is ignored"
EXPLAINED = {
    "vendor only name: count": "initialTwin's TwinCollection metadata: accepted, stored as sent, not described",
    "vendor only name: lastUpdated": "TwinCollection metadata, as for count",
    "vendor only name: lastUpdatedVersion": "TwinCollection metadata, as for count",
    "vendor only name: metadata": "TwinCollection metadata, as for count",
    "ours only name: credentialPolicyName": "api-version 2025-07-01-preview (certificate issuance)",
    "answer · vendor only name: certificate": "only a certificate's info is returned, never the certificate (as DPS)",
    **{
        f"request · vendor only name: {name}": _READ_ONLY
        for name in (
            "createdDateTimeUtc",
            "lastUpdatedDateTimeUtc",
            "registrationState",
            "assignedHub",
            "status",
            "substatus",
            "errorCode",
            "errorMessage",
            "payload",
            "info",
            "subjectName",
            "issuerName",
            "serialNumber",
            "sha1Thumbprint",
            "sha256Thumbprint",
            "notBeforeUtc",
            "notAfterUtc",
            "version",
        )
    },
}


def _names(schema: Any, components: dict[str, Any], seen: frozenset[str] = frozenset()) -> set[str]:
    """Every property name reachable from ``schema`` (through refs, unions and arrays)."""
    if not isinstance(schema, dict):
        return set()
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[1]
        return set() if name in seen else _names(components[name], components, seen | {name})
    names = set(schema.get("properties", {}))
    for sub in schema.get("properties", {}).values():
        names |= _names(sub, components, seen)
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            names |= _names(sub, components, seen)
    names |= _names(schema.get("items"), components, seen)
    return names


def _body_schema(part: dict[str, Any] | None) -> Any:
    return (part or {}).get("content", {}).get("application/json", {}).get("schema")


def differences() -> set[str]:
    """Every difference, per operation: its parameters, and the wire names of its bodies."""
    doc = DOCUMENT.build()
    components = doc["components"]["schemas"]
    vendor = vendor_operations(vendor_source())
    ours = {
        (method.upper(), path): op
        for path, item in doc["paths"].items()
        if path != DOCUMENT.path
        for method, op in item.items()
    }
    found = {f"ours only: {m} {p}" for m, p in set(ours) - set(vendor)}
    found |= {f"vendor only: {m} {p}" for m, p in set(vendor) - set(ours)}
    for key in sorted(set(ours) & set(vendor)):
        op, theirs = ours[key], vendor[key]
        where = f"{key[0]} {key[1]}"
        params = {(p["in"], p["name"].lower()) for p in op.get("parameters", []) if p["in"] != "path"}
        wanted = {("query", q.lower()) for q in theirs.query} | {
            ("header", h.lower()) for h in theirs.headers
        }
        found |= {f"{where}: vendor only parameter {w[1]}" for w in wanted - params}
        found |= {f"{where}: ours only parameter {p[1]}" for p in params - wanted}
        for part, our_schema, their_names in (
            ("request", _body_schema(op.get("requestBody")), theirs.request_names),
            ("answer", _body_schema(op["responses"].get("200")), theirs.response_names),
        ):
            our_names = _names(our_schema, components)
            found |= {f"{where} · {part} · vendor only name: {n}" for n in their_names - our_names}
            found |= {f"{where} · {part} · ours only name: {n}" for n in our_names - their_names}
    return found


def _key(difference: str) -> str | None:
    """The EXPLAINED entry that explains ``difference``: itself, or its name for that part, or its
    name anywhere."""
    parts = difference.split(" · ")
    for candidate in (difference, " · ".join(parts[-2:]), parts[-1]):
        if candidate in EXPLAINED:
            return candidate
    return None


def test_every_difference_from_microsofts_description_is_explained() -> None:
    found = differences()
    unexplained = sorted(d for d in found if _key(d) is None)
    assert unexplained == [], "fix these, or explain them here and in docs/openapi.md"
    gone = sorted(set(EXPLAINED) - {_key(d) for d in found})
    assert gone == [], "these differences are gone: drop them from EXPLAINED"


def test_the_comparison_reads_the_vendor_operations() -> None:
    vendor = vendor_operations(vendor_source())
    assert ("PUT", "/enrollments/{id}") in vendor and ("DELETE", "/registrations/{id}") in vendor
    assert "registrationId" in vendor["PUT", "/enrollments/{id}"].request_names
    assert vendor["POST", "/registrations/{id}/query"].headers == {"x-ms-max-item-count", "x-ms-continuation"}
