"""The MQTT idle limit is 1.5 x the CONNECT keep-alive, and never unbounded.

Keep-alive 0 means "no keep-alive" in MQTT, and Azure IoT Hub caps keep-alives at 1767 s; both
are held to that cap, so a silent connection is closed after 44 minutes at most. Waiting that
long for a real server is no test: the computation is checked here, and a session connected with
keep-alive 0 is shown to close once a (shortened) cap has passed. tests/e2e/test_mqtt.py checks
that a real server closes a 1 s keep-alive connection at 1.5 s.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from provisiond.api.dps_device.mqtt import session as session_module
from provisiond.api.dps_device.mqtt.codec import Connect, encode
from provisiond.api.dps_device.mqtt.session import MAX_KEEPALIVE, MqttSession, idle_limit
from provisiond.services.registration import RegistrationService

USERNAME = "0ne00000001/registrations/dev-1/api-version=2019-03-31"


class _Accepting:
    async def authenticate(self, *_args: Any) -> None:
        return None


@pytest.mark.parametrize(
    ("keepalive", "limit"),
    [
        (1, 1.5),
        (60, 90.0),
        (MAX_KEEPALIVE, 2650.5),
        (0, 2650.5),
        (MAX_KEEPALIVE + 1, 2650.5),
        (65535, 2650.5),
    ],
)
def test_the_idle_limit_is_one_and_a_half_keepalives_capped_at_iot_hubs_maximum(
    keepalive: int, limit: float
) -> None:
    assert MAX_KEEPALIVE == 1767
    assert idle_limit(keepalive) == limit


async def test_a_session_connected_with_keepalive_0_is_closed_once_the_capped_limit_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(session_module, "MAX_KEEPALIVE", 0.2)  # 0.3 s of silence, not 44 minutes
    closed = asyncio.Event()
    session = MqttSession(cast(RegistrationService, _Accepting()), send=lambda _data: None, close=closed.set)
    try:
        session.feed(encode(Connect("dev-1", USERNAME, b"sas", keepalive=0)))
        await asyncio.wait_for(closed.wait(), timeout=5)
        assert session.idle_timeout == pytest.approx(0.3)
    finally:
        session.close()
