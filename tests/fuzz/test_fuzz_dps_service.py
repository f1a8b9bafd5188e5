"""Fuzz the DPS service API from its served document, signed with the owner policy's key.

The seeded pass works on an individual enrollment, a group and a registration state made before
each operation (a DELETE in an earlier test may have removed them); they are apart from the
fuzz target's ``fuzz-group``, which the device API's fuzzing registers through.
"""

from __future__ import annotations

import pytest
import schemathesis

from provisiond.domain.sas import derive_device_key
from tests.fuzz.harness import GROUP_KEY, FuzzTarget, fuzz_operation, load_schema, operations

API = {"api-version": "2021-10-01"}
DEVICE, GROUP = "seed-device", "seed-group"
KEYS = {"primaryKey": GROUP_KEY, "secondaryKey": GROUP_KEY}


@pytest.fixture(scope="session")
def dps_service_schema(fuzz: FuzzTarget) -> schemathesis.BaseSchema:
    return load_schema(fuzz, "/openapi/dps-service.json", {"Authorization": fuzz.service_sas()})


def _seed(fuzz: FuzzTarget) -> dict[str, str]:
    """The seeded resources, (re)made; the path parameter each operation's seeded pass uses."""
    auth = {"Authorization": fuzz.service_sas()}
    with fuzz.server.http() as http:
        for path, body in (
            (f"/enrollments/{DEVICE}", {"registrationId": DEVICE}),
            (f"/enrollmentGroups/{GROUP}", {"enrollmentGroupId": GROUP}),
        ):
            body["attestation"] = {"type": "symmetricKey", "symmetricKey": KEYS}  # type: ignore[assignment]
            r = http.put(path, params=API, json=body, headers=auth)
            assert r.status_code == 200, r.text
    fuzz.server.register_device(DEVICE, GROUP_KEY)
    fuzz.server.register_device(f"{GROUP}-member", derive_device_key(GROUP_KEY, f"{GROUP}-member"))
    return {"id": DEVICE}


@pytest.mark.parametrize(("method", "path"), operations("dps-service"))
def test_dps_service(
    method: str, path: str, fuzz: FuzzTarget, dps_service_schema: schemathesis.BaseSchema
) -> None:
    seeded = _seed(fuzz)
    if path.startswith("/enrollmentGroups/") or path == "/registrations/{id}/query":
        seeded = {"id": GROUP}
    fuzz_operation(
        fuzz,
        dps_service_schema,
        "dps-service",
        method,
        path,
        lambda case: {"Authorization": fuzz.service_sas()},
        seeded=seeded,
    )
