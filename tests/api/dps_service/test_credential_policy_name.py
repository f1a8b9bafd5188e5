"""``credentialPolicyName`` on enrollments and groups: read and written only with 2025-07-01-preview."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import DpsApi

PREVIEW = "2025-07-01-preview"
SYM = {"type": "symmetricKey"}


@pytest.fixture
async def policy(dps: DpsApi) -> str:
    await dps.ctx.credential_policies.create("fleet-a")
    await dps.ctx.credential_policies.create("fleet-b")
    return "fleet-a"


def individual(rid: str, **fields: Any) -> dict[str, Any]:
    return {"registrationId": rid, "attestation": SYM, **fields}


@pytest.mark.parametrize(
    ("collection", "id_field"), [("enrollments", "registrationId"), ("enrollmentGroups", "enrollmentGroupId")]
)
async def test_the_preview_accepts_and_returns_credential_policy_name(
    dps: DpsApi, policy: str, collection: str, id_field: str
) -> None:
    body = {id_field: "e-1", "attestation": SYM, "credentialPolicyName": policy}
    r = await dps.call("PUT", f"/{collection}/e-1", json=body, version=PREVIEW)
    assert r.status_code == 200, r.text
    assert r.json()["credentialPolicyName"] == policy
    assert (await dps.call("GET", f"/{collection}/e-1", version=PREVIEW)).json()[
        "credentialPolicyName"
    ] == policy
    page = await dps.call("POST", f"/{collection}/query", json={"query": "*"}, version=PREVIEW)
    assert page.json()[0]["credentialPolicyName"] == policy


@pytest.mark.parametrize(
    ("collection", "id_field"), [("enrollments", "registrationId"), ("enrollmentGroups", "enrollmentGroupId")]
)
async def test_an_unknown_policy_name_is_the_dps_400_and_nothing_is_written(
    dps: DpsApi, policy: str, collection: str, id_field: str
) -> None:
    body = {id_field: "e-1", "attestation": SYM, "credentialPolicyName": "no-such-policy"}
    r = await dps.call("PUT", f"/{collection}/e-1", json=body, version=PREVIEW)
    assert r.status_code == 400
    assert r.json()["errorCode"] == 400201 and "no-such-policy" in r.json()["message"]
    assert (await dps.call("GET", f"/{collection}/e-1", version=PREVIEW)).status_code == 404


async def test_an_unknown_policy_name_fails_its_bulk_item_alone(dps: DpsApi, policy: str) -> None:
    items = [
        individual("ok-1", credentialPolicyName=policy),
        individual("bad-1", credentialPolicyName="nope"),
    ]
    r = await dps.call("POST", "/enrollments", json={"mode": "create", "enrollments": items}, version=PREVIEW)
    assert r.status_code == 200
    assert [(e["registrationId"], e["errorCode"]) for e in r.json()["errors"]] == [("bad-1", 400201)]


async def test_with_2021_10_01_the_field_is_neither_returned_nor_changed(dps: DpsApi, policy: str) -> None:
    await dps.call(
        "PUT", "/enrollments/e-1", json=individual("e-1", credentialPolicyName=policy), version=PREVIEW
    )
    old = await dps.call("GET", "/enrollments/e-1", version="2021-10-01")
    assert "credentialPolicyName" not in old.json()
    # An old client writes back what it read (with its etag), and even names another policy:
    # the stored policy stays.
    body = {**old.json(), "credentialPolicyName": "fleet-b", "iotHubs": None}
    r = await dps.call(
        "PUT", "/enrollments/e-1", json=body, headers={"If-Match": old.json()["etag"]}, version="2021-10-01"
    )
    assert r.status_code == 200 and "credentialPolicyName" not in r.json()
    r = await dps.call("PUT", "/enrollments/e-1", json=individual("e-1"), version="2021-10-01")  # no If-Match
    assert r.status_code == 200
    bulk = {"mode": "update", "enrollments": [individual("e-1")]}
    assert (await dps.call("POST", "/enrollments", json=bulk, version="2021-10-01")).json()["isSuccessful"]
    assert (await dps.call("GET", "/enrollments/e-1", version=PREVIEW)).json()[
        "credentialPolicyName"
    ] == policy


async def test_with_the_preview_a_put_without_the_field_clears_it(dps: DpsApi, policy: str) -> None:
    await dps.call(
        "PUT", "/enrollments/e-1", json=individual("e-1", credentialPolicyName=policy), version=PREVIEW
    )
    r = await dps.call("PUT", "/enrollments/e-1", json=individual("e-1"), version=PREVIEW)
    assert r.status_code == 200 and "credentialPolicyName" not in r.json()


async def test_the_old_api_version_keeps_the_etag_rule(dps: DpsApi, policy: str) -> None:
    await dps.call(
        "PUT", "/enrollments/e-1", json=individual("e-1", credentialPolicyName=policy), version=PREVIEW
    )
    r = await dps.call(
        "PUT",
        "/enrollments/e-1",
        json=individual("e-1"),
        headers={"If-Match": '"stale"'},
        version="2021-10-01",
    )
    assert r.status_code == 412


async def test_the_preview_refuses_an_empty_webhook_url_or_api_version(dps: DpsApi) -> None:
    for custom in (
        {"webhookUrl": "", "apiVersion": "2021-10-01"},
        {"webhookUrl": "https://h.example/x", "apiVersion": ""},
    ):
        body = individual("e-1", allocationPolicy="custom", customAllocationDefinition=custom)
        r = await dps.call("PUT", "/enrollments/e-1", json=body, version=PREVIEW)
        assert r.status_code == 400 and r.json()["errorCode"] == 400201, r.text


async def test_the_2025_preview_is_an_accepted_api_version_and_others_are_still_refused(dps: DpsApi) -> None:
    assert (await dps.call("GET", "/enrollments/none", version=PREVIEW)).status_code == 404
    r = await dps.call("GET", "/enrollments/none", version="2025-07-02-preview")
    assert r.status_code == 400 and r.json()["errorCode"] == 400002
