"""Service API authentication: SAS tokens, policies and rights."""

from __future__ import annotations

import urllib.parse

import pytest

from provisiond.domain.policies import Right
from provisiond.domain.sas import sign
from provisiond.services.instance import InstanceService
from tests.api.conftest import DpsApi

GOOD = {"registrationId": "dev-1", "attestation": {"type": "symmetricKey"}}


async def refused(dps: DpsApi, auth: str | None, method: str = "PUT") -> None:
    r = await dps.call(method, "/enrollments/dev-1", json=GOOD if method == "PUT" else None, auth=auth)
    assert r.status_code == 401, r.text
    assert r.json()["errorCode"] == 401000 and r.headers["x-ms-error-code"] == "401000"


async def test_missing_token_is_401_and_writes_nothing(dps: DpsApi) -> None:
    await refused(dps, None)
    assert await dps.count() == 0


async def test_expired_token_is_refused(dps: DpsApi) -> None:
    token = dps.token()
    dps.clock.advance(3601)
    await refused(dps, token)


async def test_forged_token_is_refused(dps: DpsApi) -> None:
    await refused(dps, dps.token(key="Zm9yZ2VkZm9yZ2VkZm9yZ2VkZm9yZ2VkZm9yZ2VkMTI="))


async def test_unknown_policy_or_missing_skn_is_refused(dps: DpsApi) -> None:
    await refused(dps, dps.token(policy="nobody"))
    await refused(dps, dps.token().rsplit("&skn=", 1)[0])


async def test_token_for_another_host_is_refused(dps: DpsApi) -> None:
    await refused(dps, dps.token(resource="other.azure-devices-provisioning.net"))
    await refused(dps, dps.token(resource="localhost:9999"))


@pytest.mark.parametrize(
    "resource", ["localhost", "LOCALHOST", "localhost:8443", "localhost%3A8443", "localhost%3a8443"]
)
async def test_service_host_with_or_without_port_encoded_or_not(dps: DpsApi, resource: str) -> None:
    r = await dps.call("PUT", "/enrollments/dev-1", json=GOOD, auth=dps.token(resource=resource))
    assert r.status_code == 200, r.text


async def test_python_sdk_field_order_and_raw_sig(dps: DpsApi) -> None:
    expiry = str(int(dps.clock().timestamp()) + 60)
    sig = sign(dps.owner_key, "localhost%3A8443", expiry)
    header = f"SharedAccessSignature sr=localhost%3A8443&sig={urllib.parse.quote(sig, safe='/')}&se={expiry}&skn=provisioningserviceowner"
    assert (await dps.call("GET", "/enrollments/x", auth=header)).status_code == 404


async def test_secondary_key_works(dps: DpsApi) -> None:
    owner = await InstanceService(dps.db).policy("provisioningserviceowner")
    assert owner is not None
    r = await dps.call("PUT", "/enrollments/dev-1", json=GOOD, auth=dps.token(key=owner.secondary_key))
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("right", "method", "path", "allowed"),
    [
        (Right.ENROLLMENT_READ, "GET", "/enrollments/dev-1", True),
        (Right.ENROLLMENT_READ, "PUT", "/enrollments/dev-1", False),
        (Right.ENROLLMENT_READ, "DELETE", "/enrollments/dev-1", False),
        (Right.ENROLLMENT_READ, "POST", "/enrollments", False),
        (Right.ENROLLMENT_READ, "GET", "/registrations/dev-1", False),
        (Right.ENROLLMENT_WRITE, "PUT", "/enrollments/dev-1", True),
        (Right.ENROLLMENT_WRITE, "GET", "/enrollments/dev-1", False),
        (Right.ENROLLMENT_WRITE, "POST", "/enrollments/query", False),
        (Right.ENROLLMENT_WRITE, "POST", "/enrollments/dev-1/attestationmechanism", False),
        (Right.REGISTRATION_STATUS_READ, "GET", "/registrations/dev-1", True),
        (Right.REGISTRATION_STATUS_READ, "POST", "/registrations/g/query", True),
        (Right.REGISTRATION_STATUS_READ, "DELETE", "/registrations/dev-1", False),
        (Right.REGISTRATION_STATUS_WRITE, "DELETE", "/registrations/dev-1", True),
        (Right.REGISTRATION_STATUS_WRITE, "GET", "/registrations/dev-1", False),
    ],
)
async def test_each_route_needs_its_right_and_lacking_it_is_401(
    dps: DpsApi, right: Right, method: str, path: str, allowed: bool
) -> None:
    """401, not 403: the Node SDK reads 403 as 'too many devices'."""
    policy = await InstanceService(dps.db).create_policy("limited", frozenset({right}))
    body = {"PUT": GOOD, "POST": {"query": "*"}}.get(method)
    if path == "/enrollments":
        body = {"mode": "create", "enrollments": [GOOD]}
    r = await dps.call(method, path, json=body, auth=dps.token(key=policy.primary_key, policy="limited"))
    if allowed:
        assert r.status_code != 401, r.text
    else:
        assert r.status_code == 401 and r.json()["errorCode"] == 401000
    if not allowed and method != "GET":
        assert await dps.count() == 0
