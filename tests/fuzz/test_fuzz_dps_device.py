"""Fuzz the DPS device API from its served document, each case signed as the device its path names.

Every generated registration id is a member of the fuzz server's symmetric-key group, so a valid
case really registers (to the hub linked below) and the answers of success are checked too; the
seeded pass polls and looks up devices registered before the run.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import pytest
import schemathesis
from schemathesis import Case
from schemathesis.core.parameters import ParameterLocation

from provisiond.domain.sas import build_sas, derive_device_key
from tests.fuzz.harness import GROUP_KEY, FuzzTarget, fuzz_operation, load_schema, operations

HUB = "fuzz-hub.example"
POLLED = "fuzz-device-polled"  # the status lookup's and the poll's device
REREGISTERED = "fuzz-device-reregistered"  # registers again in the register operation's seeded pass


@pytest.fixture(scope="session")
def dps_device_seeds(fuzz: FuzzTarget) -> dict[str, dict[str, Any]]:
    """Seeded path parameters per operation: devices that registered (assigned to a linked hub)."""
    fuzz.server.cli("dps", "hub", "add", HUB)
    operation_id = fuzz.server.register_device(POLLED, derive_device_key(GROUP_KEY, POLLED))
    fuzz.server.register_device(REREGISTERED, derive_device_key(GROUP_KEY, REREGISTERED))
    time.sleep(1.2)  # the poll's Retry-After (1 s): the seeded pass polls after it, and gets 200s
    polled = {"registrationId": POLLED, "operationId": operation_id}
    return {"POST": polled, "GET": polled, "PUT": {"registrationId": REREGISTERED}}


@pytest.fixture(scope="session")
def dps_device_schema(
    fuzz: FuzzTarget, dps_device_seeds: dict[str, dict[str, Any]]
) -> schemathesis.BaseSchema:
    token = fuzz.device_sas(POLLED)  # a device's token, as the document is served to devices
    return load_schema(fuzz, "/openapi/dps-device.json", {"Authorization": token})


def device_credentials(fuzz: FuzzTarget, case: Case) -> dict[str, str]:
    """The token of the device the case's path names, and its body naming the same device.

    A header carries only printable ASCII: for any other generated id (the negative pass makes
    them) the token's resource is percent-encoded, as the Python SDK writes it, and signed as sent.
    A valid body's ``registrationId`` is made the path's (the server refuses a body naming
    another device), so valid cases register.
    """
    rid = str((case.path_parameters or {}).get("registrationId", ""))
    if rid.isascii() and rid.isprintable() and " " not in rid:
        token = fuzz.device_sas(rid)
    else:
        resource = urllib.parse.quote(f"{fuzz.server.id_scope}/registrations/{rid}", safe="")
        key = derive_device_key(GROUP_KEY, rid) if _encodable(rid) else GROUP_KEY
        token = build_sas(key, resource, int(time.time()) + 3600, "registration")
    body = case.body
    if (
        isinstance(body, dict)
        and "registrationId" in body
        and not case.meta.is_negative_at(ParameterLocation.BODY)
    ):
        body["registrationId"] = rid
    return {"Authorization": token}


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
    dps_device_seeds: dict[str, dict[str, Any]],
) -> None:
    fuzz_operation(
        fuzz,
        dps_device_schema,
        "dps-device",
        method,
        path,
        lambda case: device_credentials(fuzz, case),
        path_parameters={"idScope": fuzz.server.id_scope},
        seeded=dps_device_seeds[method],
    )
