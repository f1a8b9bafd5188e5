"""The bulk commands through the real CLI against a running server: ``enroll import`` (a bad row
in the middle, a re-run, ``--dry-run``), ``enroll export`` (JSON Lines and CSV, imported again),
``claim import`` of 100,000 devices followed by ``operation watch``, and the progress bar shown
only on a terminal."""

from __future__ import annotations

import csv
import json
import os
import pty
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from provisiond.cli.enroll_files import CSV_COLUMNS
from provisiond.domain.device_identifiers import imei_check_digit
from tests.compat.support import link_hub, service_request
from tests.support.pki import issue
from tests.support.server import PROVISIOND, ServerProcess, start_server

KEY = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU="


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def write_csv(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] = CSV_COLUMNS) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def import_json(server: ServerProcess, path: Path, *extra: str) -> tuple[int, dict[str, object]]:
    done = server.cli("enroll", "import", str(path), "--json", *extra, check=False)
    return done.returncode, json.loads(done.stdout)


def exists(server: ServerProcess, rid: str) -> bool:
    return service_request(server, "GET", f"/enrollments/{rid}").status_code == 200


@pytest.fixture(scope="module")
def hub(server: ServerProcess) -> str:
    return link_hub(server, "bulk")


def test_import_reports_a_bad_row_and_writes_the_others_then_reruns_safely(
    server: ServerProcess, hub: str, tmp_path: Path
) -> None:
    ids = [uid("imp") for _ in range(5)]
    rows = [{"registrationId": rid, "attestation": "symmetricKey", "iotHubs": hub} for rid in ids]
    rows[2] = {"registrationId": ids[2], "attestation": "symmetricKey", "iotHubs": "nowhere.example"}
    rows[3]["primaryKey"] = KEY
    rows[4]["initialTwin"] = '{"tags": {"line": "five"}}'
    path = write_csv(tmp_path / "factory.csv", rows)

    code, first = import_json(server, path)
    assert code == 1  # a row failed: scripts can tell
    assert (first["rows"], first["created"], first["updated"], first["unchanged"], first["failed"]) == (
        5,
        4,
        0,
        0,
        1,
    )
    assert first["failures"] == [
        {
            "line": 4,
            "registrationId": ids[2],
            "reason": "IoT hubs not linked to this instance: nowhere.example",
        }
    ]
    assert [exists(server, rid) for rid in ids] == [True, True, False, True, True]
    key_before = service_request(server, "GET", f"/enrollments/{ids[0]}").json()["attestation"]

    code, again = import_json(server, path)  # the same file: nothing changes, no key is regenerated
    assert (again["created"], again["updated"], again["unchanged"], again["failed"]) == (0, 0, 4, 1)
    assert service_request(server, "GET", f"/enrollments/{ids[0]}").json()["attestation"] == key_before

    rows[2]["iotHubs"] = hub  # fixed
    rows[4]["provisioningStatus"] = "disabled"  # changed
    code, fixed = import_json(server, write_csv(path, rows))
    assert code == 0
    assert (fixed["created"], fixed["updated"], fixed["unchanged"], fixed["failed"]) == (1, 1, 3, 0)
    assert service_request(server, "GET", f"/enrollments/{ids[4]}").json()["provisioningStatus"] == "disabled"
    disabled = json.loads(server.cli("audit", "list", "--target", ids[4], "--json").stdout)["entries"]
    assert [e["action"] for e in disabled] == ["enrollment.disable", "enrollment.create"]
    assert disabled[0]["actor"].startswith("operator:") and disabled[0]["details"]["bulk"] == "import"


def test_human_output_names_line_id_and_reason(server: ServerProcess, hub: str, tmp_path: Path) -> None:
    good, bad = uid("hum"), "not valid!"
    path = write_csv(
        tmp_path / "two.csv", [{"registrationId": bad}, {"registrationId": good, "iotHubs": hub}]
    )
    done = server.cli("enroll", "import", str(path), check=False)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"line 2: {bad}: registrationId may hold only")
    assert lines[1] == "2 rows: 1 created, 0 updated, 0 unchanged, 1 failed"
    assert "━" not in done.stdout  # stdout is a pipe: no progress bar


def test_dry_run_checks_every_row_and_writes_nothing(server: ServerProcess, hub: str, tmp_path: Path) -> None:
    fresh = uid("dry")
    lines = [
        json.dumps({"registrationId": fresh, "attestation": {"type": "symmetricKey"}, "iotHubs": [hub]}),
        "{not json",
        json.dumps({"registrationId": uid("dry"), "attestation": {"type": "tpm", "tpm": {}}}),
    ]
    path = tmp_path / "check.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code, report = import_json(server, path, "--dry-run")
    assert code == 1 and report["dryRun"] is True
    assert (report["created"], report["failed"]) == (1, 2)
    assert [f["line"] for f in report["failures"]] == [2, 3]  # type: ignore[index]
    assert not exists(server, fresh)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own: an export is of every enrollment, and other tests' records
    on the shared server (ones CSV cannot fully say, written meanwhile) would change under it."""
    server = start_server(tmp_path / "own")
    yield server
    server.stop()


def test_export_in_jsonl_and_csv_imports_again_unchanged(own_server: ServerProcess, tmp_path: Path) -> None:
    server = own_server
    hub = link_hub(server, "bulk-export")
    device = issue(uid("x509dev"))
    device.write(tmp_path, "device")
    x509_id = device.cert.subject.rfc4514_string().split("=", 1)[1]
    sym_id = uid("exp")
    rows = [
        {"registrationId": sym_id, "attestation": "symmetricKey", "iotHubs": hub, "deviceId": "d-1"},
        {"registrationId": x509_id, "attestation": "x509", "certificate": "device.pem", "iotHubs": hub},
    ]
    code, report = import_json(server, write_csv(tmp_path / "in.csv", rows))
    assert code == 0 and report["created"] == 2

    jsonl = tmp_path / "all.jsonl"
    assert (
        json.loads(server.cli("enroll", "export", "--output", str(jsonl), "--json").stdout)["format"]
        == "jsonl"
    )
    by_id = {line["registrationId"]: line for line in map(json.loads, jsonl.read_text().splitlines())}
    assert by_id[sym_id]["deviceId"] == "d-1"
    assert by_id[x509_id]["attestation"]["x509"]["clientCertificates"]["primary"]["certificate"].startswith(
        "-----BEGIN CERTIFICATE-----"
    )
    stdout = server.cli("enroll", "export").stdout  # to stdout: the same lines
    assert {json.loads(line)["registrationId"] for line in stdout.splitlines()} == set(by_id)

    table = tmp_path / "all.csv"
    server.cli("enroll", "export", "--format", "csv", "--output", str(table))
    with table.open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        exported = {row["registrationId"]: row for row in reader}
    assert exported[sym_id]["iotHubs"] == hub and exported[x509_id]["attestation"] == "x509"
    assert oct(table.stat().st_mode & 0o777) == "0o600"  # keys inside

    for path in (jsonl, table):
        code, again = import_json(server, path)
        assert code == 0 and again["unchanged"] == again["rows"] >= 2, again


def test_the_progress_bar_is_drawn_on_a_terminal_only(
    server: ServerProcess, hub: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "tty.csv", [{"registrationId": uid("tty"), "iotHubs": hub}])
    args = [*PROVISIOND, "enroll", "import", str(path), "--data-dir", str(server.data_dir)]

    def on_a_terminal(*extra: str) -> str:
        leader, follower = pty.openpty()
        with subprocess.Popen([*args, *extra], stdout=follower, stderr=follower, env=server.env) as proc:
            os.close(follower)
            out = b""
            while True:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the terminal closed with the process
                    break
                if not chunk:
                    break
                out += chunk
            proc.wait(timeout=60)
        os.close(leader)
        return out.decode(errors="replace")

    drawn = on_a_terminal()
    assert "importing" in drawn and "━" in drawn and "1/1" in drawn
    quiet = on_a_terminal("--json")
    assert "━" not in quiet and json.loads(quiet.strip().splitlines()[-1])["unchanged"] == 1


def imei(n: int) -> str:
    body = f"35{n:012d}"
    return body + imei_check_digit(body)


def test_claim_import_of_100000_devices_watched_to_completion(tmp_path: Path) -> None:
    """One durable operation for the whole file, followed with ``operation watch`` until done; the
    audit trail holds two entries for it (submitted, completed with its counts), not 100,000."""
    server = start_server(tmp_path / "claims")
    try:
        made = json.loads(server.cli("partner", "create", "Shipping", "--json").stdout)
        with server.http() as http:
            r = http.post(
                f"/v1/partners/{made['partnerId']}/customers",
                json={"customer": {"companyName": "Acme", "ownerEmails": ["o@acme.example"]}},
                headers={"Authorization": f"Bearer {made['token']}"},
            )
        assert r.status_code == 200, r.text
        customer = r.json()["companyId"]
        path = tmp_path / "shipment.csv"
        with path.open("w") as f:
            f.write("imei,manufacturer,model\n")
            f.writelines(f"{imei(n)},Google,Pixel\n" for n in range(100_000))
        submitted = json.loads(
            server.cli(
                "claim",
                "import",
                str(path),
                "--partner",
                made["partnerId"],
                "--customer",
                str(customer),
                "--json",
            ).stdout
        )
        assert submitted == {
            "name": f"operations/apibatchoperation/{submitted['operationId']}",
            "operationId": submitted["operationId"],
        }
        watched = server.cli("operation", "watch", submitted["name"], "--json", "--interval", "0.2")
        final = json.loads(watched.stdout)
        assert (final["done"], final["state"], final["total"], final["succeeded"], final["failed"]) == (
            True,
            "complete",
            100_000,
            100_000,
            0,
        )
        trail = json.loads(server.cli("audit", "list", "--target", submitted["operationId"], "--json").stdout)
        entries = {e["action"]: e for e in trail["entries"]}
        assert set(entries) == {"operation.submit", "operation.complete"}
        assert entries["operation.submit"]["actor"].startswith("operator:")
        assert entries["operation.submit"]["details"]["items"] == 100_000
        assert entries["operation.complete"]["details"] | {"owner": None} == {
            "kind": "claim",
            "owner": None,
            "items": 100_000,
            "succeeded": 100_000,
            "failed": 0,
        }
        # the partner sees it as its own zero-touch operation
        with server.http() as http:
            got = http.get(f"/v1/{submitted['name']}", headers={"Authorization": f"Bearer {made['token']}"})
        assert got.status_code == 200 and got.json()["done"] is True
    finally:
        server.stop()


def test_watch_of_an_unknown_operation_fails_in_one_line(server: ServerProcess) -> None:
    done = server.cli("operation", "watch", "operations/apibatchoperation/12345", "--json", check=False)
    assert done.returncode == 1
    assert json.loads(done.stdout) == {"error": "no operation 'operations/apibatchoperation/12345'"}
    assert done.stderr.strip() == "error: no operation 'operations/apibatchoperation/12345'"


_ = httpx


def test_the_credential_policy_column_names_an_existing_policy_and_round_trips(
    server: ServerProcess, hub: str, tmp_path: Path
) -> None:
    """``credentialPolicyName`` is checked as the service API checks it (an unknown policy fails
    its row) and comes back out of ``enroll export``."""
    server.cli("dps", "credential-policy", "create", "importpol")
    rid, bad = uid("cred"), uid("nopol")
    rows = [
        {"registrationId": rid, "iotHubs": hub, "credentialPolicyName": "importpol"},
        {"registrationId": bad, "iotHubs": hub, "credentialPolicyName": "no-such-policy"},
    ]
    code, report = import_json(server, write_csv(tmp_path / "cred.csv", rows))
    assert code == 1 and report["created"] == 1
    assert [f["registrationId"] for f in report["failures"]] == [bad]  # type: ignore[attr-defined]
    exported = server.cli("enroll", "export", "--format", "jsonl").stdout.splitlines()
    mine = [json.loads(line) for line in exported if json.loads(line)["registrationId"] == rid]
    assert mine[0]["credentialPolicyName"] == "importpol"


def test_export_over_an_existing_readable_file_leaves_it_private(
    server: ServerProcess, tmp_path: Path
) -> None:
    out = tmp_path / "keys.jsonl"
    out.write_text("")
    out.chmod(0o644)
    server.cli("enroll", "export", "--output", str(out))
    assert out.stat().st_mode & 0o777 == 0o600


def test_a_certificate_path_outside_the_csv_directory_fails_its_row(
    server: ServerProcess, hub: str, tmp_path: Path
) -> None:
    """A row may name a PEM file beside the CSV, never any file the operator's account can read."""
    rid = uid("outside")
    outside = server.data_dir / "tls" / "ca.pem"  # a real PEM, elsewhere
    rows = [{"registrationId": rid, "attestation": "x509", "certificate": str(outside), "iotHubs": hub}]
    (tmp_path / "rows").mkdir()
    code, report = import_json(server, write_csv(tmp_path / "rows" / "c.csv", rows))
    assert code == 1 and report["created"] == 0
    assert "not in the CSV file's directory" in report["failures"][0]["reason"]  # type: ignore[index]
