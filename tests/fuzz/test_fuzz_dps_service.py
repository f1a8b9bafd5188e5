"""Fuzz the DPS service API from its served document, signed with the owner policy's key."""

from __future__ import annotations

import pytest
import schemathesis

from tests.fuzz.harness import FuzzTarget, fuzz_operation, load_schema, operations


@pytest.fixture(scope="session")
def dps_service_schema(fuzz: FuzzTarget) -> schemathesis.BaseSchema:
    return load_schema(fuzz, "/openapi/dps-service.json", {"Authorization": fuzz.service_sas()})


@pytest.mark.parametrize(("method", "path"), operations("dps-service"))
def test_dps_service(
    method: str, path: str, fuzz: FuzzTarget, dps_service_schema: schemathesis.BaseSchema
) -> None:
    fuzz_operation(
        fuzz,
        dps_service_schema,
        "dps-service",
        method,
        path,
        lambda case: {"Authorization": fuzz.service_sas()},
    )
