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
    settings = SimpleNamespace(retry_after=3)

    async def authenticate(self, *_args: Any) -> None:
        return None

    async def register(self, *_args: Any) -> None:
        raise RuntimeError("a bug")


async def test_a_failing_register_is_answered_with_a_dps_500() -> None:
    sent = PacketReader()
    answers: list[Any] = []
    session = MqttSession(
        cast(RegistrationService, _BrokenRegistrations()),
        send=lambda data: answers.extend(sent.feed(data)),
        close=lambda: None,
    )
    username = "0ne00000001/registrations/dev-1/api-version=2019-03-31"
    session.feed(encode(Connect("dev-1", username, b"sas", keepalive=0)))
    session.feed(encode(Publish("$dps/registrations/PUT/iotdps-register/?$rid=7", b"{}", 1, 3)))
    for _ in range(20):
        if len(answers) == 3:
            break
        await asyncio.sleep(0.01)
    session.close()

    assert answers[:2] == [ConnAck(0), PubAck(3)]
    answer = answers[2]
    assert isinstance(answer, Publish)
    assert answer.topic == "$dps/registrations/res/500/?$rid=7"
    assert json.loads(answer.payload)["errorCode"] == 500000
