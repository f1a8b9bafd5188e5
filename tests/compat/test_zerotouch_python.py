"""Official Python zero-touch client (google-api-python-client 2.202.0) vs a real ``provisiond serve``.

The client runs in ``.venv-compat`` through ``tests/compat/python/zerotouch.py``, which performs the
reseller workflow once (customers, claim, a 1,000-device claimAsync with invalid items polled through
operations.get, find, metadata, unclaimAsync) and prints one JSON line of observations. The script
runs once per module; each test below checks one behaviour in that record (docs/zerotouch.md).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.compat.support import run_compat_python
from tests.support.server import ServerProcess

pytestmark = pytest.mark.compat

SCRIPT = Path(__file__).resolve().parent / "python" / "zerotouch.py"
S = "SINGLE_DEVICE_STATUS_"
ASYNC_COUNT = 1000


def create_partner(server: ServerProcess, name: str) -> dict[str, str]:
    """A partner and its bearer token from ``provisiond partner create NAME --json``."""
    created: dict[str, str] = json.loads(server.cli("partner", "create", name, "--json").stdout)
    return created


@pytest.fixture(scope="module")
def obs(server: ServerProcess) -> dict[str, Any]:
    mine, other = create_partner(server, "Compat Python reseller"), create_partner(server, "Someone else")
    prefix = f"35{random.randrange(10**6):06d}"  # this run's IMEIs: TAC 35xxxxxx
    proc = run_compat_python(
        SCRIPT,
        server.ca,
        prefix,
        timeout=300,
        DPS_HTTPS_PORT=str(server.port),
        ZT_TOKEN=mine["token"],
        ZT_PARTNER=mine["partnerId"],
        ZT_OTHER_PARTNER=other["partnerId"],
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON from the script (exit {proc.returncode})\nstderr:\n{proc.stderr}"
    record: dict[str, Any] = json.loads(lines[-1])
    assert record["unexpected"] == [], f"steps failed: {record['unexpected']}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, proc.stderr
    record["partnerId"] = mine["partnerId"]
    return record


def expected_status(n: int) -> str:
    """What the script's claim ``n`` must end as (see the script for the pattern of bad items)."""
    if n % 50 == 7 or n % 101 == 3:
        return S + "INVALID_DEVICE_IDENTIFIER"
    if n == ASYNC_COUNT - 1:
        return S + "PERMISSION_DENIED"
    return S + "SUCCESS"


def test_customers_create_returns_a_company_with_a_string_id_and_its_name(obs: dict[str, Any]) -> None:
    company = obs["create_first"]
    assert isinstance(company["companyId"], str) and company["companyId"].isdigit()
    assert company["name"] == f"partners/{obs['partnerId']}/customers/{company['companyId']}"
    assert company["companyName"].startswith("First")


def test_customers_list_pages_one_at_a_time_and_omits_the_last_token(obs: dict[str, Any]) -> None:
    pages = obs["list_pages"]
    assert [len(p["customers"]) for p in pages] == [1, 1]
    assert all(p["totalSize"] == 2 for p in pages)
    assert "nextPageToken" in pages[0] and "nextPageToken" not in pages[1]
    listed = {c["companyId"] for p in pages for c in p["customers"]}
    assert listed == {obs["create_first"]["companyId"], obs["create_second"]["companyId"]}


def test_claim_returns_the_device_and_is_idempotent_for_the_same_customer(obs: dict[str, Any]) -> None:
    claimed = obs["claim"]
    assert claimed["deviceName"] == f"partners/{obs['partnerId']}/devices/{claimed['deviceId']}"
    assert obs["claim_again"] == claimed


def test_claim_of_a_device_held_by_another_customer_raises_409(obs: dict[str, Any]) -> None:
    conflict = obs["claim_conflict"]
    assert conflict["status"] == 409 and conflict["body"]["error"]["status"] == "ALREADY_EXISTS"
    assert conflict["reason"] == conflict["body"]["error"]["message"]


def test_claim_async_of_1000_devices_ends_done_with_every_result_in_request_order(
    obs: dict[str, Any],
) -> None:
    run = obs["claim_async"]
    assert (
        run["started"]["name"].startswith("operations/")
        and run["started"]["metadata"]["devicesCount"] == ASYNC_COUNT
    )
    done = run["done"]
    assert done["done"] is True and done["name"] == run["started"]["name"]
    assert (
        done["metadata"]["processingStatus"] == "BATCH_PROCESS_PROCESSED"
        and done["metadata"]["progress"] == 100
    )
    statuses = done["response"]["perDeviceStatus"]
    assert [s["claim"] for s in statuses] == obs["claims_sent"]
    assert [s["result"]["status"] for s in statuses] == [expected_status(n) for n in range(ASYNC_COUNT)]
    assert done["response"]["successCount"] == sum(
        expected_status(n) == S + "SUCCESS" for n in range(ASYNC_COUNT)
    )
    assert statuses[0]["result"]["deviceId"] == obs["claim"]["deviceId"]  # already claimed: same device
    assert statuses[7]["result"]["errorIdentifier"] == "INVALID_DEVICE_IMEI"
    assert statuses[3]["result"]["errorIdentifier"] == "INVALID_MANUFACTURER"
    ids = [s["result"]["deviceId"] for s in statuses if s["result"]["status"] == S + "SUCCESS"]
    assert len(set(ids)) == len(ids)


def test_find_by_identifier_finds_the_claimed_device(obs: dict[str, Any]) -> None:
    found = obs["find_by_identifier"]
    assert found["totalSize"] == 1 and "nextPageToken" not in found
    [device] = found["devices"]
    assert (
        device["deviceId"]
        == obs["claim_async"]["done"]["response"]["perDeviceStatus"][1]["result"]["deviceId"]
    )
    assert device["claims"][0]["ownerCompanyId"] == obs["create_first"]["companyId"]


def test_find_by_owner_pages_through_every_claimed_device(obs: dict[str, Any]) -> None:
    pages = obs["find_by_owner"]
    successes = {
        s["result"]["deviceId"]
        for s in obs["claim_async"]["done"]["response"]["perDeviceStatus"]
        if s["result"]["status"] == S + "SUCCESS"
    }
    ids = [i for p in pages for i in p["ids"]]
    assert len(ids) == len(set(ids)) and set(ids) == successes
    assert all(p["totalSize"] == len(successes) for p in pages)
    assert [len(p["ids"]) for p in pages[:-1]] == [100] * (len(pages) - 1)
    assert pages[-1]["nextPageToken"] is None and all(p["nextPageToken"] for p in pages[:-1])


def test_metadata_is_set_and_seen_on_get(obs: dict[str, Any]) -> None:
    assert obs["metadata"] == {"entries": {"order": "PO-42"}}
    assert obs["get_device"]["deviceMetadata"] == {"entries": {"order": "PO-42"}}


def test_unclaim_async_releases_every_device_and_reports_an_unknown_id(obs: dict[str, Any]) -> None:
    run = obs["unclaim_async"]
    statuses = run["done"]["response"]["perDeviceStatus"]
    assert [s["unclaim"] for s in statuses] == run["sent"]
    assert [s["result"]["status"] for s in statuses[:-1]] == [S + "SUCCESS"] * (len(statuses) - 1)
    assert statuses[-1]["result"]["status"] == S + "INVALID_DEVICE_IDENTIFIER"
    assert obs["get_after_unclaim"]["status"] == 404


def test_sync_unclaim_answers_an_empty_object(obs: dict[str, Any]) -> None:
    assert obs["claim_for_sync_unclaim"]["deviceId"] == obs["claim"]["deviceId"]
    assert obs["unclaim"] == {}


def test_refusals_reach_the_client_as_http_errors_with_the_message_as_reason(obs: dict[str, Any]) -> None:
    assert (
        obs["key_only"]["status"] == 401 and obs["key_only"]["body"]["error"]["status"] == "UNAUTHENTICATED"
    )
    # A rejected bearer token is a 401 too; AuthorizedHttp then tries to refresh the static token.
    assert obs["bad_token"] == {"status": None, "refresh_error": "RefreshError"}
    assert obs["other_partner_path"]["status"] == 403
    assert obs["other_partner_path"]["reason"] == "The caller does not have permission"
    assert obs["unknown_operation"]["status"] == 404
