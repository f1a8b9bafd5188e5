"""Bulk operations (≤ 10 items, each applied or rejected on its own) and keyset-paged queries."""

from __future__ import annotations

import pytest

from tests.api.conftest import DpsApi

KEY = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU="


def item(rid: str, **extra: object) -> dict[str, object]:
    return {"registrationId": rid, "attestation": {"type": "symmetricKey"}, **extra}


async def bulk(dps: DpsApi, mode: str, items: list[object], path: str = "/enrollments") -> dict[str, object]:
    r = await dps.call("POST", path, json={"mode": mode, "enrollments": items})
    assert r.status_code == 200, r.text
    result: dict[str, object] = r.json()
    return result


async def test_bulk_create_applies_good_items_and_reports_each_bad_one(dps: DpsApi) -> None:
    await dps.call("PUT", "/enrollments/exists", json=item("exists"))
    result = await bulk(
        dps,
        "create",
        [
            item("a"),
            item("exists"),
            {"registrationId": "bad!", "attestation": {"type": "symmetricKey"}},
            {"registrationId": "typed", "attestation": 7},
            item("b"),
        ],
    )
    assert result["isSuccessful"] is False
    errors = {e["registrationId"]: e for e in result["errors"]}  # type: ignore[union-attr]
    assert set(errors) == {"exists", "bad!", "typed"}
    assert errors["exists"]["errorCode"] == 409201
    assert errors["bad!"]["errorCode"] == 400201 and errors["typed"]["errorCode"] == 400201
    assert all(isinstance(e["errorStatus"], str) and e["errorStatus"] for e in errors.values())
    for rid in ("a", "b"):
        assert (await dps.call("GET", f"/enrollments/{rid}")).status_code == 200
    assert await dps.count() == 3


async def test_bulk_create_reports_a_repeated_id_and_an_existing_one_in_request_order(dps: DpsApi) -> None:
    """The batch is inserted by one statement; each refused item is still reported on its own."""
    before = (await dps.call("PUT", "/enrollments/old", json=item("old"))).json()
    result = await bulk(dps, "create", [item("new"), item("old"), item("NEW"), item("z")])
    assert [(e["registrationId"], e["errorCode"]) for e in result["errors"]] == [  # type: ignore[union-attr]
        ("old", 409201),
        ("NEW", 409201),
    ]
    assert (await dps.call("GET", "/enrollments/old")).json()["etag"] == before["etag"]
    assert (await dps.call("GET", "/enrollments/new")).json()["registrationId"] == "new"
    assert await dps.count() == 3


async def test_bulk_all_good_is_successful_with_no_errors_and_trailing_slash_works(dps: DpsApi) -> None:
    r = await dps.call(
        "POST", "/enrollments/", json={"mode": "create", "enrollments": [item(f"d{n}") for n in range(10)]}
    )
    assert r.json() == {"isSuccessful": True, "errors": []}
    assert await dps.count() == 10


async def test_bulk_update_creates_or_replaces(dps: DpsApi) -> None:
    await dps.call("PUT", "/enrollments/a", json=item("a"))
    result = await bulk(dps, "update", [item("a", deviceId="x"), item("new")])
    assert result["isSuccessful"] is True
    assert (await dps.call("GET", "/enrollments/a")).json()["deviceId"] == "x"
    assert await dps.count() == 2


async def test_bulk_update_if_match_etag_checks_each_items_etag(dps: DpsApi) -> None:
    etag_a = (await dps.call("PUT", "/enrollments/a", json=item("a"))).json()["etag"]
    await dps.call("PUT", "/enrollments/b", json=item("b"))
    result = await bulk(
        dps,
        "updateIfMatchETag",
        [
            item("a", etag=etag_a, deviceId="ok"),
            item("b", etag='"stale"', deviceId="no"),
            item("c", etag='"x"'),
        ],
    )
    codes = {e["registrationId"]: e["errorCode"] for e in result["errors"]}  # type: ignore[union-attr]
    assert codes == {"b": 412201, "c": 404201}
    assert (await dps.call("GET", "/enrollments/a")).json()["deviceId"] == "ok"
    assert "deviceId" not in (await dps.call("GET", "/enrollments/b")).json()


async def test_bulk_delete_reports_missing_items(dps: DpsApi) -> None:
    await dps.call("PUT", "/enrollments/a", json=item("a"))
    result = await bulk(dps, "delete", [item("a"), item("ghost")])
    assert [(e["registrationId"], e["errorCode"]) for e in result["errors"]] == [("ghost", 404201)]  # type: ignore[union-attr]
    assert await dps.count() == 0


async def test_bulk_groups_report_enrollment_group_ids(dps: DpsApi) -> None:
    g = {"enrollmentGroupId": "g1", "attestation": {"type": "symmetricKey"}}
    r = await dps.call("POST", "/enrollmentGroups", json={"mode": "create", "enrollmentGroups": [g, g]})
    assert r.json()["errors"] == [
        {"enrollmentGroupId": "g1", "errorCode": 409201, "errorStatus": r.json()["errors"][0]["errorStatus"]}
    ]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"mode": "create", "enrollments": [item(f"d{n}") for n in range(11)]}, 400003),
        ({"mode": "upsert", "enrollments": [item("a")]}, 400201),
        ({"enrollments": [item("a")]}, 400201),
        ({"mode": "create"}, 400201),
        ({"mode": "create", "enrollments": "a"}, 400201),
    ],
)
async def test_request_level_bulk_faults_write_nothing(
    dps: DpsApi, body: dict[str, object], code: int
) -> None:
    r = await dps.call("POST", "/enrollments", json=body)
    assert r.status_code == 400 and r.json()["errorCode"] == code
    assert await dps.count() == 0


async def test_malformed_bulk_json_writes_nothing(dps: DpsApi) -> None:
    r = await dps.call(
        "POST",
        "/enrollments",
        content=b'{"mode": "create", "enrollments": [',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["errorCode"] == 400001
    assert await dps.count() == 0


async def pages(dps: DpsApi, path: str, size: int) -> list[list[dict[str, object]]]:
    out: list[list[dict[str, object]]] = []
    token = None
    while True:
        headers = {"x-ms-max-item-count": str(size), **({"x-ms-continuation": token} if token else {})}
        r = await dps.call(
            "POST",
            path,
            json={"query": "SELECT * FROM enrollments"}
            if "enrollments" in path
            else {"query": "SELECT * FROM enrollmentGroups"},
            headers=headers,
        )
        assert r.status_code == 200
        assert r.headers["x-ms-item-type"] == (
            "Enrollment" if path.startswith("/enrollments") else "EnrollmentGroup"
        )
        out.append(r.json())
        token = r.headers.get("x-ms-continuation")
        if token is None:
            return out


@pytest.mark.parametrize(
    ("count", "size", "shape"), [(7, 3, [3, 3, 1]), (6, 3, [3, 3]), (0, 5, [0]), (3, 100, [3])]
)
async def test_query_pages_carry_a_token_only_while_more_items_remain(
    dps: DpsApi, count: int, size: int, shape: list[int]
) -> None:
    """No token on the last page and no token that leads to an empty page."""
    for n in range(count):
        await dps.call("PUT", f"/enrollments/dev-{n}", json=item(f"dev-{n}"))
    got = await pages(dps, "/enrollments/query", size)
    assert [len(p) for p in got] == shape
    ids = [e["registrationId"] for p in got for e in p]
    assert ids == sorted(f"dev-{n}" for n in range(count))


async def test_group_query_lists_groups_only(dps: DpsApi) -> None:
    await dps.call("PUT", "/enrollments/dev-1", json=item("dev-1"))
    for n in range(4):
        await dps.call(
            "PUT",
            f"/enrollmentGroups/g{n}",
            json={"enrollmentGroupId": f"g{n}", "attestation": {"type": "symmetricKey"}},
        )
    got = await pages(dps, "/enrollmentGroups/query", 3)
    assert [[g["enrollmentGroupId"] for g in p] for p in got] == [["g0", "g1", "g2"], ["g3"]]


async def test_registration_state_query_of_a_group_is_an_empty_typed_page(dps: DpsApi) -> None:
    r = await dps.call("POST", "/registrations/g1/query", json={"query": "*"})
    assert r.status_code == 200 and r.json() == []
    assert r.headers["x-ms-item-type"] == "DeviceRegistration" and "x-ms-continuation" not in r.headers
