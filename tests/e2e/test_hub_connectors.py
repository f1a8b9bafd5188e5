"""Hub connectors with real processes: the operator CLI, a device over MQTT, kill -9 mid-connector.

The hub is the contract double of IoT Hub's registry API (tests/support/iothub_double.py; no IoT
Hub runs here), served from this test process; the server reaches it through ``--endpoint`` and
trusts its CA through ``--ca-file``, as an operator does for a hub at another address.
"""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from provisiond.domain.sas import build_sas
from tests.compat.support import service_request
from tests.support.iothub_double import IotHubDouble, serve_iothub
from tests.support.mqtt import device_connect
from tests.support.server import ServerProcess, start_server

KEY = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU="
HUB = "contoso-hub.azure-devices.net"
REGISTER = "$dps/registrations/PUT/iotdps-register/?$rid={rid}"
POLL = "$dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid}&operationId={op}"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[IotHubDouble]:
    (tmp_path / "hub").mkdir()
    with serve_iothub(tmp_path / "hub", HUB) as double:
        yield double


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path / "data", settings={"hub_retry_seconds": 120})
    try:
        yield proc
    finally:
        proc.stop()


def link(
    server: ServerProcess, hub: IotHubDouble, tmp_path: Path, secret: str
) -> subprocess.CompletedProcess[str]:
    secret_file = tmp_path / "hub-connection.txt"
    secret_file.write_text(secret + "\n")
    return server.cli(
        "dps", "hub", "add", HUB, "--connector", "iothub", "--connection-string-file", str(secret_file),
        "--endpoint", hub.endpoint, "--ca-file", str(hub.ca_path), "--json",
    )  # fmt: skip


def enroll(server: ServerProcess, rid: str, **fields: object) -> None:
    body = {
        "registrationId": rid,
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY}},
        **fields,
    }
    r = service_request(server, "PUT", f"/enrollments/{rid}", json=body)
    assert r.status_code == 200, r.text


def poll_https(server: ServerProcess, rid: str, operation_id: str) -> dict[str, object]:
    token = build_sas(KEY, f"{server.id_scope}/registrations/{rid}", int(time.time()) + 600, "registration")
    with httpx.Client(
        verify=ssl.create_default_context(cafile=server.ca), trust_env=False, timeout=30
    ) as http:
        for _ in range(60):
            time.sleep(1)
            r = http.get(
                f"{server.base_url}/{server.id_scope}/registrations/{rid}/operations/{operation_id}",
                params={"api-version": "2019-03-31"},
                headers={"Authorization": token},
            )
            if r.status_code == 200:
                result: dict[str, object] = r.json()
                return result
            assert r.status_code in (202, 429), r.text
    raise AssertionError("the registration never finished")


def test_the_operator_links_and_tests_an_iothub_connector_and_its_key_is_never_printed(
    server: ServerProcess, hub: IotHubDouble, tmp_path: Path
) -> None:
    secret = hub.add_policy("provisioning")
    key = hub.policies["provisioning"][0]
    added = link(server, hub, tmp_path, secret)
    assert json.loads(added.stdout) == {"hostName": HUB, "weight": 1, "region": None, "connector": "iothub"}
    listed = server.cli("dps", "hub", "list", "--json")
    assert json.loads(listed.stdout) == {
        "hubs": [{"hostName": HUB, "weight": 1, "region": None, "connector": "iothub"}]
    }
    human = server.cli("dps", "hub", "list")
    tested = server.cli("dps", "hub", "test", HUB)
    assert "RegistryWrite and ServiceConnect accepted" in tested.stdout
    assert [c[1] for c in hub.calls("GET")][-1] == "/statistics/devices"
    assert hub.devices == {}  # the probes change nothing
    # A key the hub does not know: the test call says so, and prints the hub's error, not the key.
    hub.add_policy("provisioning")
    refused = server.cli("dps", "hub", "test", HUB, check=False)
    assert refused.returncode == 1
    assert "IotHubUnauthorizedAccess" in refused.stderr
    for out in (added, listed, human, tested, refused):
        text = out.stdout + out.stderr
        assert key not in text and "SharedAccessKey=" not in text
    # The secret is sealed in the database, not readable there either.
    # Refused before anything is written: no secret, a malformed one (not echoed), a connector not built yet.
    bad = tmp_path / "bad-connection.txt"
    bad.write_text("HostName=x;SharedAccessKeyName=p;SharedAccessKey=s3cr3t!!")
    for args, said in (
        (["--connector", "iothub"], "needs --connection-string-file"),
        (["--connector", "iothub", "--connection-string-file", str(bad)], "SharedAccessKey is not base64"),
        (["--connector", "mosquitto"], "needs --admin-user and --admin-password-file"),
        (["--connector", "iothub", "--connection-string-file", str(tmp_path / "missing")], "cannot read"),
    ):
        out = server.cli("dps", "hub", "add", "other-hub.example", *args, check=False)
        assert out.returncode == 1 and said in out.stderr and "s3cr3t" not in out.stderr, out.stderr
    assert [h["hostName"] for h in json.loads(server.cli("dps", "hub", "list", "--json").stdout)["hubs"]] == [
        HUB
    ]
    files = list(server.data_dir.glob("provisiond.db*"))  # with the WAL, where new rows are first
    assert files and all(key.encode() not in f.read_bytes() for f in files)


def test_a_device_over_mqtt_is_created_at_the_hub_and_deprovision_removes_it(
    server: ServerProcess, hub: IotHubDouble, tmp_path: Path
) -> None:
    link(server, hub, tmp_path, hub.add_policy("provisioning"))
    enroll(server, "mqtt-hub-1", capabilities={"iotEdge": True})

    async def over_mqtt() -> dict[str, object]:
        client, connack = await device_connect(
            server.mqtt_port, server.ca, server.id_scope, "mqtt-hub-1", KEY
        )
        assert connack.return_code == 0
        answer = await client.request(
            REGISTER.format(rid="1"), json.dumps({"registrationId": "mqtt-hub-1"}).encode()
        )
        operation_id = json.loads(answer.payload)["operationId"]
        for i in range(60):
            await asyncio.sleep(1.05)
            polled = await client.request(POLL.format(rid=f"p{i}", op=operation_id), b" ")
            if "/res/200/" in polled.topic:
                await client.close()
                result: dict[str, object] = json.loads(polled.payload)
                return result
        raise AssertionError("never assigned")

    result = asyncio.run(over_mqtt())
    assert result["status"] == "assigned"
    assert hub.devices["mqtt-hub-1"]["authentication"]["symmetricKey"]["primaryKey"] == KEY
    assert hub.devices["mqtt-hub-1"]["capabilities"] == {"iotEdge": True}
    gone = server.cli("dps", "deprovision", "mqtt-hub-1", "--json")
    assert json.loads(gone.stdout) == {
        "registrationId": "mqtt-hub-1",
        "hub": HUB,
        "identityDeleted": True,
        "revokedSerials": [],
        "identity": f"identity deleted at {HUB}",
    }
    assert hub.devices == {}
    assert service_request(server, "GET", "/registrations/mqtt-hub-1").status_code == 404


def test_kill_9_while_the_hub_throttles_resumes_after_restart_without_a_duplicate(
    server: ServerProcess, hub: IotHubDouble, tmp_path: Path
) -> None:
    link(server, hub, tmp_path, hub.add_policy("provisioning"))
    enroll(server, "crash-hub-1", initialTwin={"tags": {"batch": 7}})
    hub.throttle(100_000, retry_after="1")
    operation_id = server.register_device("crash-hub-1", KEY)
    deadline = time.monotonic() + 30
    while not hub.calls("PUT") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hub.calls("PUT"), "the connector never called the hub"
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    hub.faults.clear()
    restarted = start_server(server.data_dir)
    try:
        result = poll_https(restarted, "crash-hub-1", operation_id)
    finally:
        restarted.stop()
    assert result["status"] == "assigned", result
    assert list(hub.devices) == ["crash-hub-1"]
    assert hub.twins["crash-hub-1"]["tags"] == {"batch": 7}
