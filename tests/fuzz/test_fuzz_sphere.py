"""Fuzz the Azure Sphere public API from its served document, as the fuzz tenant.

The path's tenant is always the token's (any other is a 403 before anything else is read); the
``seeded`` pass names a device the tenant has claimed and a finished operation.
"""

from __future__ import annotations

import time

import pytest
import schemathesis

from tests.fuzz.harness import FuzzTarget, fuzz_operation, load_schema, operations

SEEDED_DEVICE = "5EED" * 32


@pytest.fixture(scope="session")
def sphere_seeds(fuzz: FuzzTarget) -> dict[str, str]:
    root = f"/v2/tenants/{fuzz.tenant_id}"
    headers = fuzz.bearer(fuzz.tenant_token)
    with fuzz.server.http() as http:
        r = http.put(f"{root}/devices/{SEEDED_DEVICE}/claim", headers=headers)
        assert r.status_code == 202, r.text
        operation_id = r.json()["OperationId"]
        deadline = time.monotonic() + 30
        while http.get(f"{root}/operations/{operation_id}", headers=headers).json()["State"] != 2:
            assert time.monotonic() < deadline, "the seed claim did not complete"
            time.sleep(0.05)
    return {"deviceId": SEEDED_DEVICE, "operationId": operation_id}


@pytest.fixture(scope="session")
def sphere_schema(fuzz: FuzzTarget) -> schemathesis.BaseSchema:
    return load_schema(fuzz, "/openapi/sphere.json", fuzz.bearer(fuzz.tenant_token))


@pytest.mark.parametrize(("method", "path"), operations("sphere"))
def test_sphere(
    method: str,
    path: str,
    fuzz: FuzzTarget,
    sphere_schema: schemathesis.BaseSchema,
    sphere_seeds: dict[str, str],
) -> None:
    fuzz_operation(
        fuzz,
        sphere_schema,
        "sphere",
        method,
        path,
        lambda case: fuzz.bearer(fuzz.tenant_token),
        path_parameters={"tenantId": fuzz.tenant_id},
        seeded=sphere_seeds,
    )
