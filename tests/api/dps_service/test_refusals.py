"""Bad input to the DPS service API: always a DPS error body, never a 500, never a partial write."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import DpsApi

KEY = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU="
GOOD = {"registrationId": "dev-1", "attestation": {"type": "symmetricKey"}}


def assert_dps_error(r: httpx.Response, status: int, code: int) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["errorCode"] == code
    assert r.headers["x-ms-error-code"] == str(code)
    assert r.headers["content-type"].startswith("application/json")
    assert body["message"] and body["trackingId"] and body["timestampUtc"].endswith("Z")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", 400001),
        (b'{"registrationId": "dev-1", "attestation": ', 400001),
        (b"\xff\xfe", 400001),
        (b"[1, 2]", 400201),
        (b'{"registrationId": 5, "attestation": {"type": "symmetricKey"}}', 400201),
        (
            b'{"registrationId": "dev-1", "attestation": {"type": "symmetricKey"}, "capabilities": {"iotEdge": "yes"}}',
            400201,
        ),
        (b'{"registrationId": "dev-1", "attestation": {"type": "magic"}}', 400201),
        (b'{"registrationId": "dev-1"}', 400201),
        (b'{"registrationId": "dev-1", "attestation": {"type": "tpm"}}', 400201),
        (b'{"registrationId": "dev-1", "attestation": {"type": "x509", "x509": {}}}', 400201),
        (
            b'{"registrationId": "dev-1", "attestation": {"type": "x509", "x509": {"clientCertificates": {"primary": {"certificate": "bm90IGEgY2VydA=="}}}}}',
            400201,
        ),
        (
            b'{"registrationId": "dev-1", "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": "not base64!"}}}',
            400201,
        ),
        (b'{"registrationId": "other", "attestation": {"type": "symmetricKey"}}', 400201),
        (b'{"registrationId": "dev-1", "attestation": {"type": "none"}}', 400201),
    ],
)
async def test_bad_enrollment_bodies_are_refused_and_write_nothing(
    dps: DpsApi, body: bytes, code: int
) -> None:
    r = await dps.call(
        "PUT", "/enrollments/dev-1", content=body, headers={"Content-Type": "application/json"}
    )
    assert_dps_error(r, 400, code)
    assert await dps.count() == 0


@pytest.mark.parametrize("rid", ["-dev", "dev_", "dev!1", "x" * 129])
async def test_invalid_or_over_long_registration_ids_are_refused(dps: DpsApi, rid: str) -> None:
    r = await dps.call(
        "PUT", f"/enrollments/{rid}", json={"registrationId": rid, "attestation": {"type": "symmetricKey"}}
    )
    assert_dps_error(r, 400, 400201)
    assert await dps.count() == 0


@pytest.mark.parametrize("version", [None, "2017-11-15", "latest"])
async def test_unknown_or_missing_api_version_is_refused(dps: DpsApi, version: str | None) -> None:
    r = await dps.call("PUT", "/enrollments/dev-1", json=GOOD, version=version)
    assert_dps_error(r, 400, 400002)
    assert await dps.count() == 0


@pytest.mark.parametrize(
    "version", ["2018-04-01", "2018-09-01-preview", "2019-03-31", "2021-06-01", "2021-10-01"]
)
async def test_every_sdk_api_version_is_accepted(dps: DpsApi, version: str) -> None:
    assert (await dps.call("PUT", "/enrollments/dev-1", json=GOOD, version=version)).status_code == 200


async def test_oversized_body_is_refused_before_parsing(dps: DpsApi) -> None:
    padding = "x" * (96 * 1024)
    body = {**GOOD, "initialTwin": {"tags": {"pad": padding}}}
    r = await dps.call("PUT", "/enrollments/dev-1", json=body)
    assert_dps_error(r, 413, 413000)
    garbage = b"{" * (100 * 1024)  # not JSON either: refused for its size, not its syntax
    assert_dps_error(await dps.call("PUT", "/enrollments/dev-1", content=garbage), 413, 413000)
    assert await dps.count() == 0


async def test_non_json_content_type_is_415(dps: DpsApi) -> None:
    r = await dps.call("PUT", "/enrollments/dev-1", content=b"{}", headers={"Content-Type": "text/plain"})
    assert_dps_error(r, 415, 415000)


async def test_unknown_enrollment_group_and_registration_are_404(dps: DpsApi) -> None:
    assert_dps_error(await dps.call("GET", "/enrollments/nobody"), 404, 404201)
    assert_dps_error(await dps.call("GET", "/enrollmentGroups/nobody"), 404, 404201)
    assert_dps_error(await dps.call("POST", "/enrollments/nobody/attestationmechanism"), 404, 404201)
    assert_dps_error(await dps.call("GET", "/registrations/nobody"), 404, 404202)
    assert_dps_error(await dps.call("DELETE", "/registrations/nobody"), 404, 404202)


async def test_unknown_routes_and_methods_answer_in_dps_format(dps: DpsApi) -> None:
    assert_dps_error(await dps.call("GET", "/enrollments/a/b/c"), 404, 404000)
    assert_dps_error(await dps.call("PATCH", "/enrollments/dev-1", json=GOOD), 405, 405000)


@pytest.mark.parametrize(
    ("spec", "headers"),
    [
        ({"query": "SELECT * FROM enrollments WHERE deviceId = 'x'"}, {}),
        ({"query": 5}, {}),
        ({}, {}),
        ({"query": "*"}, {"x-ms-continuation": "not-a-token"}),
        ({"query": "*"}, {"x-ms-max-item-count": "zero"}),
    ],
)
async def test_bad_queries_are_400(dps: DpsApi, spec: dict[str, object], headers: dict[str, str]) -> None:
    r = await dps.call("POST", "/enrollments/query", json=spec, headers=headers)
    assert r.status_code == 400 and r.json()["errorCode"] in (400004, 400201)


@pytest.mark.parametrize(
    "twin",
    [
        {"tags": 5},
        {"tags": ["a"]},
        {"properties": "desired"},
        {"properties": {"desired": [1, 2]}},
        {"properties": {"desired": "x"}},
    ],
)
async def test_an_initial_twin_whose_tags_or_desired_properties_are_not_objects_is_refused(
    dps: DpsApi, twin: dict[str, object]
) -> None:
    """Found by the fuzzer: such a twin was stored, echoed back, and silently dropped at the hub."""
    for path, body in (
        ("/enrollments/dev-1", {**GOOD, "initialTwin": twin}),
        (
            "/enrollmentGroups/g-1",
            {"enrollmentGroupId": "g-1", "attestation": {"type": "symmetricKey"}, "initialTwin": twin},
        ),
    ):
        r = await dps.call("PUT", path, json=body)
        assert_dps_error(r, 400, 400201)
        assert "initialTwin" in r.json()["message"]
        assert (await dps.call("GET", path)).status_code == 404  # nothing written
    ok = {"tags": {"site": "a"}, "properties": {"desired": {"rate": 5}}, "$version": 1}
    r = await dps.call("PUT", "/enrollments/dev-1", json={**GOOD, "initialTwin": ok})
    assert r.status_code == 200 and r.json()["initialTwin"] == ok
