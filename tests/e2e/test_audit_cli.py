"""The audit trail through real processes: the origin each edge records (the CLI's OS user, an
HTTPS request's id and address, an MQTT registration's transport), and ``audit list``/``export``
as the operator contract describes them."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import uuid

import pytest

from tests.compat.support import link_hub, service_request
from tests.support.mqtt import device_connect
from tests.support.server import PROVISIOND, ServerProcess

KEY = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU="
REGISTER = "$dps/registrations/PUT/iotdps-register/?$rid={rid}"


def entries(server: ServerProcess, *args: str) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = json.loads(server.cli("audit", "list", "--json", *args).stdout)[
        "entries"
    ]
    return listed


@pytest.fixture(scope="module")
def hub(server: ServerProcess) -> str:
    return link_hub(server, "audit")


def test_a_cli_action_is_by_the_os_user(server: ServerProcess, hub: str) -> None:
    [added] = entries(server, "--action", "hub.add", "--target", hub)
    assert added["actor"] == f"operator:{pwd.getpwuid(os.geteuid()).pw_name}"
    assert added["sourceAddress"] is None and added["details"] == {
        "weight": 1,
        "region": None,
        "transport": "cli",
    }
    assert set(added) == {
        "seq",
        "time",
        "actor",
        "action",
        "target",
        "outcome",
        "requestId",
        "sourceAddress",
        "details",
    }


def test_a_service_api_call_is_by_its_policy_with_the_request_id_it_was_answered_with(
    server: ServerProcess, hub: str
) -> None:
    rid = f"aud-{uuid.uuid4().hex[:8]}"
    body = {"registrationId": rid, "attestation": {"type": "symmetricKey"}, "iotHubs": [hub]}
    r = service_request(server, "PUT", f"/enrollments/{rid}", json=body)
    assert r.status_code == 200
    [created] = entries(server, "--target", rid)
    assert created["actor"] == "policy:provisioningserviceowner" and created["action"] == "enrollment.create"
    assert created["requestId"] == r.headers["x-request-id"] and created["sourceAddress"] == "127.0.0.1"


async def test_an_mqtt_registration_records_its_transport_outcome_hub_and_address(
    server: ServerProcess, hub: str
) -> None:
    rid = f"aud-mq-{uuid.uuid4().hex[:8]}"
    body = {
        "registrationId": rid,
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY}},
        "iotHubs": [hub],
    }
    assert service_request(server, "PUT", f"/enrollments/{rid}", json=body).status_code == 200
    client, connack = await device_connect(server.mqtt_port, server.ca, server.id_scope, rid, KEY)
    assert connack.return_code == 0
    answer = await client.request(REGISTER.format(rid="1"), json.dumps({"registrationId": rid}).encode())
    assert answer.topic.startswith("$dps/registrations/res/202/")
    await client.close()
    [registered] = entries(server, "--action", "device.register", "--target", rid)
    assert (registered["actor"], registered["outcome"], registered["sourceAddress"]) == (
        f"device:{rid}",
        "assigned",
        "127.0.0.1",
    )
    details = registered["details"]
    assert isinstance(details, dict)
    assert (details["transport"], details["hub"], details["attestation"]) == ("mqtt", hub, "symmetricKey")
    assert registered["requestId"]


def test_export_is_json_lines_oldest_first_and_list_limits_newest_first(
    server: ServerProcess, hub: str
) -> None:
    lines = [
        json.loads(line) for line in server.cli("audit", "export", "--format", "jsonl").stdout.splitlines()
    ]
    seqs = [line["seq"] for line in lines]
    assert seqs == sorted(seqs) and lines[0]["action"] == "instance.create"
    newest = entries(server, "--limit", "2")
    assert [e["seq"] for e in newest] == sorted(seqs, reverse=True)[:2]
    assert entries(server, "--since", "2999-01-01") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["audit", "list", "--since", "yesterday"],
            "--since takes an ISO 8601 time or an age like 24h, not 'yesterday'",
        ),
        (["audit", "export", "--format", "csv"], "--format jsonl is the one export format, not 'csv'"),
        (
            ["audit", "list", "--since", "999999999d"],
            "--since '999999999d' reaches back further than any entry can be",
        ),
    ],
)
def test_bad_arguments_fail_in_one_line(server: ServerProcess, args: list[str], message: str) -> None:
    done = server.cli(*args, check=False)
    assert done.returncode == 1 and done.stderr.strip() == f"error: {message}"


def test_the_operator_is_the_account_not_a_name_the_environment_claims(server: ServerProcess) -> None:
    """``LOGNAME``/``USER`` are the caller's to set; the trail takes the account of the process's
    uid, and a newline in a name cannot forge a second line of ``audit list``."""
    env = {**server.env, "LOGNAME": "someone-else\n2026-01-01 00:00:00Z  forged", "USER": "someone-else"}
    command = [*PROVISIOND, "dps", "region", "add", "10.9.0.0/16", "lab", "--data-dir", str(server.data_dir)]
    subprocess.run(command, check=True, capture_output=True, env=env, timeout=60)
    [added] = entries(server, "--action", "region.add", "--target", "10.9.0.0/16")
    assert added["actor"] == f"operator:{pwd.getpwuid(os.geteuid()).pw_name}"
