"""An MQTT session answers every request, even when the service underneath fails unexpectedly.

The real service is exercised end to end in tests/e2e/test_mqtt.py; here a service that raises
a plain RuntimeError stands in for a bug, which no real input can be relied on to produce.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any, cast

from provisiond.api.dps_device.mqtt.codec import ConnAck, Connect, PacketReader, PubAck, Publish, encode
from provisiond.api.dps_device.mqtt.session import MqttSession
from provisiond.services.registration import RegistrationService


class _BrokenRegistrations:
    """A contract double of the registration service whose register fails with ``error``."""

    settings = SimpleNamespace(retry_after=3)

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def authenticate(self, *_args: Any) -> None:
        return None

    async def register(self, *_args: Any, **_kwargs: Any) -> None:
        raise self.error


async def _answer(error: Exception, payload: bytes = b"{}") -> tuple[str, dict[str, Any]]:
    """CONNECT, publish one register, and return the answer's topic and body."""
    sent = PacketReader()
    answers: list[Any] = []
    session = MqttSession(
        cast(RegistrationService, _BrokenRegistrations(error)),
        send=lambda data: answers.extend(sent.feed(data)),
        close=lambda: None,
    )
    username = "0ne00000001/registrations/dev-1/api-version=2019-03-31"
    session.feed(encode(Connect("dev-1", username, b"sas", keepalive=0)))
    session.feed(encode(Publish("$dps/registrations/PUT/iotdps-register/?$rid=7", payload, 1, 3)))
    for _ in range(20):
        if len(answers) == 3:
            break
        await asyncio.sleep(0.01)
    session.close()

    assert answers[:2] == [ConnAck(0), PubAck(3)]
    answer = answers[2]
    assert isinstance(answer, Publish)
    body: dict[str, Any] = json.loads(answer.payload)
    return answer.topic, body


async def test_a_failing_register_is_answered_with_a_dps_500() -> None:
    topic, body = await _answer(RuntimeError("a bug"))
    assert topic == "$dps/registrations/res/500/?$rid=7"
    assert body["errorCode"] == 500000


async def test_a_value_error_from_below_is_a_500_not_a_malformed_json_body() -> None:
    """Only the JSON decoder's error is "malformed JSON": any other ValueError is a fault (it was
    once answered 400001, which told the device its own well-formed body was broken)."""
    topic, body = await _answer(ValueError("a fault in signing"))
    assert topic == "$dps/registrations/res/500/?$rid=7"
    assert body["errorCode"] == 500000 and "JSON" not in body["message"]


async def test_a_register_body_that_is_not_json_is_a_400001() -> None:
    topic, body = await _answer(RuntimeError("never reached"), payload=b"{not json")
    assert topic == "$dps/registrations/res/400/?$rid=7"
    assert body["errorCode"] == 400001 and "malformed JSON body" in body["message"]
