"""Secrets at rest against real processes: private files, sealed keys, outer-key rotation.

Keys are searched for in what a thief of a backup would hold (a copy of the SQLite files, a
pg_dump) both as the text the APIs show (base64) and as the raw bytes it decodes to.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisiond.domain.sas import build_sas
from tests.compat.support import derive_device_key, link_hub, new_symmetric_key, unique_id
from tests.support.operations import clean_database
from tests.support.server import PROVISIOND, ServerProcess, start_server

API = {"api-version": "2021-10-01"}
DEVICE_API = {"api-version": "2019-03-31"}


def client(server: ServerProcess) -> httpx.Client:
    return server.http()


def owner_token(server: ServerProcess) -> str:
    return server.service_sas()


def enroll(server: ServerProcess, http: httpx.Client, rid: str, key: str, hub: str) -> None:
    body = {
        "registrationId": rid,
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key, "secondaryKey": key}},
        "iotHubs": [hub],
    }
    r = http.put(f"/enrollments/{rid}", params=API, json=body, headers={"Authorization": owner_token(server)})
    assert r.status_code == 200, r.text


def enroll_many(
    server: ServerProcess, http: httpx.Client, prefix: str, count: int, hub: str
) -> dict[str, str]:
    """``count`` individual enrollments through bulk creates of 10; their keys by registration id."""
    keys = {f"{prefix}-{n:05d}": new_symmetric_key() for n in range(count)}
    items = list(keys.items())
    for start in range(0, count, 10):
        body = {
            "mode": "create",
            "enrollments": [
                {
                    "registrationId": rid,
                    "attestation": {
                        "type": "symmetricKey",
                        "symmetricKey": {"primaryKey": key, "secondaryKey": key},
                    },
                    "iotHubs": [hub],
                }
                for rid, key in items[start : start + 10]
            ],
        }
        r = http.post("/enrollments", params=API, json=body, headers={"Authorization": owner_token(server)})
        assert r.status_code == 200 and r.json()["isSuccessful"], r.text
    return keys


def register(server: ServerProcess, http: httpx.Client, rid: str, key: str) -> dict[str, Any]:
    """Register and read the result with the status lookup (decided in the register call)."""
    token = build_sas(key, f"{server.id_scope}/registrations/{rid}", int(time.time()) + 600, "registration")
    r = http.put(
        f"/{server.id_scope}/registrations/{rid}/register",
        params=DEVICE_API,
        json={"registrationId": rid},
        headers={"Authorization": token},
    )
    assert r.status_code == 202, r.text
    r = http.post(
        f"/{server.id_scope}/registrations/{rid}",
        params=DEVICE_API,
        json={},
        headers={"Authorization": token},
    )
    assert r.status_code == 200, r.text
    state: dict[str, Any] = r.json()
    return state


def stored_keys(server: ServerProcess, http: httpx.Client, rid: str) -> tuple[str, str]:
    r = http.post(
        f"/enrollments/{rid}/attestationmechanism", params=API, headers={"Authorization": owner_token(server)}
    )
    assert r.status_code == 200, r.text
    sym = r.json()["symmetricKey"]
    return sym["primaryKey"], sym["secondaryKey"]


def key_file(server: ServerProcess) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((server.data_dir / "secrets.key").read_text())
    return data


# -- private files ------------------------------------------------------------------------------------


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The default umask of most shells: files 0644 unless the service says otherwise."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_data_dir_and_secret_files_are_private_whatever_the_umask(tmp_path: Path, umask_022: None) -> None:
    server = start_server(tmp_path / "data")
    try:
        hub = link_hub(server, "modes")
        rid, key = unique_id("modes"), new_symmetric_key()
        with client(server) as http:
            enroll(server, http, rid, key, hub)
            assert register(server, http, rid, key)["status"] == "assigned"
        data = server.data_dir
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        secret_files = [
            "provisiond.db",
            "provisiond.db-wal",
            "provisiond.db-shm",
            "settings.json",
            "secrets.key",
            "tls/ca.key",
            "tls/server.key",
        ]
        for name in secret_files:
            path = data / name
            assert path.exists(), name
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{name}: {oct(path.stat().st_mode)}"
        assert stat.S_IMODE((data / "tls").stat().st_mode) == 0o700
    finally:
        server.stop()


def test_a_loose_data_dir_is_tightened_at_start_with_one_log_line(tmp_path: Path, umask_022: None) -> None:
    data = tmp_path / "data"
    init = [*PROVISIOND, "init", "--data-dir", str(data), "--port", "18999", "--mqtt-port", "18998"]
    subprocess.run(init, check=True, capture_output=True, timeout=60)
    data.chmod(0o755)
    for path in data.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    result = subprocess.run(
        [*PROVISIOND, "dps", "hub", "list", "--json", "--data-dir", str(data)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(result.stdout) == {"hubs": []}
    lines = [line for line in result.stderr.splitlines() if "tightened" in line]
    assert len(lines) == 1, result.stderr
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in data.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path


# -- what a backup holds --------------------------------------------------------------------------------


def secrets_served(server: ServerProcess) -> list[str]:
    """Serve registrations (an individual device and a group member), return every key involved."""
    hub = link_hub(server, "backup")
    rid, key = unique_id("backup-ind"), new_symmetric_key()
    gid, group_key, member = unique_id("backup-grp"), new_symmetric_key(), unique_id("backup-member")
    with client(server) as http:
        enroll(server, http, rid, key, hub)
        body = {
            "enrollmentGroupId": gid,
            "attestation": {
                "type": "symmetricKey",
                "symmetricKey": {"primaryKey": group_key, "secondaryKey": group_key},
            },
            "iotHubs": [hub],
        }
        r = http.put(
            f"/enrollmentGroups/{gid}", params=API, json=body, headers={"Authorization": owner_token(server)}
        )
        assert r.status_code == 200, r.text
        member_key = derive_device_key(group_key, member)
        assert register(server, http, rid, key)["status"] == "assigned"
        assert register(server, http, member, member_key)["status"] == "assigned"
    policy = json.loads(
        server.cli("dps", "policy", "create", "backup-reader", "--rights", "EnrollmentRead", "--json").stdout
    )
    # A hub connector's connection string (no device goes there: only its storage matters here).
    hub_key = new_symmetric_key()
    secret_file = server.data_dir.parent / "hub-connection.txt"
    secret_file.write_text(
        f"HostName=backup-hub.example;SharedAccessKeyName=provisioning;SharedAccessKey={hub_key}"
    )
    server.cli("dps", "hub", "add", "backup-hub.example", "--connector", "iothub", "--connection-string-file",
               str(secret_file), "--weight", "1")  # fmt: skip
    return [
        server.owner_key,
        key,
        group_key,
        member_key,
        policy["primaryKey"],
        policy["secondaryKey"],
        hub_key,
    ]


def assert_absent(blob: bytes, keys: list[str]) -> None:
    for key in keys:
        assert key.encode() not in blob, "a key is in the backup as text"
        raw = base64.b64decode(key)
        assert raw not in blob, "a key is in the backup as raw bytes"
        assert base64.urlsafe_b64encode(raw).rstrip(b"=") not in blob, "a key is in the backup as base64url"


def test_a_copy_of_the_sqlite_files_holds_no_key(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        keys = secrets_served(server)
    finally:
        server.stop()
    blob = b"".join(p.read_bytes() for p in server.data_dir.glob("provisiond.db*"))
    assert len(blob) > 100_000  # the database really is there
    assert_absent(blob, keys)


@pytest.mark.postgres
def test_a_pg_dump_holds_no_key(pg_url: str, tmp_path: Path) -> None:
    asyncio.run(clean_database(pg_url))
    server = start_server(tmp_path / "data", database=pg_url)
    try:
        keys = secrets_served(server)
    finally:
        server.stop()
    dump = subprocess.run(
        ["pg_dump", "--data-only", pg_url], check=True, capture_output=True, timeout=120
    ).stdout
    assert b"dps_policies" in dump and b"enrollments" in dump  # the dump really holds the tables
    assert_absent(dump, keys)


# -- a wrong or missing outer key ------------------------------------------------------------------------


def one_error(stderr: str) -> str:
    """The one error line (the serve log may hold INFO lines of its start before it)."""
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


def test_a_wrong_or_missing_outer_key_refuses_to_start(tmp_path: Path) -> None:
    first, other = tmp_path / "first", tmp_path / "other"
    for data, port in ((first, 18801), (other, 18802)):
        subprocess.run(
            [
                *PROVISIOND,
                "init",
                "--data-dir",
                str(data),
                "--port",
                str(port),
                "--mqtt-port",
                str(port + 100),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    (first / "secrets.key").write_bytes((other / "secrets.key").read_bytes())
    serve = [*PROVISIOND, "serve", "--data-dir", str(first)]
    wrong = subprocess.run(serve, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and one_error(wrong.stderr).endswith(
        "does not open this database's secrets (wrong key file?)"
    )
    (first / "secrets.key").unlink()
    missing = subprocess.run(serve, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "is missing" in one_error(missing.stderr)
    assert not (first / "secrets.key").exists(), "a new key was made for a database with sealed secrets"


# -- rotation ------------------------------------------------------------------------------------------------


def rotate(server: ServerProcess, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PROVISIOND, "secrets", "rotate", "--json", "--data-dir", str(server.data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_rotation_under_load_keeps_registrations_succeeding(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        hub = link_hub(server, "rotate")
        with client(server) as http:
            keys = enroll_many(server, http, unique_id("rot"), 300, hub)
        before = key_file(server)["current"]
        results: list[str] = []
        stop = threading.Event()

        def load() -> None:
            with client(server) as http:
                for rid, key in keys.items():
                    if stop.is_set():
                        return
                    results.append(register(server, http, rid, key)["status"])

        worker = threading.Thread(target=load)
        worker.start()
        proc = rotate(server, "--batch-size", "10")
        out, err = proc.communicate(timeout=120)
        stop.set()
        worker.join(timeout=120)
        assert proc.returncode == 0, err
        rotated = json.loads(out)
        assert rotated["retiredKeyIds"] == [before] and rotated["resealed"] >= 300
        assert before not in key_file(server)["keys"] and list(key_file(server)["keys"]) == [rotated["keyId"]]
        assert len(results) >= 10 and set(results) == {"assigned"}, results[:5]
        with client(server) as http:
            for rid, key in list(keys.items())[::37]:
                assert stored_keys(server, http, rid) == (key, key)
            rid = list(keys)[-1]
            assert register(server, http, rid, keys[rid])["status"] == "assigned"
        for secret in ("primaryKey", "serviceConnectionString"):
            assert secret not in out + err
    finally:
        server.stop()


def test_kill_9_during_rotation_then_rotate_again_leaves_every_key_readable(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        hub = link_hub(server, "crash")
        with client(server) as http:
            keys = enroll_many(server, http, unique_id("crash"), 400, hub)
        original = key_file(server)["current"]
        proc = rotate(server, "--batch-size", "5")
        assert proc.stderr is not None
        line = proc.stderr.readline()  # the first batch is resealed
        assert line.startswith("resealed"), line
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)  # reaps it and closes its pipes
        halfway = key_file(server)
        assert len(halfway["keys"]) == 2 and original in halfway["keys"], "both keys stay until the end"
        with client(server) as http:  # the running server reads values under either key
            for rid, key in list(keys.items())[::50]:
                assert stored_keys(server, http, rid) == (key, key)
        again = rotate(server)
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, err
        result = json.loads(out)
        assert result["keyId"] == halfway["current"], "the interrupted rotation is finished, not restarted"
        assert result["retiredKeyIds"] == [original]
        assert list(key_file(server)["keys"]) == [halfway["current"]]
        with client(server) as http:
            for rid, key in keys.items():
                assert stored_keys(server, http, rid) == (key, key)
            rid = list(keys)[7]
            assert register(server, http, rid, keys[rid])["status"] == "assigned"
        listed = server.cli("dps", "policy", "list", "--json")
        assert listed.returncode == 0
    finally:
        server.stop()
