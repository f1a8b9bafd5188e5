"""The Node DPS service SDK (azure-iot-provisioning-service 1.11.2) against a real ``provisiond serve``.

Each scenario of ``node/service-client.js`` runs once per module (one short Node process) and prints
its observations as one JSON line; the tests below each check one behaviour of those observations.
The tests follow the DPS service REST API, api-version 2021-10-01 (README.md, "The DPS service API").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from tests.compat.support import dps_env, new_symmetric_key, node_json, run_node, unique_id
from tests.support.server import ServerProcess

pytestmark = pytest.mark.compat

SCRIPT = "service-client.js"
PAGE_SIZE = 3  # as in service-client.js

Observations = dict[str, Any]

# Per enrollment kind: the scenario name, the id field, the query scenario and its x-ms-item-type.
KINDS = {
    "individual": ("registrationId", "query-individual", "Enrollment"),
    "group": ("enrollmentGroupId", "query-group", "EnrollmentGroup"),
}


@pytest.fixture(scope="module")
def scenario(server: ServerProcess) -> Callable[[str], Observations]:
    """Runs a scenario of service-client.js once (fresh ids, fresh key) and caches its observations."""
    cache: dict[str, Observations] = {}

    def run(name: str) -> Observations:
        if name not in cache:
            dev_key = new_symmetric_key()
            proc = run_node(
                SCRIPT,
                server.ca,
                name,
                **dps_env(server),
                ID_PREFIX=unique_id(f"node-{name}"),
                DEV_KEY=dev_key,
            )
            data = node_json(proc)
            assert data["scenario"] == name
            cache[name] = {**data, "devKey": dev_key}
        return cache[name]

    return run


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def assert_dps_error(obs: Observations, status: int, error_class: str) -> None:
    """The SDK rejected the call with ``error_class`` for ``status``, and the server sent a DPS error.

    The body is ProvisioningServiceErrorDetails with a six-digit errorCode that starts with the
    status, repeated in ``x-ms-error-code``, all as JSON (docs/errors.md).
    """
    assert obs["rejected"] is True, f"expected a {status} rejection, the call succeeded: {obs}"
    assert obs["status"] == status, obs
    assert obs["name"] == error_class, obs
    assert "application/json" in (obs["contentType"] or ""), obs
    body = obs["body"]
    assert isinstance(body, dict), obs
    code = body.get("errorCode")
    assert isinstance(code, int) and 100000 <= code <= 999999, obs
    assert str(code).startswith(str(status)), obs
    assert obs["errorCodeHeader"] == str(code), obs
    assert body.get("trackingId") and body.get("message"), obs


def assert_not_found(obs: Observations) -> None:
    """A 404, which this SDK surfaces as a plain ``Error('Not found')``."""
    assert_dps_error(obs, 404, "Error")
    assert obs["message"] == "Not found"


def assert_ok_json(obs: Observations) -> Any:
    """A 200 whose body the SDK parsed, which it only does for ``application/json``."""
    assert obs["status"] == 200, obs
    assert "application/json" in (obs["contentType"] or ""), obs
    assert isinstance(obs["body"], dict), obs
    return obs["body"]


def is_quoted_etag(value: object) -> bool:
    return isinstance(value, str) and len(value) > 2 and value.startswith('"') and value.endswith('"')


# --- individual enrollments and enrollment groups ------------------------------------------------


def test_put_creates_enrollment_and_returns_it_as_json_with_quoted_etag_and_utc_timestamps(
    scenario: Callable[[str], Observations], kind: str
) -> None:
    """PUT /enrollments/{id} and /enrollmentGroups/{id}: 200, the stored record, a quoted etag."""
    obs = scenario(kind)
    id_field = KINDS[kind][0]
    body = assert_ok_json(obs["create"])
    assert body[id_field] == obs["ids"]["id"]
    assert body["attestation"]["type"] == "symmetricKey"
    assert body["provisioningStatus"] == "enabled"
    assert body["initialTwin"]["tags"] == ({"site": "a"} if kind == "individual" else {"fleet": "a"})
    assert is_quoted_etag(body["etag"]), body
    for field in ("createdDateTimeUtc", "lastUpdatedDateTimeUtc"):
        assert body[field].endswith("Z"), body
        assert datetime.fromisoformat(body[field]).utcoffset() is not None


def test_get_returns_the_stored_enrollment_with_the_etag_of_the_put(
    scenario: Callable[[str], Observations], kind: str
) -> None:
    """GET /{collection}/{id}: 200 and the record the PUT returned, same etag."""
    obs = scenario(kind)
    created = obs["create"]["body"]
    got = assert_ok_json(obs["get"])
    assert got[KINDS[kind][0]] == obs["ids"]["id"]
    assert got["etag"] == created["etag"]
    assert got["initialTwin"] == created["initialTwin"]
    assert got["createdDateTimeUtc"] == created["createdDateTimeUtc"]


def test_ids_are_matched_case_insensitively(scenario: Callable[[str], Observations], kind: str) -> None:
    """GET with the id upper-cased finds the same record (ids are case-insensitive, as in DPS)."""
    obs = scenario(kind)
    got = assert_ok_json(obs["getUpperCase"])
    assert got[KINDS[kind][0]].lower() == obs["ids"]["id"].lower()
    assert got["etag"] == obs["create"]["body"]["etag"]


def test_update_written_back_with_its_etag_succeeds_and_issues_a_new_etag(
    scenario: Callable[[str], Observations], kind: str
) -> None:
    """PUT of the record as read (read-only fields and etag -> If-Match included) replaces it."""
    obs = scenario(kind)
    created = obs["create"]["body"]
    updated = assert_ok_json(obs["update"])
    assert updated["provisioningStatus"] == "disabled"
    assert is_quoted_etag(updated["etag"]) and updated["etag"] != created["etag"]
    assert updated["createdDateTimeUtc"] == created["createdDateTimeUtc"]
    after = assert_ok_json(obs["getAfterUpdate"])
    assert after["provisioningStatus"] == "disabled"
    assert after["etag"] == updated["etag"]
    if kind == "individual":
        assert after["initialTwin"]["tags"] == {"site": "b"}


def test_update_with_stale_etag_is_refused_412_invalid_etag_and_changes_nothing(
    scenario: Callable[[str], Observations], kind: str
) -> None:
    """PUT with If-Match naming an older version: 412 (InvalidEtagError); the record keeps its version."""
    obs = scenario(kind)
    assert_dps_error(obs["staleUpdate"], 412, "InvalidEtagError")
    after = assert_ok_json(obs["getAfterStale"])
    assert after["etag"] == obs["update"]["body"]["etag"]
    assert after["provisioningStatus"] == "disabled"


def test_delete_by_object_with_stale_etag_is_refused_412_and_keeps_the_record(
    scenario: Callable[[str], Observations], kind: str
) -> None:
    """DELETE with the stale object's etag as If-Match: 412 (InvalidEtagError); the record remains."""
    obs = scenario(kind)
    assert_dps_error(obs["staleDeleteByObject"], 412, "InvalidEtagError")
    assert assert_ok_json(obs["getAfterStale"])[KINDS[kind][0]] == obs["ids"]["id"]


def test_delete_by_object_with_current_etag_removes_the_record(
    scenario: Callable[[str], Observations], kind: str
) -> None:
    """DELETE of the current object (If-Match: its etag) succeeds (204); a later GET is 404."""
    obs = scenario(kind)
    assert obs["deleteByObject"] == {"deleted": True}
    assert_not_found(obs["getAfterDeleteByObject"])


def test_delete_by_id_removes_the_record(scenario: Callable[[str], Observations], kind: str) -> None:
    """DELETE /{collection}/{id} without If-Match succeeds; a later GET is 404."""
    obs = scenario(kind)
    assert obs["deleteById"] == {"deleted": True}
    assert_not_found(obs["getAfterDeleteById"])


def test_attestation_mechanism_returns_the_enrolled_symmetric_keys(
    scenario: Callable[[str], Observations], kind: str
) -> None:
    """POST …/{id}/attestationmechanism (no body; Node writes `enrollmentgroups`): 200 and the keys."""
    obs = scenario(kind)
    mechanism = assert_ok_json(obs["attestation"])
    assert mechanism["type"] == "symmetricKey"
    assert mechanism["symmetricKey"] == {"primaryKey": obs["devKey"], "secondaryKey": obs["devKey"]}


def test_unknown_id_is_404_for_get_delete_and_attestation_mechanism(
    scenario: Callable[[str], Observations], kind: str
) -> None:
    """GET, DELETE and attestationmechanism of an id never created: 404 with a DPS error body."""
    obs = scenario(kind)
    for step in ("getUnknown", "deleteUnknown", "attestationUnknown"):
        assert_not_found(obs[step])


def test_percent_encoded_registration_id_round_trips(scenario: Callable[[str], Observations]) -> None:
    """An id with ':' and '.' (sent as %3A by encodeURIComponent) is stored, read and deleted by its decoded form."""
    obs = scenario("individual")
    encoded_id = obs["ids"]["id2"]
    assert assert_ok_json(obs["createEncoded"])["registrationId"] == encoded_id
    assert assert_ok_json(obs["getEncoded"])["registrationId"] == encoded_id
    assert obs["deleteById"] == {"deleted": True}
    assert_not_found(obs["getAfterDeleteById"])


def test_delete_by_id_with_etag_argument_is_conditional(scenario: Callable[[str], Observations]) -> None:
    """deleteIndividualEnrollment(id, etag) sends If-Match: a wrong etag is 412, the right one deletes."""
    obs = scenario("individual")
    assert_dps_error(obs["deleteByIdStaleEtag"], 412, "InvalidEtagError")
    assert obs["deleteByIdWithEtag"] == {"deleted": True}
    assert_not_found(obs["getAfterDeleteByIdWithEtag"])


# --- bulk ------------------------------------------------------------------------------------------


def test_bulk_create_creates_every_item(scenario: Callable[[str], Observations]) -> None:
    """POST /enrollments/ mode=create: 200 isSuccessful=true, no errors, each item then readable."""
    obs = scenario("bulk")
    result = assert_ok_json(obs["create"])
    assert result["isSuccessful"] is True
    assert not result.get("errors")
    assert assert_ok_json(obs["getCreatedA"])["registrationId"] == obs["ids"]["a"]
    assert assert_ok_json(obs["getCreatedB"])["registrationId"] == obs["ids"]["b"]


def test_bulk_create_of_an_existing_id_reports_that_item_with_a_six_digit_error_code(
    scenario: Callable[[str], Observations],
) -> None:
    """Bulk create with one id that exists: 200, isSuccessful=false, errors[] names it with a 409xxx code."""
    obs = scenario("bulk")
    result = assert_ok_json(obs["createWithExisting"])
    assert result["isSuccessful"] is False
    errors = result["errors"]
    assert [e["registrationId"] for e in errors] == [obs["ids"]["existing"]], result
    code = errors[0]["errorCode"]
    assert isinstance(code, int) and 100000 <= code <= 999999 and str(code).startswith("409"), result
    assert isinstance(errors[0]["errorStatus"], str) and errors[0]["errorStatus"], result
    assert assert_ok_json(obs["getExistingAfterFailedCreate"])["registrationId"] == obs["ids"]["existing"]


def test_bulk_update_replaces_every_item(scenario: Callable[[str], Observations]) -> None:
    """Bulk mode=update: isSuccessful=true and each item reads back with the new values."""
    obs = scenario("bulk")
    result = assert_ok_json(obs["update"])
    assert result["isSuccessful"] is True
    assert not result.get("errors")
    for step in ("getUpdatedA", "getUpdatedB"):
        assert assert_ok_json(obs[step])["provisioningStatus"] == "disabled"


def test_bulk_delete_removes_every_item(scenario: Callable[[str], Observations]) -> None:
    """Bulk mode=delete: isSuccessful=true and each item is then 404."""
    obs = scenario("bulk")
    result = assert_ok_json(obs["delete"])
    assert result["isSuccessful"] is True
    assert not result.get("errors")
    assert_not_found(obs["getDeletedA"])
    assert_not_found(obs["getDeletedB"])


def test_bulk_of_more_than_ten_items_is_refused_400_and_writes_nothing(
    scenario: Callable[[str], Observations],
) -> None:
    """A bulk of 11 enrollments (over DPS's limit of 10): 400 ArgumentError, none created."""
    obs = scenario("bulk")
    assert_dps_error(obs["tooMany"], 400, "ArgumentError")
    assert_not_found(obs["getFirstOfTooMany"])


# --- queries ---------------------------------------------------------------------------------------


def test_query_pages_by_max_item_count_and_continuation_without_repeats(
    scenario: Callable[[str], Observations], kind: str
) -> None:
    """Enrollment / group query with page size 3 over at least 7 records.

    Every page holds 3 items but the last (which holds the rest, never 0), every page but the last
    carries x-ms-continuation, each page is typed by x-ms-item-type, no item comes twice, and all 7
    records this run created are seen. The server is shared, so the total may exceed 7.
    """
    id_field, query_scenario, item_type = KINDS[kind]
    obs = scenario(query_scenario)
    pages = obs["pages"]
    assert obs["guardHit"] is False, "the query never ended: continuation tokens are not honoured"
    assert obs["hasMoreResults"] is False
    for page in pages:
        assert page["status"] == 200 and page["isArray"], page
        assert page["itemType"] == item_type, page
    assert [p["continuation"] for p in pages] == [True] * (len(pages) - 1) + [False], pages
    seen = [rid for page in pages for rid in page["ids"]]
    assert len(seen) == len(set(seen)), f"items repeated across pages: {pages}"
    assert set(obs["mine"]) <= set(seen), (
        f"{id_field}s missing from the query: {set(obs['mine']) - set(seen)}"
    )
    total = len(seen)
    expected_sizes = [PAGE_SIZE] * (total // PAGE_SIZE) + ([total % PAGE_SIZE] if total % PAGE_SIZE else [])
    assert [len(p["ids"]) for p in pages] == expected_sizes
    assert len(pages) >= 3


# --- registration states ---------------------------------------------------------------------------


def test_get_registration_state_of_unknown_id_rejects_not_found(
    scenario: Callable[[str], Observations],
) -> None:
    """GET /registrations/{unknown}: 404 with a DPS error (the SDK rejects with 'Not found')."""
    assert_not_found(scenario("registrations")["getUnknown"])


def test_delete_registration_state_of_unknown_id_rejects_not_found(
    scenario: Callable[[str], Observations],
) -> None:
    """DELETE /registrations/{unknown}, by id and by object (with If-Match): 404."""
    obs = scenario("registrations")
    assert_not_found(obs["deleteUnknownById"])
    assert_not_found(obs["deleteUnknownByObject"])


def test_group_registration_state_query_without_registrations_is_one_empty_final_page(
    scenario: Callable[[str], Observations],
) -> None:
    """POST /registrations/{groupId}/query for a group no device used: [] typed DeviceRegistration, no token."""
    query = scenario("registrations")["groupQuery"]
    assert query["guardHit"] is False and query["hasMoreResults"] is False
    assert query["pages"] == [
        {"status": 200, "itemType": "DeviceRegistration", "continuation": False, "isArray": True, "ids": []}
    ]


# --- authentication --------------------------------------------------------------------------------


def test_token_signed_with_a_key_the_server_does_not_hold_is_refused_401(
    scenario: Callable[[str], Observations],
) -> None:
    """A SAS for provisioningserviceowner signed with another key: 401 UnauthorizedError, errorCode 401000."""
    obs = scenario("auth")["wrongKey"]
    assert_dps_error(obs, 401, "UnauthorizedError")
    assert obs["body"]["errorCode"] == 401000
