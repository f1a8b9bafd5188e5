"""Old official Python DPS service SDK (azure-iothub-provisioningserviceclient 1.2.0) vs a real server.

The SDK runs in its own interpreter (``.venv-compat``, built by ``make test`` from
``tests/compat/requirements.txt``) through ``tests/compat/python/service_sdk.py``, which performs
every operation once and prints one JSON line of observations. The script runs once per module; each
test below checks one behaviour in that record. Expected values follow the DPS service REST API
(README.md, "The DPS service API"; docs/errors.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ServerProcess

pytestmark = pytest.mark.compat

REPO = Path(__file__).resolve().parents[2]
COMPAT_PYTHON = REPO / ".venv-compat" / "bin" / "python"
SCRIPT = REPO / "tests" / "compat" / "python" / "service_sdk.py"

# Keys the script sends (fixed so the echo can be checked exactly).
DEVICE_PRIMARY = "ZGV2aWNlLXByaW1hcnkta2V5LWZvci1jb21wYXQtdGVzdHM="
DEVICE_SECONDARY = "ZGV2aWNlLXNlY29uZGFyeS1rZXktZm9yLWNvbXBhdC10ZXM="
GROUP_PRIMARY = "Z3JvdXAtcHJpbWFyeS1rZXktZm9yLWNvbXBhdC10ZXN0cyE="
GROUP_SECONDARY = "Z3JvdXAtc2Vjb25kYXJ5LWtleS1mb3ItY29tcGF0LXRlc3Q="
PAGE_SIZE = 2

# Trust variables that CI may preset to the system bundle: ASSIGN them, never setdefault.
_TRUST_VARS = (
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTPLIB2_CA_CERTS",
    "SSL_CERT_FILE",
)


def _child_env(server: ServerProcess, prefix: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({name: server.ca for name in _TRUST_VARS})
    env.pop("SSL_CERT_DIR", None)
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY", ""), "localhost", "127.0.0.1"]))
    env.update(
        {
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
            "TEST_CA_PEM": server.ca,
            "DPS_HTTPS_PORT": str(server.port),
            "DPS_KEY": server.owner_key,
            "DPS_ID_PREFIX": prefix,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


@dataclass
class _Run:
    """One run of the SDK script; ``problem`` is set when it could not run or printed no JSON."""

    problem: str | None = None
    returncode: int | None = None
    stderr: str = ""
    obs: dict[str, Any] = field(default_factory=dict)

    def step(self, name: str) -> Any:
        """The observation of one step; fails the calling test if the run or that step went wrong."""
        if self.problem:
            pytest.fail(self.problem)
        if name not in self.obs:
            pytest.fail(f"step {name!r} missing from the script's output; stderr:\n{self.stderr}")
        value = self.obs[name]
        if isinstance(value, dict) and "unexpected" in value:
            pytest.fail(f"step {name!r} raised {value['unexpected']}; stderr:\n{self.stderr}")
        return value


@pytest.fixture(scope="module")
def sdk(server: ServerProcess) -> _Run:
    if not COMPAT_PYTHON.exists():
        return _Run(
            problem=(
                f"{COMPAT_PYTHON.relative_to(REPO)} is missing. `make test` creates it; by hand: "
                "python3 -m venv .venv-compat && "
                ".venv-compat/bin/pip install -r tests/compat/requirements.txt"
            )
        )
    prefix = f"pysvc-{uuid.uuid4().hex[:10]}"
    proc = subprocess.run(
        [str(COMPAT_PYTHON), str(SCRIPT), prefix],
        cwd=REPO,
        env=_child_env(server, prefix),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    try:
        obs = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        obs = None
    if not isinstance(obs, dict):
        return _Run(
            problem=(
                f"service_sdk.py exited {proc.returncode} without a JSON line.\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            ),
            returncode=proc.returncode,
            stderr=proc.stderr,
        )
    return _Run(returncode=proc.returncode, stderr=proc.stderr, obs=obs)


def _utc(value: str | None) -> datetime:
    assert value is not None, "timestamp missing"
    parsed = datetime.fromisoformat(value)
    offset = parsed.utcoffset()
    assert offset is not None and offset.total_seconds() == 0, value
    return parsed


def _assert_quoted_etag(etag: str | None) -> None:
    # DPS ETags are quoted opaque strings; the SDK echoes them back verbatim as If-Match.
    assert isinstance(etag, str) and len(etag) > 2, etag
    assert etag.startswith('"') and etag.endswith('"'), etag


def _service_error(observed: dict[str, Any], status: int) -> None:
    assert observed["error"] == "ProvisioningServiceError", observed
    assert observed["status"] == status, observed
    assert f"Service Error {status}" in observed["message"], observed


# --- the run as a whole -------------------------------------------------------------------------------


def test_sdk_script_runs_every_step_without_unexpected_errors(sdk: _Run) -> None:
    """Every SDK call either succeeded or failed exactly as expected, and the script exited 0."""
    if sdk.problem:
        pytest.fail(sdk.problem)
    assert sdk.obs["unexpected"] == [], f"unexpected failures; stderr:\n{sdk.stderr}"
    assert sdk.returncode == 0, sdk.stderr


# --- individual enrollments ---------------------------------------------------------------------------


def test_create_individual_enrollment_echoes_symmetric_key_twin_and_settings(sdk: _Run) -> None:
    """PUT /enrollments/{id} returns 200 with the enrollment as sent, plus etag and timestamps."""
    created = sdk.step("create_individual")
    assert created["class"] == "IndividualEnrollment"
    assert created["registration_id"] == sdk.obs["reg_id"]
    assert created["device_id"] == f"{sdk.obs['prefix']}-device"
    assert created["attestation"] == {
        "type": "symmetricKey",
        "primary_key": DEVICE_PRIMARY,
        "secondary_key": DEVICE_SECONDARY,
    }
    assert created["provisioning_status"] == "enabled"
    assert created["capabilities"] == {"iot_edge": True}
    assert created["reprovision_policy"] == {"update_hub_assignment": False, "migrate_device_data": True}
    assert created["initial_twin"] == {"tags": {"site": "lab"}, "desired_properties": {"interval": 30}}
    _assert_quoted_etag(created["etag"])
    assert _utc(created["created_date_time_utc"]) == _utc(created["last_updated_date_time_utc"])


def test_get_individual_enrollment_returns_the_stored_enrollment(sdk: _Run) -> None:
    """GET /enrollments/{id} returns exactly what the create returned, same etag included."""
    created = sdk.step("create_individual")
    assert sdk.step("get_individual") == created


def test_individual_attestation_mechanism_returns_the_symmetric_keys(sdk: _Run) -> None:
    """POST /enrollments/{id}/attestationmechanism (no body) returns the attestation with its keys."""
    assert sdk.step("attestation_mechanism") == {
        "type": "symmetricKey",
        "primary_key": DEVICE_PRIMARY,
        "secondary_key": DEVICE_SECONDARY,
    }


def test_update_with_current_etag_succeeds_and_stale_etag_gets_412(sdk: _Run) -> None:
    """Writing back a fetched enrollment (If-Match = its etag) updates it; the old etag then gets 412."""
    created = sdk.step("create_individual")
    updated = sdk.step("update_individual")
    assert updated["registration_id"] == created["registration_id"]
    assert updated["device_id"] == f"{sdk.obs['prefix']}-device-renamed"
    assert updated["etag_before"] == created["etag"]
    _assert_quoted_etag(updated["etag"])
    assert updated["etag"] != created["etag"]
    assert updated["created_date_time_utc"] == created["created_date_time_utc"]
    assert _utc(updated["last_updated_date_time_utc"]) > _utc(created["last_updated_date_time_utc"])
    # Read-only fields written back by the SDK are ignored, the rest is kept.
    assert updated["attestation"] == created["attestation"]
    assert updated["initial_twin"] == created["initial_twin"]
    _service_error(updated["stale_put"], 412)


def test_registration_id_with_special_characters_is_decoded_and_case_insensitive(sdk: _Run) -> None:
    """An id with ':' '.' '_' (percent-encoded by msrest) round-trips, and GET in upper case finds it."""
    special = sdk.step("special_id")
    assert special["created"] == special["id"]
    assert special["get_upper"] == special["id"]
    _service_error(special["get_after"], 404)


# --- enrollment groups --------------------------------------------------------------------------------


def test_create_enrollment_group_echoes_symmetric_key_and_twin(sdk: _Run) -> None:
    """PUT /enrollmentGroups/{id} returns 200 with the group as sent, plus etag and timestamps."""
    group = sdk.step("create_group")
    assert group["class"] == "EnrollmentGroup"
    assert group["enrollment_group_id"] == sdk.obs["group_id"]
    assert group["attestation"] == {
        "type": "symmetricKey",
        "primary_key": GROUP_PRIMARY,
        "secondary_key": GROUP_SECONDARY,
    }
    assert group["provisioning_status"] == "enabled"
    assert group["initial_twin"] == {"tags": {"fleet": "a"}, "desired_properties": {"mode": "x"}}
    _assert_quoted_etag(group["etag"])
    _utc(group["created_date_time_utc"])


def test_get_enrollment_group_returns_the_stored_group(sdk: _Run) -> None:
    """GET /enrollmentGroups/{id} returns exactly what the create returned."""
    assert sdk.step("get_group") == sdk.step("create_group")


def test_group_attestation_mechanism_returns_the_symmetric_keys(sdk: _Run) -> None:
    """POST /enrollmentGroups/{id}/attestationmechanism returns the group's attestation."""
    assert sdk.step("group_attestation_mechanism") == {
        "type": "symmetricKey",
        "primary_key": GROUP_PRIMARY,
        "secondary_key": GROUP_SECONDARY,
    }


# --- bulk ---------------------------------------------------------------------------------------------


def test_bulk_create_succeeds_and_every_item_is_readable(sdk: _Run) -> None:
    """POST /enrollments with mode=create: isSuccessful, no errors, each item then GETs."""
    bulk = sdk.step("bulk_create")
    assert bulk["is_successful"] is True
    assert bulk["errors"] == []
    assert bulk["fetched"] == {rid: rid for rid in sdk.obs["bulk_ids"]}


def test_bulk_create_of_existing_id_reports_a_409_item_error(sdk: _Run) -> None:
    """Bulk create repeating an existing id: 200, isSuccessful false, one 409xxx error naming the id."""
    conflict = sdk.step("bulk_conflict")
    assert conflict["is_successful"] is False
    assert len(conflict["errors"]) == 1
    error = conflict["errors"][0]
    assert error["registration_id"] == sdk.obs["bulk_ids"][0]
    assert isinstance(error["error_code"], int) and error["error_code"] // 1000 == 409, error
    assert error["error_status"]


def test_bulk_of_more_than_ten_items_is_rejected_with_400(sdk: _Run) -> None:
    """A bulk operation with 11 items (limit 10) raises ProvisioningServiceError 400."""
    _service_error(sdk.step("bulk_too_many"), 400)


# --- queries ------------------------------------------------------------------------------------------


def test_individual_query_pages_through_every_enrollment_without_an_empty_page(sdk: _Run) -> None:
    """POST /enrollments/query, page size 2: >= 3 pages, none empty, every item once, then has_next False.

    Each page carries x-ms-item-type Enrollment; every page but the last carries x-ms-continuation,
    which the SDK sends back; the last page carries none.
    """
    query = sdk.step("query_individuals")
    pages = query["pages"]
    assert len(pages) >= 3
    assert all(1 <= size <= PAGE_SIZE for size in query["page_sizes"]), query["page_sizes"]
    assert sum(query["page_sizes"]) == query["total"]
    assert query["distinct"] == query["total"], "an enrollment came back on two pages"
    assert query["ours"] == sorted([sdk.obs["reg_id"], *sdk.obs["bulk_ids"]])
    assert query["classes"] == ["IndividualEnrollment"]
    assert query["has_next_after"] is False
    for index, page in enumerate(pages):
        assert page["item_type"] == "Enrollment", page
        assert page["sent_max_item_count"] == str(PAGE_SIZE), page
        assert page["sent_continuation"] is (index > 0), page
        assert (page["content_type"] or "").startswith("application/json"), page
    assert all(page["continuation"] for page in pages[:-1]), pages
    assert pages[-1]["continuation"] is None, pages[-1]


def test_group_query_pages_one_group_at_a_time(sdk: _Run) -> None:
    """POST /enrollmentGroups/query with '*' and page size 1 finds our group; item type EnrollmentGroup."""
    query = sdk.step("query_groups")
    assert query["ours"] == [sdk.obs["group_id"]]
    assert query["page_sizes"] == [1] * query["total"]
    assert query["distinct"] == query["total"]
    assert query["has_next_after"] is False
    assert all(page["item_type"] == "EnrollmentGroup" for page in query["pages"]), query["pages"]
    assert all(page["continuation"] for page in query["pages"][:-1]), query["pages"]
    assert query["pages"][-1]["continuation"] is None


# --- deletes ------------------------------------------------------------------------------------------


def test_delete_individual_enrollment_by_id_then_get_is_404(sdk: _Run) -> None:
    """DELETE /enrollments/{id} without If-Match returns 204; a later GET raises 'Service Error 404'."""
    deleted = sdk.step("delete_by_id")
    assert deleted["deleted"] == sdk.obs["bulk_ids"][0]
    _service_error(deleted["get_after"], 404)


def test_delete_by_object_sends_if_match_stale_is_412_current_deletes(sdk: _Run) -> None:
    """delete(obj) with a stale etag gets 412 and keeps the item; with the current etag, 204, then 404."""
    deleted = sdk.step("delete_by_object")
    _service_error(deleted["stale_delete"], 412)
    assert deleted["still_there_after_stale"] == sdk.obs["reg_id"]
    _service_error(deleted["get_after"], 404)


def test_delete_enrollment_group_by_object_then_get_is_404(sdk: _Run) -> None:
    """delete(group) with its etag returns 204; a later GET of the group raises 'Service Error 404'."""
    _service_error(sdk.step("delete_group")["get_after"], 404)


def test_delete_of_unknown_enrollment_is_404(sdk: _Run) -> None:
    """DELETE of an id that never existed raises 'Service Error 404'."""
    _service_error(sdk.step("delete_missing"), 404)


def test_cleanup_deletes_the_remaining_bulk_items(sdk: _Run) -> None:
    """The script leaves nothing behind on the shared server: each remaining item deletes with 204."""
    assert sdk.step("cleanup") == sdk.obs["bulk_ids"][1:]
