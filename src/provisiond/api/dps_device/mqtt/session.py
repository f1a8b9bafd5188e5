"""One MQTT device connection, independent of how its bytes travel (TLS socket or WebSocket).

DPS over MQTT is request/response, not publish/subscribe: a device CONNECTs (its credentials
are checked right there), SUBSCRIBEs to ``$dps/registrations/res/#``, and PUBLISHes register and
poll requests; each gets one PUBLISH back on ``$dps/registrations/res/{status}/?$rid=…``. So
no broker is involved: answers go straight back to the connection that asked, and a device can
never receive anything but its own answers. No state outlives the connection (clean session 0
is accepted and treated as 1).
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
import uuid
from collections.abc import Callable

from provisiond.api.dps_device.errors import device_error_for
from provisiond.api.dps_device.mapping import (
    operation_answer,
    register_answer,
    registration_csr,
    registration_payload,
)
from provisiond.api.dps_device.mqtt.codec import (
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PacketReader,
    PingReq,
    PingResp,
    ProtocolError,
    PubAck,
    Publish,
    SubAck,
    Subscribe,
    UnsubAck,
    Unsubscribe,
    encode,
)
from provisiond.api.dps_wire import INTERNAL, DpsError, dps_error_body, issuance_version
from provisiond.api.http import MalformedJson, parse_json
from provisiond.domain.audit import Actor, ActorKind, AuditContext, Transport
from provisiond.errors import InvalidInput, ProvisiondError, Unauthorized
from provisiond.services import audit
from provisiond.services.device_auth import Credentials, UnknownIdScope, UnknownRegistration
from provisiond.services.registration import RegistrationService
from provisiond.services.tpm_attestation import TpmChallenge

__all__ = ["MAX_KEEPALIVE", "MAX_PACKET", "MqttSession", "idle_limit"]

log = logging.getLogger(__name__)

MAX_PACKET = 128 * 1024  # a 96 KB DPS body plus topic and headers
CONNECT_TIMEOUT = 10.0
# Azure IoT Hub's largest keep-alive, seconds. MQTT's 0 ("no keep-alive") and anything longer are
# held to it, so that no connection, not even a silent authenticated one, is kept without a bound.
MAX_KEEPALIVE = 1767
RESPONSE_TOPIC = "$dps/registrations/res/"
REGISTER_TOPIC = "$dps/registrations/PUT/iotdps-register/"
POLL_TOPIC = "$dps/registrations/GET/iotdps-get-operationstatus/"

# CONNACK return codes (MQTT 3.1.1 §3.2.2.3)
ACCEPTED, BAD_PROTOCOL, ID_REJECTED, SERVER_UNAVAILABLE, BAD_CREDENTIALS, NOT_AUTHORIZED = 0, 1, 2, 3, 4, 5


def _parse_username(username: str | None) -> tuple[str, str]:
    """``{idScope}/registrations/{registrationId}/api-version=…[&ClientVersion=…]`` -> (scope, id)."""
    if not username:
        raise InvalidInput("the username is required")
    text = urllib.parse.unquote(username)
    head = text.split("/api-version=", 1)[0].split("?", 1)[0]
    parts = head.split("/")
    if len(parts) != 3 or parts[1].lower() != "registrations" or not parts[0] or not parts[2]:
        raise InvalidInput("the username is not {idScope}/registrations/{registrationId}/api-version=…")
    return parts[0], parts[2]


def _api_version(username: str | None) -> str | None:
    """The ``api-version`` the username names (it decides whether ``csr`` is read)."""
    text = urllib.parse.unquote(username or "")
    if "api-version=" not in text:
        return None
    return text.split("api-version=", 1)[1].split("&", 1)[0]


def idle_limit(keepalive: int) -> float:
    """Seconds of silence after which a connection with this CONNECT keep-alive is closed: 1.5 x
    the keep-alive (MQTT 3.1.1 §3.1.2.10), which 0 or above ``MAX_KEEPALIVE`` counts as that."""
    return 1.5 * (keepalive if 0 < keepalive <= MAX_KEEPALIVE else MAX_KEEPALIVE)


def _query(topic: str, prefix: str) -> dict[str, str] | None:
    """The raw (still encoded) query parameters of a request topic, or ``None`` for another topic."""
    if not topic.startswith(prefix):
        return None
    rest = topic[len(prefix) :]
    if not rest.startswith("?"):
        return {}
    params: dict[str, str] = {}
    for part in rest[1:].split("&"):
        name, _, value = part.partition("=")
        params[name] = value
    return params


class MqttSession:
    """The protocol state machine of one connection; ``feed`` bytes in, ``send`` bytes out.

    While open it belongs to ``sessions``, the registry of whoever runs the listeners (the
    server closes them all at shutdown, and ``/metrics`` counts them).
    """

    def __init__(
        self,
        registrations: RegistrationService,
        *,
        send: Callable[[bytes], None],
        close: Callable[[], None],
        client_chain: tuple[bytes, ...] = (),
        chain_error: str | None = None,
        client_ip: str | None = None,
        available: bool = True,
        sessions: set[MqttSession] | None = None,
        transport: Transport = Transport.MQTT,
    ) -> None:
        self._registrations = registrations
        self._sessions: set[MqttSession] = set() if sessions is None else sessions
        self._available = available  # false: over the connection limit, every CONNECT is refused
        self._send = send
        self._close = close
        self._chain = client_chain
        self._chain_error = chain_error
        self._client_ip = client_ip
        self._transport = transport  # MQTT over TLS or over a WebSocket, for the audit trail
        self._reader = PacketReader(MAX_PACKET)
        self._queue: asyncio.Queue[Packet] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._worker = self._loop.create_task(self._run())
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._identity: tuple[str, str, Credentials] | None = None
        self._issuance = False  # the CONNECT's api-version has certificate issuance
        self._idle: asyncio.TimerHandle | None = self._loop.call_later(CONNECT_TIMEOUT, self.close)
        self._idle_after: float | None = None
        self._sessions.add(self)

    @property
    def idle_timeout(self) -> float | None:
        """Seconds of silence after which the connection is closed (``idle_limit``); before the
        CONNECT is accepted, ``None`` (the CONNECT deadline applies then)."""
        return self._idle_after

    # -- transport side -----------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            packets = self._reader.feed(data)
        except ProtocolError as exc:
            log.debug("closing MQTT connection: %s", exc)
            self.close()
            return
        if packets and self._idle_after is not None:
            self._arm_idle(self._idle_after)
        for packet in packets:
            self._queue.put_nowait(packet)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._sessions.discard(self)
        if self._idle is not None:
            self._idle.cancel()
        self._worker.cancel()
        for task in self._tasks:
            task.cancel()
        self._close()

    def connection_lost(self) -> None:
        self._close = lambda: None
        self.close()

    # -- protocol -----------------------------------------------------------------------------

    def _write(self, packet: Packet) -> None:
        if not self._closed:
            self._send(encode(packet))

    def _arm_idle(self, seconds: float) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = self._loop.call_later(seconds, self.close)

    async def _run(self) -> None:
        try:
            first = await self._queue.get()
            if not isinstance(first, Connect) or not await self._connect(first):
                self.close()
                return
            while not self._closed:
                self._handle(await self._queue.get())
        except asyncio.CancelledError:
            raise
        except ProtocolError as exc:
            log.debug("closing MQTT connection: %s", exc)
            self.close()
        except Exception:
            log.exception("MQTT session failed")
            self.close()

    async def _connect(self, packet: Connect) -> bool:
        if not self._available:
            self._write(ConnAck(SERVER_UNAVAILABLE))
            return False
        if packet.protocol_name != "MQTT" or packet.protocol_level != 4:
            self._write(ConnAck(BAD_PROTOCOL))
            return False
        try:
            scope, registration_id = _parse_username(packet.username)
        except InvalidInput:
            self._write(ConnAck(BAD_CREDENTIALS))
            return False
        if packet.client_id != registration_id:
            self._write(ConnAck(ID_REJECTED))
            return False
        password = packet.password.decode("utf-8", "replace") if packet.password else None
        credentials = Credentials(password, self._chain, self._chain_error)
        try:
            await self._registrations.authenticate(scope, registration_id, credentials)
        except (Unauthorized, UnknownIdScope, UnknownRegistration, InvalidInput):
            self._write(ConnAck(NOT_AUTHORIZED))
            return False
        self._identity = (scope, registration_id, credentials)
        self._issuance = issuance_version(_api_version(packet.username))
        self._write(ConnAck(ACCEPTED))
        self._idle_after = idle_limit(packet.keepalive)
        self._arm_idle(self._idle_after)
        return True

    def _handle(self, packet: Packet) -> None:
        if isinstance(packet, Subscribe):
            codes = tuple(
                min(qos, 1) if topic.startswith("$dps/registrations/res/") else 0x80
                for topic, qos in packet.topics
            )
            self._write(SubAck(packet.packet_id, codes))
        elif isinstance(packet, Unsubscribe):
            self._write(UnsubAck(packet.packet_id))
        elif isinstance(packet, PingReq):
            self._write(PingResp())
        elif isinstance(packet, Publish):
            if packet.qos == 2:
                raise ProtocolError("QoS 2 is not supported")
            if packet.qos == 1 and packet.packet_id is not None:
                self._write(PubAck(packet.packet_id))
            task = self._loop.create_task(self._request(packet))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(packet, Disconnect):
            self.close()
        else:  # CONNECT twice, or a packet only a server sends
            self.close()

    async def _request(self, packet: Publish) -> None:
        assert self._identity is not None
        scope, registration_id, credentials = self._identity
        register = _query(packet.topic, REGISTER_TOPIC)
        poll = _query(packet.topic, POLL_TOPIC) if register is None else None
        params = register if register is not None else poll
        if params is None or "$rid" not in params:
            return  # not a DPS request topic: nothing to answer (there is no one to answer to)
        rid = params["$rid"]
        retry_after: int | None = None
        # Each request runs in its own task: its audit origin is set for this task alone.
        device = Actor(ActorKind.DEVICE, registration_id)
        audit.begin(AuditContext(device, uuid.uuid4().hex, self._client_ip, self._transport))
        try:
            if register is not None:
                # The device authenticated at CONNECT, so its body may be parsed now.
                body = parse_json(packet.payload)
                payload = registration_payload(body, registration_id)
                csr = registration_csr(body, self._issuance)
                started = await self._registrations.register(
                    scope,
                    registration_id,
                    credentials,
                    lambda: payload,
                    self._client_ip,
                    read_csr=lambda: csr,
                )
                if isinstance(started, TpmChallenge):  # not reached: no challenge without read_tpm
                    raise Unauthorized("TPM attestation is carried over HTTPS only, not MQTT")
                status, answer = register_answer(started)
            else:
                operation_id = urllib.parse.unquote(params.get("operationId", ""))
                op = await self._registrations.operation(scope, registration_id, operation_id, credentials)
                status, answer = operation_answer(op)
            if status == 202:
                retry_after = self._registrations.settings.retry_after
        except MalformedJson as exc:  # only the decoder's: any other ValueError is a fault (500)
            status, answer = 400, dps_error_body(DpsError(400, 400001, f"malformed JSON body: {exc}"))
        except ProvisiondError as exc:
            err = device_error_for(exc)
            status, answer, retry_after = err.status, dps_error_body(err), err.retry_after
        except Exception:  # a bug must still be answered, or the device waits for nothing
            log.exception("MQTT request %s failed", packet.topic)
            status, answer = 500, dps_error_body(DpsError(500, INTERNAL, "internal error"))
        topic = f"{RESPONSE_TOPIC}{status}/?$rid={rid}"
        if retry_after is not None:
            topic += f"&retry-after={retry_after}"
        self._write(Publish(topic, json.dumps(answer, separators=(",", ":")).encode()))
