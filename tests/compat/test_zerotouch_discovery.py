"""Our zero-touch OpenAPI document against Google's discovery document of the same API.

google-api-python-client (in ``.venv-compat``) ships ``androiddeviceprovisioning.v1.json``, the
machine-readable description the official clients are generated from. For every ``partners.*``
and ``operations.*`` method it holds, this test compares the HTTP method, the URL, the path and
query parameters, and the property names of the request and response bodies (recursively, by wire
name) with our document, and lists every difference. The list must equal ``EXPLAINED``: a new
difference fails the test, and so does one that went away. Each is explained in docs/openapi.md.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from provisiond.api.zerotouch.openapi import DOCUMENT
from tests.compat.support import compat_python

pytestmark = pytest.mark.compat

Schema = dict[str, Any]

_METADATA = "Operation.metadata"
_RESPONSE = "Operation.response"
_ALIKE = "same URL; "

# difference -> why (docs/openapi.md, section zerotouch, says the same at more length)
EXPLAINED: dict[str, str] = {
    "customers.*: not implemented": "the customer API (a customer's own calls) is out of scope",
    "partners.vendors.list: not implemented": "vendors (resellers' sub-resellers) do not exist here",
    "partners.vendors.customers.list: not implemented": "vendors do not exist here",
    "partners.devices.getSimLockState: not implemented": "SIM lock is not modelled",
    "partners.customers.create: path parameters ['parent'] are ['partnerId'] here": _ALIKE
    + "Google's `parent` is the resource name partners/{partnerId}",
    "partners.devices.get: path parameters ['name'] are ['deviceId', 'partnerId'] here": _ALIKE
    + "Google's `name` is the resource name partners/{partnerId}/devices/{deviceId}",
    "partners.devices.metadata: path parameters ['deviceId', 'metadataOwnerId'] are ['deviceId', 'partnerId'] here": (
        _ALIKE + "the owner of the metadata is the calling partner, named partnerId like everywhere else"
    ),
    "operations.get: path parameter name is the part after operations/": _ALIKE
    + "Google's `name` includes the operations/ prefix, which our path holds literally",
    "query parameter access_token: not read": "only the Authorization header carries the token",
    "query parameter oauth_token: not read": "only the Authorization header carries the token",
    "query parameter callback: not read": "no JSONP",
    "query parameter uploadType: not read": "no media uploads",
    "query parameter upload_protocol: not read": "no media uploads",
    "query parameter alt: enum ['json'] here, ['json', 'media', 'proto'] there": "answers are JSON only",
    "response Company.googleWorkspaceAccount: not returned": "Google Workspace customers do not exist here",
    "response Company.languageCode: not returned": "accepted and not stored",
    "response Company.ownerEmails: not returned": "input only, as on Google's API",
    "response Company.skipWelcomeEmail: not returned": "accepted and not stored (no e-mail is sent)",
    "response Device.configuration: not returned": "EMM configurations are the customer API's",
    "response DeviceClaim.additionalService: not returned": "no additional services",
    "response DeviceClaim.googleWorkspaceCustomerId: not returned": "Google Workspace customers do not exist here",
    "response DeviceClaim.vacationModeExpireTime: not returned": "vacation mode is accepted and ignored",
    "response DeviceClaim.vacationModeStartTime: not returned": "vacation mode is accepted and ignored",
    "response DeviceIdentifier.chromeOsAttestedDeviceId: not returned": "a device keeps only the ids it is found by",
    "response DeviceIdentifier.deviceType: not returned": "a device keeps only the ids it is found by",
    "response DeviceIdentifier.imei2: not returned": "a device keeps only the ids it is found by",
    "response DeviceIdentifier.meid2: not returned": "a device keeps only the ids it is found by",
    "response Operation.error: not returned": "never set: each device's outcome is in its own result",
}


@cache
def discovery() -> dict[str, Any]:
    """The discovery document google-api-python-client ships (found through .venv-compat)."""
    where = subprocess.run(
        [
            str(compat_python()),
            "-c",
            "import pathlib, googleapiclient; print(pathlib.Path(googleapiclient.__file__).parent / "
            "'discovery_cache' / 'documents' / 'androiddeviceprovisioning.v1.json')",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    loaded: dict[str, Any] = json.loads(Path(where).read_text(encoding="utf-8"))
    return loaded


def _methods(resources: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in resources.items():
        for verb, method in resource.get("methods", {}).items():
            yield f"{prefix}{name}.{verb}", method
        yield from _methods(resource.get("resources", {}), f"{prefix}{name}.")


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _their_path(method: dict[str, Any]) -> str:
    """The discovery ``path`` with each parameter expanded by its pattern (``{+name}`` with
    ``^partners/[^/]+/devices/[^/]+$`` is ``partners/{}/devices/{}``), as a URL shape."""

    def expand(found: re.Match[str]) -> str:
        pattern = method["parameters"][found.group(1)]["pattern"].strip("^$")
        return pattern.replace("[^/]+", "{}").replace(".*", "{}")

    return "/" + re.sub(r"\{\+?([^}]+)\}", expand, method["path"])


def _ours() -> dict[str, tuple[str, str, dict[str, Any]]]:
    doc = DOCUMENT.build()
    return {
        op["operationId"]: (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
    }


def _resolve(schema: Schema, components: dict[str, Schema]) -> Schema:
    """Through ``$ref`` and msgspec's ``anyOf [X, null]`` to the object, array or value schema."""
    while True:
        if "$ref" in schema:
            schema = components[schema["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in schema and "properties" not in schema:
            schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
        else:
            return schema


def _compare_bodies(side: str, theirs: str, ours: Schema, components: dict[str, Schema]) -> Iterator[str]:
    """Property names of discovery schema ``theirs`` against ours, recursively by wire name."""
    schemas = discovery()["schemas"]
    seen: set[tuple[str, int]] = set()

    def walk(name: str, their: Schema, our: Schema) -> Iterator[str]:
        our = _resolve(our, components)
        if (name, id(our)) in seen:
            return
        seen.add((name, id(our)))
        their_props = {
            p: s
            for p, s in their.get("properties", {}).items()
            if not (side == "request" and s.get("readOnly"))
        }
        our_props = our.get("properties", {})
        for prop in sorted(their_props.keys() - our_props.keys()):
            yield f"{side} {name}.{prop}: {'not accepted' if side == 'request' else 'not returned'}"
        for prop in sorted(our_props.keys() - their_props.keys() - {"@type"}):
            yield f"{side} {name}.{prop}: not in the discovery document"
        for prop in sorted(their_props.keys() & our_props.keys()):
            yield from walk_value(f"{name}.{prop}", their_props[prop], our_props[prop])

    def walk_value(where: str, their: Schema, our: Schema) -> Iterator[str]:
        our = _resolve(our, components)
        if where in (_METADATA, _RESPONSE):  # Any with an @type: the reseller guide names the types
            typed = "DevicesLongRunningOperation" + ("Metadata" if where == _METADATA else "Response")
            yield from walk(typed, schemas[typed], our)
        elif their.get("type") == "array":
            yield from walk_value(where, their["items"], our.get("items", {}))
        elif "$ref" in their:
            yield from walk(their["$ref"], schemas[their["$ref"]], our)

    yield from walk(theirs, schemas[theirs], ours)


def differences() -> set[str]:
    found: set[str] = set()
    doc = DOCUMENT.build()
    components = doc["components"]["schemas"]
    ours = _ours()
    methods = dict(_methods(discovery()["resources"]))
    global_params = discovery()["parameters"]
    for method_id, method in methods.items():
        if method_id.startswith("customers."):
            found.add("customers.*: not implemented")
            continue
        if method_id not in ours:
            found.add(f"{method_id}: not implemented")
            continue
        http_method, path, op = ours[method_id]
        if method["httpMethod"] != http_method:
            found.add(f"{method_id}: {http_method} here, {method['httpMethod']} there")
        if _their_path(method) != _shape(path):
            found.add(f"{method_id}: {path} here, {method['path']} there")
        params = {p["name"]: p for p in op.get("parameters", ())}
        their_path = sorted(p for p, s in method.get("parameters", {}).items() if s["location"] == "path")
        our_path = sorted(p for p, s in params.items() if s["in"] == "path")
        if their_path != our_path:
            found.add(f"{method_id}: path parameters {their_path} are {our_path} here")
        elif method_id == "operations.get":
            found.add("operations.get: path parameter name is the part after operations/")
        their_query = {p: s for p, s in method.get("parameters", {}).items() if s["location"] == "query"}
        for name in sorted(their_query.keys() - params.keys()):
            found.add(f"{method_id}: query parameter {name} not read")
        our_query = {p for p, s in params.items() if s["in"] == "query"}
        for name in sorted(our_query - their_query.keys() - global_params.keys()):
            found.add(f"{method_id}: query parameter {name} not in the discovery document")
        for name, their in {**global_params, **their_query}.items():
            if name not in params:
                continue
            our_enum, their_enum = params[name]["schema"].get("enum"), their.get("enum")
            if our_enum != their_enum:
                found.add(f"query parameter {name}: enum {our_enum} here, {their_enum} there")
        if "request" in method:
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            found.update(_compare_bodies("request", method["request"]["$ref"], body, components))
        answer = op["responses"]["200"]["content"]["application/json"]["schema"]
        found.update(_compare_bodies("response", method["response"]["$ref"], answer, components))
    for name in global_params:
        if not all(name in {p["name"] for p in op.get("parameters", ())} for _, _, op in ours.values()):
            found.add(f"query parameter {name}: not read")
    for method_id in ours.keys() - methods.keys():
        found.add(f"{method_id}: not in the discovery document")
    return found


def test_every_difference_from_googles_discovery_document_is_explained() -> None:
    found = differences()
    unexplained = sorted(found - EXPLAINED.keys())
    gone = sorted(EXPLAINED.keys() - found)
    assert (unexplained, gone) == ([], []), (
        "fix the document, or explain the difference in EXPLAINED and docs"
    )


def test_the_comparison_sees_every_partner_method_of_the_discovery_document() -> None:
    """The walk is not vacuous: the discovery document has the methods we implement, by our ids."""
    ids = {method_id for method_id, _ in _methods(discovery()["resources"])}
    assert _ours().keys() <= ids
    assert len(_ours()) == 12
