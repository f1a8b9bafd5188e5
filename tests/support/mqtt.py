"""A small asyncio MQTT client over TLS for tests and load (the official SDKs check correctness)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

from provisiond.api.dps_device.mqtt.codec import (
    ConnAck,
    Connect,
    Packet,
    PacketReader,
    Publish,
    Subscribe,
    encode,
)
from provisiond.domain.sas import build_sas

__all__ = ["MqttTestClient", "device_connect"]


@dataclass
class MqttTestClient:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    codec: PacketReader
    pending: deque[Packet] = field(default_factory=deque)

    @classmethod
    async def open(cls, port: int, ca: str, *, cert: tuple[str, str] | None = None) -> MqttTestClient:
        context = ssl.create_default_context(cafile=ca)
        if cert:
            context.load_cert_chain(*cert)
        reader, writer = await asyncio.open_connection("localhost", port, ssl=context)
        return cls(reader, writer, PacketReader(max_size=1 << 22))

    async def send(self, packet: Packet | bytes) -> None:
        self.writer.write(packet if isinstance(packet, bytes) else encode(packet))
        await self.writer.drain()

    async def recv(self, timeout: float = 10) -> Packet | None:
        """The next packet, or ``None`` when the server closed the connection.

        One read can carry several packets (a PUBACK and the answer PUBLISH, say); the ones not
        returned wait in ``pending`` for the next call, which must not block on the socket.
        """
        deadline = time.monotonic() + timeout
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), max(0.01, deadline - time.monotonic()))
            if not data:
                return None
            self.pending.extend(self.codec.feed(data))
        return self.pending.popleft()

    async def closed(self, timeout: float = 10) -> bool:
        try:
            while (packet := await self.recv(timeout)) is not None:
                del packet
        except TimeoutError:
            return False
        return True

    async def request(
        self, topic: str, payload: bytes, qos: int = 0, packet_id: int = 1, timeout: float = 10
    ) -> Publish:
        """Publish a DPS request and return the response PUBLISH (skipping PUBACKs)."""
        await self.send(Publish(topic, payload, qos, packet_id if qos else None))
        while True:
            packet = await self.recv(timeout)
            assert packet is not None, "connection closed"
            if isinstance(packet, Publish):
                return packet

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await self.writer.wait_closed()


async def device_connect(
    port: int,
    ca: str,
    scope: str,
    registration_id: str,
    key: str | None,
    *,
    client_id: str | None = None,
    username: str | None = None,
    keepalive: int = 60,
    cert: tuple[str, str] | None = None,
    subscribe: bool = True,
) -> tuple[MqttTestClient, ConnAck]:
    """CONNECT (and SUBSCRIBE) as a DPS device, the way the Node SDK does."""
    client = await MqttTestClient.open(port, ca, cert=cert)
    user = (
        username or f"{scope}/registrations/{registration_id}/api-version=2019-03-31&ClientVersion=test%2F1.0"
    )
    password = (
        build_sas(
            key, f"{scope}/registrations/{registration_id}", int(time.time()) + 600, "registration"
        ).encode()
        if key
        else None
    )
    await client.send(Connect(client_id or registration_id, user, password, keepalive))
    connack = await client.recv()
    assert isinstance(connack, ConnAck), connack
    if subscribe and connack.return_code == 0:
        await client.send(Subscribe(1, (("$dps/registrations/res/#", 1),)))
        await client.recv()
    return client, connack


def new_rid() -> str:
    return str(uuid.uuid4())
