"""The two ways MQTT bytes reach a session: a TLS socket on the MQTT port, a WebSocket on HTTPS."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

from starlette.websockets import WebSocket, WebSocketDisconnect

from provisiond.api.dps_device.mqtt.session import MqttSession
from provisiond.domain.audit import Transport
from provisiond.services.registration import RegistrationService
from provisiond.tls.front import peer_chain

__all__ = ["MqttProtocol", "serve_websocket"]


class MqttProtocol(asyncio.Protocol):
    """MQTT over a transport the TLS front decrypted (``peer_chain`` holds the client's chain)."""

    def __init__(
        self, registrations: Callable[[], RegistrationService], sessions: set[MqttSession] | None = None
    ) -> None:
        self._registrations = registrations
        self._sessions = sessions
        self._session: MqttSession | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        self._session = MqttSession(
            self._registrations(),
            send=transport.write,
            close=transport.close,
            client_chain=peer_chain.get(),
            client_ip=peer[0] if peer else None,
            available=not transport.get_extra_info("over_capacity", False),  # see tls/front.py
            sessions=self._sessions,
        )

    def data_received(self, data: bytes) -> None:
        if self._session is not None:
            self._session.feed(data)

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._session is not None:
            self._session.connection_lost()


async def serve_websocket(
    websocket: WebSocket, registrations: RegistrationService, sessions: set[MqttSession] | None = None
) -> None:
    """MQTT over WebSocket (subprotocol ``mqtt``), as the SDKs' websocket option uses."""
    if "mqtt" not in websocket.scope.get("subprotocols", []):
        await websocket.close(code=1002)
        return
    await websocket.accept(subprotocol="mqtt")
    outgoing: asyncio.Queue[bytes | None] = asyncio.Queue()
    tls = websocket.scope.get("extensions", {}).get("tls") or {}
    chain = tuple(ssl.PEM_cert_to_DER_cert(pem) for pem in tls.get("client_cert_chain") or ())
    client = websocket.client
    session = MqttSession(
        registrations,
        send=outgoing.put_nowait,
        close=lambda: outgoing.put_nowait(None),
        client_chain=chain,
        chain_error=tls.get("client_cert_error"),
        client_ip=client.host if client else None,
        sessions=sessions,
        transport=Transport.WEBSOCKET,
    )

    async def pump_out() -> None:
        while (data := await outgoing.get()) is not None:
            await websocket.send_bytes(data)
        await websocket.close()

    sender = asyncio.get_running_loop().create_task(pump_out())
    try:
        while not sender.done():
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("bytes") or (message.get("text") or "").encode()
            session.feed(data)
    except WebSocketDisconnect:
        pass
    finally:
        session.connection_lost()
        sender.cancel()
