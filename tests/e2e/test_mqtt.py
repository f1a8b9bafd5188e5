"""The DPS MQTT listener against a real server: CONNECT refusals, request/response, robustness."""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from pathlib import Path

import httpx
import pytest

from provisiond.api.dps_device.mqtt.codec import ConnAck, Connect, PubAck, Publish, SubAck, Subscribe, encode
from provisiond.domain.sas import build_sas
from tests.compat.support import link_hub, service_request
from tests.support.mqtt import MqttTestClient, device_connect
from tests.support.server import ServerProcess

KEY = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU="
REGISTER = "$dps/registrations/PUT/iotdps-register/?$rid={rid}"
POLL = "$dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid}&operationId={op}"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def hub(server: ServerProcess) -> str:
    return link_hub(server, "mqtt")


def enroll(server: ServerProcess, rid: str, hub: str) -> None:
    body = {
        "registrationId": rid,
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY}},
        "iotHubs": [hub],
    }
    assert service_request(server, "PUT", f"/enrollments/{rid}", json=body).status_code == 200


async def connect(
    server: ServerProcess, rid: str, key: str | None = KEY, **kw: object
) -> tuple[MqttTestClient, ConnAck]:
    return await device_connect(server.mqtt_port, server.ca, server.id_scope, rid, key, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("wrong scope", 5),
        ("bad token", 5),
        ("client id differs", 2),
        ("malformed username", 4),
        ("no password, no cert", 5),
        ("unknown device", 5),
    ],
)
async def test_bad_connects_get_the_right_connack_refusal(
    server: ServerProcess, hub: str, case: str, code: int
) -> None:
    rid = uid("mq-refuse")
    enroll(server, rid, hub)
    kwargs: dict[str, object] = {}
    key: str | None = KEY
    if case == "wrong scope":
        kwargs["username"] = f"0ne00000000/registrations/{rid}/api-version=2019-03-31"
    elif case == "bad token":
        key = "Zm9yZ2VkZm9yZ2VkZm9yZ2VkZm9yZ2VkZm9yZ2VkMTI="
    elif case == "client id differs":
        kwargs["client_id"] = "someone-else"
    elif case == "malformed username":
        kwargs["username"] = "not-a-dps-username"
    elif case == "no password, no cert":
        key = None
    elif case == "unknown device":
        rid = uid("mq-nobody")
    client, connack = await connect(server, rid, key, **kwargs)
    assert connack.return_code == code
    assert await client.closed()


async def test_protocol_level_other_than_311_is_refused(server: ServerProcess, hub: str) -> None:
    client = await MqttTestClient.open(server.mqtt_port, server.ca)
    await client.send(Connect("x", "u", b"p", protocol_name="MQIsdp", protocol_level=3))
    assert await client.recv() == ConnAck(1)
    assert await client.closed()


async def test_register_and_poll_over_mqtt_with_qos1_and_retry_after(server: ServerProcess, hub: str) -> None:
    rid = uid("mq-dev")
    enroll(server, rid, hub)
    client = await MqttTestClient.open(server.mqtt_port, server.ca)
    token = build_sas(
        KEY, f"{server.id_scope}%2Fregistrations%2F{rid}", 2_000_000_000
    )  # Python SDK style: encoded sr, no skn
    await client.send(
        Connect(
            rid,
            f"{server.id_scope}%2Fregistrations%2F{rid}%2Fapi-version%3D2019-03-31",
            token.encode(),
            60,
            False,
        )
    )
    assert await client.recv() == ConnAck(0)
    await client.send(Subscribe(5, (("$dps/registrations/res/#", 2),)))
    assert await client.recv() == SubAck(5, (1,))  # QoS 2 asked, at most 1 granted
    await client.send(
        Publish(
            REGISTER.format(rid="42"), json.dumps({"payload": None, "registrationId": rid}).encode(), 1, 9
        )
    )
    assert await client.recv() == PubAck(9)
    answer = await client.recv()
    assert isinstance(answer, Publish)
    assert answer.topic == "$dps/registrations/res/202/?$rid=42&retry-after=1"
    body = json.loads(answer.payload)
    assert body["status"] == "assigning"
    early = await client.request(POLL.format(rid="43", op=body["operationId"]), b" ")
    assert early.topic == "$dps/registrations/res/429/?$rid=43&retry-after=1"
    assert json.loads(early.payload)["errorCode"] == 429001
    await asyncio.sleep(1.05)  # the device honours retry-after, as the SDKs do
    rid_uuid = str(uuid.uuid4())
    done = await client.request(POLL.format(rid=rid_uuid, op=body["operationId"]), b" ", qos=1, packet_id=10)
    assert done.topic == f"$dps/registrations/res/200/?$rid={rid_uuid}"
    state = json.loads(done.payload)["registrationState"]
    assert (state["status"], state["assignedHub"], state["deviceId"]) == ("assigned", hub, rid)
    await client.close()


async def test_errors_are_json_answers_too(server: ServerProcess, hub: str) -> None:
    rid = uid("mq-err")
    enroll(server, rid, hub)
    client, _ = await connect(server, rid)
    bad = await client.request(REGISTER.format(rid="1"), b"{not json")
    assert bad.topic.startswith("$dps/registrations/res/400/?$rid=1")
    assert json.loads(bad.payload)["errorCode"] == 400001
    unknown = await client.request(POLL.format(rid="2", op="4.nope"), b" ")
    assert (
        unknown.topic.startswith("$dps/registrations/res/404/")
        and json.loads(unknown.payload)["errorCode"] == 404201
    )
    await client.close()


async def test_each_device_only_receives_its_own_answers(server: ServerProcess, hub: str) -> None:
    a, b = uid("mq-a"), uid("mq-b")
    enroll(server, a, hub)
    enroll(server, b, hub)
    client_a, _ = await connect(server, a)
    client_b, _ = await connect(server, b)
    answer_a = await client_a.request(REGISTER.format(rid="same"), b"{}")
    assert json.loads(answer_a.payload)["status"] == "assigning"
    with pytest.raises(TimeoutError):
        await client_b.recv(timeout=0.5)  # b asked nothing, so it hears nothing
    await client_a.close()
    await client_b.close()


async def test_malformed_or_oversized_packets_close_only_that_connection(
    server: ServerProcess, hub: str
) -> None:
    rid = uid("mq-robust")
    enroll(server, rid, hub)
    healthy, _ = await connect(server, rid)
    broken, _ = await connect(server, rid)
    await broken.send(b"\x00\x00")  # packet type 0
    assert await broken.closed()
    huge, _ = await connect(server, rid)
    await huge.send(encode(Publish("t", b"x" * (200 * 1024)))[:6])
    assert await huge.closed()
    answer = await healthy.request(REGISTER.format(rid="7"), b"{}")
    assert json.loads(answer.payload)["status"] == "assigning"
    await healthy.close()


async def test_server_reports_open_mqtt_connections(server: ServerProcess, hub: str) -> None:
    rid = uid("mq-count")
    enroll(server, rid, hub)
    clients = [(await connect(server, rid))[0] for _ in range(5)]
    token = build_sas(server.owner_key, "localhost", 2_000_000_000, "provisioningserviceowner")
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=server.ca)) as http:
        r = await http.get(f"{server.base_url}/metrics", headers={"Authorization": token})
        unauthenticated = await http.get(f"{server.base_url}/metrics")
    value = next(
        float(line.split()[1])
        for line in r.text.splitlines()
        if line.startswith("provisiond_mqtt_connections ")
    )
    assert value >= 5
    assert unauthenticated.status_code == 401
    for client in clients:
        await client.close()


async def test_idle_connection_is_closed_at_one_and_a_half_keepalives(
    server: ServerProcess, hub: str
) -> None:
    """keep-alive 1 s: closed after about 1.5 s of silence, and not before 1 s."""
    rid = uid("mq-idle")
    enroll(server, rid, hub)
    client, connack = await connect(server, rid, keepalive=1)
    assert connack.return_code == 0
    started = asyncio.get_running_loop().time()
    assert await client.closed(timeout=5)
    assert asyncio.get_running_loop().time() - started >= 1.0


async def test_keepalive_0_is_accepted_and_served(server: ServerProcess, hub: str) -> None:
    """Keep-alive 0 ("none") is accepted; its idle limit is capped (tests/api/dps_device/test_mqtt_keepalive.py)."""
    rid = uid("mq-ka0")
    enroll(server, rid, hub)
    client, connack = await connect(server, rid, keepalive=0)
    assert connack.return_code == 0
    answer = await client.request(REGISTER.format(rid="1"), b"{}")
    assert json.loads(answer.payload)["status"] == "assigning"
    await client.close()


def test_a_busy_mqtt_port_makes_serve_exit_with_an_error(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    from tests.support.server import free_port

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        port = free_port()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "provisiond",
                "serve",
                "--data-dir",
                str(tmp_path),
                "--port",
                str(port),
                "--mqtt-port",
                str(taken),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert "cannot listen for MQTT" in result.stderr + result.stdout
