"""Fuzz the zero-touch reseller API from its served document, as the fuzz partner.

``partnerId`` is always the partner's own (another is only ever 403). Seeded: a customer, a device
claimed for it, and a finished claimAsync operation, so the ``seeded`` pass reads and updates
resources that exist (``deviceId``, the operation's ``name``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import schemathesis

from tests.fuzz.harness import FuzzTarget, fuzz_operation, imei, load_schema, operations

SECTION = "SECTION_TYPE_ZERO_TOUCH"


def _imei(n: int) -> str:
    return imei(n, "49")


def _call(fuzz: FuzzTarget, method: str, path: str, body: Any = None) -> Any:
    with fuzz.server.http() as http:
        r = http.request(method, path, json=body, headers=fuzz.bearer(fuzz.partner_token))
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="session")
def zerotouch_seeds(fuzz: FuzzTarget) -> dict[str, str]:
    """The fuzz partner's customer, a device claimed for it, and a finished operation."""
    partner = f"/v1/partners/{fuzz.partner_id}"
    customer = _call(
        fuzz,
        "POST",
        f"{partner}/customers",
        {"customer": {"companyName": "Fuzz", "ownerEmails": ["o@fuzz.example"]}},
    )["companyId"]
    claim = {"customerId": customer, "sectionType": SECTION}
    device = _call(
        fuzz,
        "POST",
        f"{partner}/devices:claim",
        {**claim, "deviceIdentifier": {"imei": _imei(1), "manufacturer": "Google"}},
    )["deviceId"]
    items = [
        {**claim, "deviceIdentifier": {"imei": _imei(2), "manufacturer": "Google"}},
        {"sectionType": SECTION},
    ]
    op = _call(fuzz, "POST", f"{partner}/devices:claimAsync", {"claims": items})
    deadline = time.monotonic() + 30
    while not op["done"]:
        assert time.monotonic() < deadline, op
        time.sleep(0.1)
        op = _call(fuzz, "GET", f"/v1/{op['name']}")
    return {"deviceId": device, "name": op["name"].removeprefix("operations/")}


@pytest.fixture(scope="session")
def zerotouch_schema(fuzz: FuzzTarget) -> schemathesis.BaseSchema:
    return load_schema(fuzz, "/openapi/zerotouch.json", fuzz.bearer(fuzz.partner_token))


@pytest.mark.parametrize(("method", "path"), operations("zerotouch"))
def test_zerotouch(
    method: str,
    path: str,
    fuzz: FuzzTarget,
    zerotouch_schema: schemathesis.BaseSchema,
    zerotouch_seeds: dict[str, str],
) -> None:
    fixed = {"partnerId": fuzz.partner_id} if "{partnerId}" in path else {}
    fuzz_operation(
        fuzz,
        zerotouch_schema,
        "zerotouch",
        method,
        path,
        lambda case: fuzz.bearer(fuzz.partner_token),
        path_parameters=fixed,
        seeded=zerotouch_seeds,
    )
