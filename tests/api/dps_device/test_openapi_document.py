"""The device API's OpenAPI document is served to a device the API would let register (its SAS
token, or its X.509 certificate), and to nobody else, who gets a 401 in DPS's error format."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from provisiond.api.dps_device.openapi import DOCUMENT
from provisiond.store.db import Database
from tests.api.conftest import DpsApi, running_app
from tests.api.dps_device.conftest import KEY2, enroll_group, group_device
from tests.support.clock import FakeClock
from tests.support.pki import Issued, issue

PATH = "/openapi/dps-device.json"


@pytest.fixture
async def dps(db: Database, tmp_path: Path) -> AsyncIterator[DpsApi]:
    # The in-process client (10.1.2.3) is a trusted proxy: a certificate rides in x-forwarded-client-cert.
    async with running_app(db, tmp_path / "data", FakeClock(), trusted_proxies=["10.0.0.0/8"]) as api:
        yield api


def _xfcc(cert: Issued) -> dict[str, str]:
    return {"x-forwarded-client-cert": f'Cert="{urllib.parse.quote(cert.pem)}"'}


def _refused(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["errorCode"] == 401000 and r.headers["x-ms-error-code"] == "401000"


async def test_a_group_members_token_gets_the_document(dps: DpsApi) -> None:
    await enroll_group(dps, "group-1")
    device = group_device(dps, "member-1")
    r = await dps.http.get(PATH, headers={"Authorization": device.token()})
    assert r.status_code == 200, r.text
    assert r.json() == DOCUMENT.build()


async def test_an_enrolled_certificate_gets_the_document(dps: DpsApi) -> None:
    cert = issue("x509-dev-1")
    enrollment = {
        "registrationId": "x509-dev-1",
        "attestation": {
            "type": "x509",
            "x509": {"clientCertificates": {"primary": {"certificate": cert.pem}}},
        },
    }
    assert (await dps.call("PUT", "/enrollments/x509-dev-1", json=enrollment)).status_code == 200
    r = await dps.http.get(PATH, headers=_xfcc(cert))
    assert r.status_code == 200, r.text
    assert r.json() == DOCUMENT.build()
    _refused(await dps.http.get(PATH, headers=_xfcc(issue("x509-dev-1"))))  # same CN, another key


async def test_no_credentials_get_a_dps_401(dps: DpsApi) -> None:
    _refused(await dps.http.get(PATH))
    _refused(await dps.http.get(PATH, headers={"Authorization": "Bearer abc"}))


@pytest.mark.parametrize(
    "case", ["wrong key", "unknown device", "other scope", "no device named", "expired", "foreign cert"]
)
async def test_bad_credentials_get_a_dps_401_never_a_404(dps: DpsApi, case: str) -> None:
    await enroll_group(dps, "group-1")
    device = group_device(dps, "member-1")
    headers = {
        "wrong key": {"Authorization": group_device(dps, "member-1", KEY2.replace("c", "d")).token()},
        # No enrollment knows it, and the unknown scope is not served: 404s elsewhere, 401 here.
        "unknown device": {"Authorization": device.token()},
        "other scope": {"Authorization": device.token(resource="0ne00000000/registrations/member-1")},
        "no device named": {"Authorization": device.token(resource="localhost")},
        "expired": {"Authorization": device.token(ttl=-10)},
        "foreign cert": _xfcc(issue("member-1")),
    }[case]
    if case == "unknown device":
        r = await dps.call("DELETE", "/enrollmentGroups/group-1")
        assert r.status_code == 204, r.text
    _refused(await dps.http.get(PATH, headers=headers))


async def test_a_wrong_method_on_the_document_is_a_dps_405(dps: DpsApi) -> None:
    r = await dps.http.post(PATH)
    assert r.status_code == 405 and r.json()["errorCode"] == 405000
