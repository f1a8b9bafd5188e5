"""Fuzz the reseller object model from its served document, as the fuzz partner.

The methods take their ids in the body, not the path, so the harness's ``seeded`` pass (path
parameters) does not apply: instead every other generated request has its ids replaced by ones
that exist (a customer, a claimed device, a finished operation), so the success answers of
getOperation, findDevicesByOwner, claimDevice and unclaimDevice are checked too.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from schemathesis import Case

from tests.fuzz.harness import FuzzTarget, fuzz_operation, imei, load_schema, operations


@dataclass(frozen=True)
class Seeds:
    customer: dict[str, Any]  # a CompanyReference
    device_id: str
    operation_id: str


def _call(fuzz: FuzzTarget, method: str, body: dict[str, Any]) -> dict[str, Any]:
    with fuzz.server.http() as http:
        r = http.post(f"/reseller/v1/{method}", json=body, headers=fuzz.bearer(fuzz.partner_token))
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def _imei(n: int) -> str:
    return imei(n, "35")


@pytest.fixture(scope="session")
def reseller_seeds(fuzz: FuzzTarget) -> Seeds:
    customer = _call(fuzz, "createCustomer", {"companyName": "Fuzz Seeds"})["companyReference"]
    device = _call(
        fuzz,
        "claimDevice",
        {"deviceIdentifier": {"imei": _imei(1), "manufacturer": "Google"}, "customer": customer},
    )
    claims = [
        {"deviceIdentifier": {"imei": _imei(n), "manufacturer": "Google"}, "customer": customer}
        for n in (2, 3)
    ]
    [op] = _call(fuzz, "claimDevicesAsync", {"claims": claims})["operations"]
    deadline = time.monotonic() + 30
    while _call(fuzz, "getOperation", {"operationId": op["operationId"]})["state"] == "IN_PROGRESS":
        assert time.monotonic() < deadline, "the seed operation did not finish"
        time.sleep(0.05)
    return Seeds(customer, device["deviceId"], op["operationId"])


_FRESH = itertools.count(1000)  # IMEIs of devices no seed or earlier case has claimed


def _fresh_device() -> dict[str, str]:
    return {"imei": _imei(next(_FRESH)), "manufacturer": "Google"}


def _with_seeds(fuzz: FuzzTarget, path: str, body: Any, seeds: Seeds) -> None:
    """Name the seeded customer, device and operation wherever the body names one.

    claimDevice gets a device nobody holds (so it can succeed), unclaimDevice one claimed just
    before (so it can succeed, where the seeded device is gone after the first unclaim).
    """
    if not isinstance(body, dict):
        return
    _with_ids(body, seeds)
    if path.endswith("/claimDevice"):
        body["deviceIdentifier"] = _fresh_device()
        body["customer"] = dict(seeds.customer)
    if path.endswith("/unclaimDevice"):
        claim = {"deviceIdentifier": _fresh_device(), "customer": seeds.customer}
        body["deviceId"] = _call(fuzz, "claimDevice", claim)["deviceId"]
        body.pop("deviceIdentifier", None)


def _with_ids(body: Any, seeds: Seeds) -> None:
    if not isinstance(body, dict):
        return
    if isinstance(body.get("operationId"), str):
        body["operationId"] = seeds.operation_id
    if isinstance(body.get("deviceId"), str):
        body["deviceId"] = seeds.device_id
    if isinstance(body.get("customer"), dict):
        body["customer"] = dict(seeds.customer)
    for key in ("customers", "claims", "unclaims"):
        items = body.get(key)
        if isinstance(items, list):
            for i, item in enumerate(items):
                if key == "customers" and isinstance(item, dict):
                    items[i] = dict(seeds.customer)
                else:
                    _with_ids(item, seeds)


@pytest.fixture(scope="session")
def reseller_schema(fuzz: FuzzTarget) -> schemathesis.BaseSchema:
    return load_schema(fuzz, "/openapi/reseller.json", fuzz.bearer(fuzz.partner_token))


@pytest.mark.parametrize(("method", "path"), operations("reseller"))
def test_reseller(
    method: str, path: str, fuzz: FuzzTarget, reseller_schema: schemathesis.BaseSchema, reseller_seeds: Seeds
) -> None:
    turn = itertools.count()

    def credentials(case: Case) -> dict[str, str]:
        if next(turn) % 2:
            _with_seeds(fuzz, path, case.body, reseller_seeds)
        return fuzz.bearer(fuzz.partner_token)

    fuzz_operation(fuzz, reseller_schema, "reseller", method, path, credentials)
