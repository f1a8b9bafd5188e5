"""The device API's OpenAPI document against what the official Node device SDK's HTTP transport
sends: methods, paths, api-version, query parameters and body fields.

Azure publishes the device API's swagger only on GitHub, which the test environment cannot reach;
the Node SDK installed for the compat suites (tests/compat/node/node_modules) is the
machine-readable description at hand. Its transport (``azure-iot-provisioning-device-http``'s
``dist/http.js``) and constants (``azure-iot-provisioning-device``'s ``dist/constants.js``) are
read as text, and every difference from our document must be one of ``EXPLAINED`` (docs/openapi.md,
"DPS device API", says why each is so); a new difference, or one that went away, fails the test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provisiond.api.dps_device.openapi import DOCUMENT
from tests.compat.support import NODE_DIR

pytestmark = pytest.mark.compat

MODULES = NODE_DIR / "node_modules"
TRANSPORT = MODULES / "azure-iot-provisioning-device-http" / "dist" / "http.js"
CONSTANTS = MODULES / "azure-iot-provisioning-device" / "dist" / "constants.js"

STATUS_LOOKUP = "POST /{idScope}/registrations/{registrationId}"

# Every difference, as ("ours" | "sdk", what): only in our document, or only in what the SDK sends.
EXPLAINED = {
    ("ours", f"operation {STATUS_LOOKUP}"),  # DPS's status lookup: no SDK transport calls it
    ("ours", "register body field csr"),  # 2025-07-01-preview certificate issuance; the SDK predates it
    ("sdk", "register query forceRegistration"),  # accepted and ignored, as DPS documents none
    ("sdk", "GET /{idScope}/registrations/{registrationId}/operations/{operationId} body"),  # "{}"
}


@dataclass
class SdkCall:
    method: str
    path: str
    query: dict[str, str]
    body_fields: set[str] = field(default_factory=set)
    sends_body: bool = False


def _source(path: Path) -> str:
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: run `make test` (or `npm ci` in {NODE_DIR}) first")
    return path.read_text(encoding="utf-8")


def _api_version() -> str:
    match = re.search(r"ProvisioningDeviceConstants\.apiVersion = '([^']+)'", _source(CONSTANTS))
    assert match, "constants.js no longer sets apiVersion"
    return match.group(1)


def _template(expression: str, api_version: str) -> str:
    """A JS string concatenation of the transport as our path template (with its query)."""
    names = {
        "request.idScope": "{idScope}",
        "request.registrationId": "{registrationId}",
        "operationId": "{operationId}",
        "azure_iot_provisioning_device_1.ProvisioningDeviceConstants.apiVersion": api_version,
    }
    parts = [part.strip() for part in expression.split("+")]
    return "".join(part[1:-1] if part.startswith("'") else names[part] for part in parts)


def sdk_calls() -> list[SdkCall]:
    """The calls the transport makes, read from its source: each ``let path = …`` is followed by
    extra query parameters (``path += '&name=true'``) and its ``executeApiCall(METHOD, path, …, body``."""
    source = _source(TRANSPORT)
    version = _api_version()
    calls = []
    pattern = r"let path = (.+?);(.*?)executeApiCall\('(\w+)', path, httpHeaders, (\w+|\{\})"
    for expression, between, method, body in re.findall(pattern, source, re.S):
        path, _, query = _template(expression, version).partition("?")
        params = dict(pair.split("=", 1) for pair in query.split("&"))
        params.update((name, "true") for name in re.findall(r"path \+= '&(\w+)=true'", between))
        calls.append(SdkCall(method, path, params, sends_body=True))
        if body == "requestBody":
            fields = set(re.findall(r"requestBody\.(\w+) =", source))
            fields |= set(re.findall(r"let requestBody = \{ (\w+):", source))
            tpm = re.search(r"this\._tpmPublicKeys = \{ (\w+): .*?, (\w+): ", source)
            assert tpm, "http.js no longer sends tpm keys as it did"
            calls[-1].body_fields = fields | {f"tpm.{name}" for name in tpm.groups()}
        else:
            assert body == "{}", f"{method} {path} sends an unexpected body: {body}"
    return calls


def _fields(doc: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> set[str]:
    """Field names of a request schema, one level into the objects it refers to."""
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    fields = set()
    for name, sub in schema.get("properties", {}).items():
        fields.add(prefix + name)
        if not prefix:
            options = sub.get("anyOf", [sub])
            for option in options:
                if "$ref" in option:
                    fields |= _fields(doc, option, f"{name}.")
    return fields


def differences() -> set[tuple[str, str]]:
    doc = DOCUMENT.build()
    ours = {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items()}
    found: set[tuple[str, str]] = set()
    calls = sdk_calls()
    for method, path in set(ours) - {(c.method, c.path) for c in calls}:
        found.add(("ours", f"operation {method} {path}"))
    for call in calls:
        label = f"{call.method} {call.path}"
        op = ours.get((call.method, call.path))
        if op is None:
            found.add(("sdk", f"operation {label}"))
            continue
        name = "register" if call.path.endswith("/register") else label
        params = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}
        for query, value in call.query.items():
            if query not in params:
                found.add(("sdk", f"{name} query {query}"))
            elif "enum" in params[query]["schema"] and value not in params[query]["schema"]["enum"]:
                found.add(("sdk", f"{name} query {query}={value}"))
        body = op.get("requestBody")
        if body is None:
            if call.sends_body:
                found.add(("sdk", f"{label} body"))
            continue
        documented = _fields(doc, body["content"]["application/json"]["schema"])
        found |= {("sdk", f"{name} body field {f}") for f in call.body_fields - documented}
        found |= {("ours", f"{name} body field {f}") for f in documented - call.body_fields if "." not in f}
    return found


def test_the_sdk_transport_is_read_as_expected() -> None:
    """The reading of http.js finds the two calls the SDK makes, with what they carry."""
    base = "/{idScope}/registrations/{registrationId}"
    calls = {(c.method, c.path): c for c in sdk_calls()}
    assert set(calls) == {("PUT", f"{base}/register"), ("GET", f"{base}/operations/{{operationId}}")}
    register = calls["PUT", f"{base}/register"]
    assert register.query == {"api-version": _api_version(), "forceRegistration": "true"}
    assert register.body_fields == {
        "registrationId",
        "payload",
        "tpm",
        "tpm.endorsementKey",
        "tpm.storageRootKey",
    }
    assert calls["GET", f"{base}/operations/{{operationId}}"].query == {"api-version": _api_version()}


def test_every_difference_from_the_node_sdk_is_explained() -> None:
    assert differences() == EXPLAINED
