"""The operator contract (README.md, "Operator commands") against real processes: init, serve, dps policy."""

from __future__ import annotations

import json
import signal
import ssl
import time
from pathlib import Path

import httpx

from provisiond.domain.sas import build_sas
from tests.support.server import PROVISIOND, ServerProcess, start_server

INIT_KEYS = {
    "idScope",
    "serviceHost",
    "httpsPort",
    "mqttPort",
    "serviceConnectionString",
    "caCertificate",
    "dataDir",
}


def call(
    server: ServerProcess, key: str, policy: str, method: str = "GET", path: str = "/enrollments/nobody"
) -> httpx.Response:
    token = build_sas(key, "localhost", int(time.time()) + 600, policy)
    with httpx.Client(
        base_url=server.base_url, verify=ssl.create_default_context(cafile=server.ca)
    ) as client:
        return client.request(
            method, path, params={"api-version": "2021-10-01"}, headers={"Authorization": token}
        )


def test_init_json_has_the_contract_keys_and_is_idempotent(server: ServerProcess) -> None:
    first = json.loads(server.cli("init", "--json").stdout)
    second = json.loads(server.cli("init", "--json").stdout)
    assert set(first) == INIT_KEYS and first == second == server.init
    assert first["idScope"].startswith("0ne") and len(first["idScope"]) == 11
    assert Path(first["caCertificate"]).is_absolute() and Path(first["caCertificate"]).is_file()
    conn = first["serviceConnectionString"]
    assert conn.startswith(
        f"HostName=localhost:{server.port};SharedAccessKeyName=provisioningserviceowner;SharedAccessKey="
    )
    assert conn.count(";") == 2


def test_policy_create_list_delete_and_its_rights_on_a_running_server(server: ServerProcess) -> None:
    created = json.loads(
        server.cli("dps", "policy", "create", "reader", "--rights", "EnrollmentRead", "--json").stdout
    )
    assert {"primaryKey", "secondaryKey", "connectionString"} <= set(created)
    assert created["connectionString"].endswith(created["primaryKey"])
    listed = json.loads(server.cli("dps", "policy", "list", "--json").stdout)["policies"]
    assert {"name": "reader", "rights": ["EnrollmentRead"]} in listed
    assert all("primaryKey" not in p for p in listed)

    assert (
        call(server, created["primaryKey"], "reader").status_code == 404
    )  # read allowed: the record is missing
    assert call(server, created["secondaryKey"], "reader", "DELETE").status_code == 401  # write right lacking

    server.cli("dps", "policy", "delete", "reader")
    time.sleep(2.1)  # the server caches policies for 2 s; this waits out that documented window
    assert call(server, created["primaryKey"], "reader").status_code == 401


def test_policy_commands_refuse_bad_input_with_a_message(server: ServerProcess) -> None:
    bad_right = server.cli("dps", "policy", "create", "p1", "--rights", "Everything", check=False)
    assert bad_right.returncode == 1 and "unknown right" in bad_right.stderr
    owner = server.cli("dps", "policy", "delete", "provisioningserviceowner", check=False)
    assert owner.returncode == 1 and "cannot be deleted" in owner.stderr
    missing = server.cli("dps", "policy", "delete", "ghost", check=False)
    assert missing.returncode == 1 and "no policy" in missing.stderr


def test_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc = start_server(tmp_path)
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(timeout=15) == 0
    assert "Traceback" not in proc.log.read_text()


def test_serve_stopped_while_it_starts_exits_0(tmp_path: Path) -> None:
    """SIGTERM as soon as the HTTPS port is bound, which is before the app has started and
    before uvicorn takes the signals: a supervisor stopping a server that is still starting."""
    import subprocess

    from tests.support.server import _wait_for_port, free_port

    port = free_port()
    log = tmp_path / "log"
    subprocess.run([*PROVISIOND, "init", "--data-dir", str(tmp_path / "d")], check=True, capture_output=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *PROVISIOND,
                "serve",
                "--data-dir",
                str(tmp_path / "d"),
                "--port",
                str(port),
                "--mqtt-port",
                str(free_port()),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    _wait_for_port(port, proc, log)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert "Traceback" not in log.read_text()


def test_serve_initialises_a_new_data_dir_itself(tmp_path: Path) -> None:
    import subprocess

    from tests.support.server import _wait_for_port, free_port

    port = free_port()
    log = tmp_path / "log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*PROVISIOND, "serve", "--data-dir", str(tmp_path / "d"), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, proc, log)
        ca = tmp_path / "d" / "tls" / "ca.pem"
        r = httpx.get(
            f"https://localhost:{port}/enrollments/x",
            params={"api-version": "2021-10-01"},
            verify=ssl.create_default_context(cafile=str(ca)),
        )
        assert r.status_code == 401 and r.json()["errorCode"] == 401000
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def test_bad_settings_are_one_line_errors_not_tracebacks(tmp_path: Path) -> None:
    import subprocess

    data_dir = tmp_path / "d"

    def provisiond(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PROVISIOND, *args, "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60
        )

    assert provisiond("init").returncode == 0
    settings_file = data_dir / "settings.json"
    settings = json.loads(settings_file.read_text())

    settings_file.write_text(json.dumps({**settings, "processes": 0}))
    bad = provisiond("serve")
    assert bad.returncode == 2
    assert "error: bad settings" in bad.stderr and "processes" in bad.stderr
    assert "Traceback" not in bad.stderr

    settings_file.write_text("{not json")
    broken = provisiond("dps", "policy", "list")
    assert broken.returncode == 2
    assert "settings.json in the data dir is not JSON" in broken.stderr
    assert "Traceback" not in broken.stderr

    settings_file.write_text("[]")
    listed = provisiond("dps", "policy", "list")
    assert listed.returncode == 2
    assert "must hold a JSON object" in listed.stderr and "Traceback" not in listed.stderr
