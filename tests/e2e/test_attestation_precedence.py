"""Attestation precedence against a real server, over HTTPS and MQTT.

The rule (docs/devices.md): when an individual enrollment exists for a registration id, it alone
decides, with its credential and its provisioningStatus; groups are consulted only when none
exists. A disabled individual enrollment is how one member of a group is blocked
("disenrollment"), so a device that proves itself with its group's credential must get the
individual enrollment's ``disabled`` result, never the group's hub.

Each case is one cell of {no individual, enabled individual, disabled individual} x {the
individual's own key, the group-derived key, an X.509 leaf of a group's chain}. Every device
registers with a fresh id; the group enrollments are this module's own (their own key and CA), so
the groups other tests create on the shared server cannot answer for them. Who decided is read
from the hub the device was assigned (each enrollment names its own hub).
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisiond.domain.sas import build_sas, derive_device_key
from tests.compat.support import link_hub, service_request
from tests.support.mqtt import device_connect
from tests.support.pki import Issued, issue
from tests.support.server import ServerProcess

API = {"api-version": "2019-03-31"}
REGISTER = "$dps/registrations/PUT/iotdps-register/?$rid={rid}"
INDIVIDUAL_KEY = "aW5kaXZpZHVhbGtleWluZGl2aWR1YWxrZXlpbmRpdmk="
GROUP_KEY = "Z3JvdXBrZXlncm91cGtleWdyb3Vwa2V5Z3JvdXBrZXk="


@dataclass(frozen=True)
class Fleet:
    """This module's enrollment groups and the hub each enrollment assigns to."""

    group_key: str
    group_ca: Issued
    individual_hub: str
    group_hub: str
    x509_group_hub: str


@pytest.fixture(scope="module")
def fleet(server: ServerProcess) -> Iterator[Fleet]:
    suffix = uuid.uuid4().hex[:8]
    fleet = Fleet(
        group_key=GROUP_KEY,
        group_ca=issue(f"precedence CA {suffix}", ca=True),
        individual_hub=link_hub(server, "individual"),
        group_hub=link_hub(server, "symgroup"),
        x509_group_hub=link_hub(server, "x509group"),
    )
    sym = {
        "enrollmentGroupId": f"prec-sym-{suffix}",
        "attestation": {
            "type": "symmetricKey",
            "symmetricKey": {"primaryKey": fleet.group_key, "secondaryKey": fleet.group_key},
        },
        "iotHubs": [fleet.group_hub],
    }
    x509 = {
        "enrollmentGroupId": f"prec-x509-{suffix}",
        "attestation": {
            "type": "x509",
            "x509": {"signingCertificates": {"primary": {"certificate": fleet.group_ca.pem}}},
        },
        "iotHubs": [fleet.x509_group_hub],
    }
    for body in (sym, x509):
        r = service_request(server, "PUT", f"/enrollmentGroups/{body['enrollmentGroupId']}", json=body)
        assert r.status_code == 200, r.text
    yield fleet
    for body in (sym, x509):
        service_request(server, "DELETE", f"/enrollmentGroups/{body['enrollmentGroupId']}")


def enroll_individual(server: ServerProcess, fleet: Fleet, rid: str, status: str) -> None:
    body = {
        "registrationId": rid,
        "attestation": {
            "type": "symmetricKey",
            "symmetricKey": {"primaryKey": INDIVIDUAL_KEY, "secondaryKey": INDIVIDUAL_KEY},
        },
        "iotHubs": [fleet.individual_hub],
        "provisioningStatus": status,
    }
    r = service_request(server, "PUT", f"/enrollments/{rid}", json=body)
    assert r.status_code == 200, r.text


# What each cell must give: ("assigned", <who decided>), ("disabled", None) or a refusal.
ROWS = ("none", "enabled", "disabled")
CREDENTIALS = ("individual key", "group key", "group x509")
EXPECTED: dict[tuple[str, str], tuple[str, str | None]] = {
    ("none", "individual key"): ("unknown", None),
    ("none", "group key"): ("assigned", "group_hub"),
    ("none", "group x509"): ("assigned", "x509_group_hub"),
    ("enabled", "individual key"): ("assigned", "individual_hub"),
    ("enabled", "group key"): ("refused", None),
    ("enabled", "group x509"): ("refused", None),
    ("disabled", "individual key"): ("disabled", None),
    ("disabled", "group key"): ("disabled", None),
    ("disabled", "group x509"): ("disabled", None),
}


def prepare(server: ServerProcess, fleet: Fleet, row: str) -> str:
    rid = f"prec-{row}-{uuid.uuid4().hex[:10]}"
    if row != "none":
        enroll_individual(server, fleet, rid, "enabled" if row == "enabled" else "disabled")
    return rid


def device_key(fleet: Fleet, credential: str, rid: str) -> str | None:
    if credential == "individual key":
        return INDIVIDUAL_KEY
    if credential == "group key":
        return derive_device_key(fleet.group_key, rid)
    return None


def leaf_files(fleet: Fleet, rid: str, tmp_path: Path) -> tuple[Path, Path]:
    return issue(rid, fleet.group_ca).write(tmp_path, rid)


def recorded_state(server: ServerProcess, rid: str) -> dict[str, Any] | None:
    r = service_request(server, "GET", f"/registrations/{rid}")
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    state: dict[str, Any] = r.json()
    return state


def check_outcome(
    server: ServerProcess, fleet: Fleet, rid: str, expected: tuple[str, str | None], refusal: str | None
) -> None:
    """The cell's outcome, read back through the service API (what an operator sees)."""
    outcome, hub_field = expected
    state = recorded_state(server, rid)
    if outcome in ("unknown", "refused"):
        assert refusal == outcome, f"expected {outcome}, the device got {refusal!r}"
        assert state is None, f"a refused device left a registration state: {state}"
        return
    assert refusal is None, f"the device was refused ({refusal}) but should be {outcome}"
    assert state is not None
    if outcome == "disabled":
        assert (state["status"], state.get("assignedHub")) == ("disabled", None), state
        assert "enrollmentGroupId" not in state, f"a group decided for a disenrolled device: {state}"
        return
    assert hub_field is not None
    assert (state["status"], state["assignedHub"]) == ("assigned", getattr(fleet, hub_field)), state


# -- HTTPS -----------------------------------------------------------------------------------------


def https_register(
    server: ServerProcess, rid: str, key: str | None, cert: tuple[Path, Path] | None
) -> str | None:
    """Register over HTTPS; ``None`` if accepted, else "refused" (401) or "unknown" (404)."""
    context = ssl.create_default_context(cafile=server.ca)
    headers = {}
    if cert is not None:
        context.load_cert_chain(*cert)
    if key is not None:
        sr = f"{server.id_scope}/registrations/{rid}"
        headers["Authorization"] = build_sas(key, sr, int(time.time()) + 600, "registration")
    with httpx.Client(base_url=server.base_url, verify=context, trust_env=False, timeout=30) as client:
        r = client.put(
            f"/{server.id_scope}/registrations/{rid}/register",
            params=API,
            json={"registrationId": rid},
            headers=headers,
        )
    if r.status_code == 202:
        return None
    assert r.status_code in (401, 404), r.text
    return "refused" if r.status_code == 401 else "unknown"


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("row", ROWS)
def test_precedence_over_https(
    server: ServerProcess, fleet: Fleet, tmp_path: Path, row: str, credential: str
) -> None:
    rid = prepare(server, fleet, row)
    cert = leaf_files(fleet, rid, tmp_path) if credential == "group x509" else None
    refusal = https_register(server, rid, device_key(fleet, credential, rid), cert)
    check_outcome(server, fleet, rid, EXPECTED[row, credential], refusal)


# -- MQTT --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("row", ROWS)
async def test_precedence_over_mqtt(
    server: ServerProcess, fleet: Fleet, tmp_path: Path, row: str, credential: str
) -> None:
    rid = prepare(server, fleet, row)
    cert = leaf_files(fleet, rid, tmp_path) if credential == "group x509" else None
    client, connack = await device_connect(
        server.mqtt_port,
        server.ca,
        server.id_scope,
        rid,
        device_key(fleet, credential, rid),
        cert=(str(cert[0]), str(cert[1])) if cert else None,
    )
    refusal: str | None = None
    if connack.return_code == 0:
        answer = await client.request(REGISTER.format(rid="1"), json.dumps({"registrationId": rid}).encode())
        assert answer.topic.startswith("$dps/registrations/res/202/"), answer.topic
    else:
        # MQTT has one refusal for both: CONNACK 5, not authorized.
        assert connack.return_code == 5, connack
        expected = EXPECTED[row, credential][0]
        refusal = expected if expected in ("refused", "unknown") else f"CONNACK {connack.return_code}"
    await client.close()
    check_outcome(server, fleet, rid, EXPECTED[row, credential], refusal)
