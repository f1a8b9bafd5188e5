"""Fuzz the DPS device API from its served document, each case signed as the device its path names.

Every generated registration id is a member of the fuzz server's symmetric-key group, so a valid
case really registers (to the hub linked below) and the answers of success are checked too; the
seeded pass polls and looks up devices registered before the run, and registers a TPM device
unsigned, with its enrolled EK, which is answered with the TPM challenge (or a 400 for the
fuzzer's storage root key).
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from schemathesis import Case
from schemathesis.core.parameters import ParameterLocation

from provisiond.domain.sas import build_sas, derive_device_key
from tests.fuzz.harness import GROUP_KEY, FuzzTarget, fuzz_operation, load_schema, operations
from tests.support.tpm import SoftwareKeys

HUB = "fuzz-hub.example"
POLLED = "fuzz-device-polled"  # the status lookup's and the poll's device
TPM_DEVICE = "fuzz-tpm-device"  # an individual TPM enrollment: the register call's seeded device


@dataclass
class Seeds:
    """Seeded path parameters per method (one operation per method), and the TPM's keys."""

    paths: dict[str, dict[str, Any]]
    tpm: SoftwareKeys = field(default_factory=SoftwareKeys)


@pytest.fixture(scope="session")
def dps_device_seeds(fuzz: FuzzTarget) -> Seeds:
    """A linked hub, a device that registered (assigned to it), and a TPM device's enrollment."""
    fuzz.server.cli("dps", "hub", "add", HUB)
    operation_id = fuzz.server.register_device(POLLED, derive_device_key(GROUP_KEY, POLLED))
    polled = {"registrationId": POLLED, "operationId": operation_id}
    seeds = Seeds({"POST": polled, "GET": polled, "PUT": {"registrationId": TPM_DEVICE}})
    enrollment = {
        "registrationId": TPM_DEVICE,
        "attestation": {"type": "tpm", "tpm": {"endorsementKey": seeds.tpm.ek}},
    }
    with fuzz.server.http() as http:
        r = http.put(
            f"/enrollments/{TPM_DEVICE}",
            params={"api-version": "2021-10-01"},
            json=enrollment,
            headers={"Authorization": fuzz.service_sas()},
        )
    assert r.status_code == 200, r.text
    time.sleep(1.2)  # the poll's Retry-After (1 s): the seeded pass polls after it, and gets 200s
    return seeds


@pytest.fixture(scope="session")
def dps_device_schema(fuzz: FuzzTarget, dps_device_seeds: Seeds) -> schemathesis.BaseSchema:
    token = fuzz.device_sas(POLLED)  # a device's token, as the document is served to devices
    return load_schema(fuzz, "/openapi/dps-device.json", {"Authorization": token})


def device_credentials(fuzz: FuzzTarget, seeds: Seeds, case: Case) -> dict[str, str]:
    """The token of the device the case's path names, and its body naming the same device.

    A header carries only printable ASCII: for any other generated id (the negative pass makes
    them) the token's resource is percent-encoded, as the Python SDK writes it, and signed as sent.
    A valid body's ``registrationId`` is made the path's (the server refuses a body naming
    another device), so valid cases register. The TPM device calls unsigned, with its EK.
    """
    rid = str((case.path_parameters or {}).get("registrationId", ""))
    body = case.body
    negative = case.meta is not None and case.meta.is_negative_at(ParameterLocation.BODY)
    valid_body = isinstance(body, dict) and not negative
    if valid_body and "registrationId" in body:
        body["registrationId"] = rid
    if rid.lower() == TPM_DEVICE:
        if valid_body:
            presented = body.get("tpm") or {}
            srk = presented.get("storageRootKey", seeds.tpm.srk)  # the fuzzer's, when it made one
            body["tpm"] = {"endorsementKey": seeds.tpm.ek, "storageRootKey": srk}
        return {}  # unsigned (unless schemathesis made up an Authorization, which gets a 401)
    if rid.isascii() and rid.isprintable() and " " not in rid:
        return {"Authorization": fuzz.device_sas(rid)}
    resource = urllib.parse.quote(f"{fuzz.server.id_scope}/registrations/{rid}", safe="")
    key = derive_device_key(GROUP_KEY, rid) if _encodable(rid) else GROUP_KEY
    return {"Authorization": build_sas(key, resource, int(time.time()) + 3600, "registration")}


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


@pytest.mark.parametrize(("method", "path"), operations("dps-device"))
def test_dps_device(
    method: str,
    path: str,
    fuzz: FuzzTarget,
    dps_device_schema: schemathesis.BaseSchema,
    dps_device_seeds: Seeds,
) -> None:
    fuzz_operation(
        fuzz,
        dps_device_schema,
        "dps-device",
        method,
        path,
        lambda case: device_credentials(fuzz, dps_device_seeds, case),
        path_parameters={"idScope": fuzz.server.id_scope},
        seeded=dps_device_seeds.paths[method],
    )
