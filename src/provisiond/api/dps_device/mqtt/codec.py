"""A sans-I/O MQTT 3.1.1 packet codec: bytes in, packets out; packets in, bytes out.

Only what DPS devices use is modelled (CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK,
UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT). The reader accepts input split anywhere
(byte by byte) or coalesced (many packets in one read), enforces a maximum packet size before
buffering a packet, and raises ``ProtocolError`` on anything malformed, which closes only that
connection. Both directions are implemented so tests and load generators use the same code.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = [
    "ConnAck",
    "Connect",
    "Disconnect",
    "Packet",
    "PacketReader",
    "PingReq",
    "PingResp",
    "ProtocolError",
    "PubAck",
    "Publish",
    "SubAck",
    "Subscribe",
    "UnsubAck",
    "Unsubscribe",
    "encode",
]

MAX_REMAINING_LENGTH = 268_435_455


class ProtocolError(Exception):
    """The peer broke MQTT 3.1.1; the connection must be closed."""


@dataclass(frozen=True, slots=True)
class Connect:
    client_id: str
    username: str | None = None
    password: bytes | None = None
    keepalive: int = 60
    clean_session: bool = True
    protocol_name: str = "MQTT"
    protocol_level: int = 4
    will_topic: str | None = None
    will_message: bytes | None = None


@dataclass(frozen=True, slots=True)
class ConnAck:
    return_code: int
    session_present: bool = False


@dataclass(frozen=True, slots=True)
class Publish:
    topic: str
    payload: bytes
    qos: int = 0
    packet_id: int | None = None
    retain: bool = False
    dup: bool = False


@dataclass(frozen=True, slots=True)
class PubAck:
    packet_id: int


@dataclass(frozen=True, slots=True)
class Subscribe:
    packet_id: int
    topics: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class SubAck:
    packet_id: int
    return_codes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    packet_id: int
    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UnsubAck:
    packet_id: int


@dataclass(frozen=True, slots=True)
class PingReq:
    pass


@dataclass(frozen=True, slots=True)
class PingResp:
    pass


@dataclass(frozen=True, slots=True)
class Disconnect:
    pass


Packet = (
    Connect
    | ConnAck
    | Publish
    | PubAck
    | Subscribe
    | SubAck
    | Unsubscribe
    | UnsubAck
    | PingReq
    | PingResp
    | Disconnect
)


# -- decoding ------------------------------------------------------------------------------------


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ProtocolError("packet shorter than its fields")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        value: int = struct.unpack("!H", self.take(2))[0]
        return value

    def binary(self) -> bytes:
        return self.take(self.u16())

    def text(self) -> str:
        try:
            value = self.binary().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("string is not UTF-8") from exc
        if "\x00" in value:
            raise ProtocolError("string holds U+0000")
        return value

    def rest(self) -> bytes:
        chunk = self.data[self.pos :]
        self.pos = len(self.data)
        return chunk

    def done(self) -> None:
        if self.pos != len(self.data):
            raise ProtocolError("trailing bytes in packet")


def _decode(kind: int, flags: int, body: bytes) -> Packet:
    c = _Cursor(body)
    if kind == 1:
        name = c.text()
        level = c.u8()
        connect_flags = c.u8()
        if connect_flags & 0x01:
            raise ProtocolError("reserved CONNECT flag set")
        keepalive = c.u16()
        client_id = c.text()
        will_topic = will_message = None
        if connect_flags & 0x04:
            will_topic, will_message = c.text(), c.binary()
        username = c.text() if connect_flags & 0x80 else None
        password = c.binary() if connect_flags & 0x40 else None
        c.done()
        return Connect(
            client_id,
            username,
            password,
            keepalive,
            bool(connect_flags & 0x02),
            name,
            level,
            will_topic,
            will_message,
        )
    if kind == 2:
        session, code = c.u8(), c.u8()
        c.done()
        return ConnAck(code, bool(session & 1))
    if kind == 3:
        qos = (flags >> 1) & 0x03
        if qos == 3:
            raise ProtocolError("PUBLISH with QoS 3")
        topic = c.text()
        packet_id = c.u16() if qos else None
        return Publish(topic, c.rest(), qos, packet_id, bool(flags & 1), bool(flags & 8))
    if kind in (4, 11):
        packet_id = c.u16()
        c.done()
        return PubAck(packet_id) if kind == 4 else UnsubAck(packet_id)
    if kind == 8:
        if flags != 0x2:
            raise ProtocolError("SUBSCRIBE with wrong flags")
        packet_id = c.u16()
        topics = []
        while c.pos < len(body):
            topics.append((c.text(), c.u8() & 0x03))
        if not topics:
            raise ProtocolError("SUBSCRIBE without topics")
        return Subscribe(packet_id, tuple(topics))
    if kind == 9:
        packet_id = c.u16()
        return SubAck(packet_id, tuple(c.rest()))
    if kind == 10:
        if flags != 0x2:
            raise ProtocolError("UNSUBSCRIBE with wrong flags")
        packet_id = c.u16()
        names = []
        while c.pos < len(body):
            names.append(c.text())
        return Unsubscribe(packet_id, tuple(names))
    if kind in (12, 13, 14):
        c.done()
        return PingReq() if kind == 12 else PingResp() if kind == 13 else Disconnect()
    raise ProtocolError(f"unsupported packet type {kind}")


@dataclass
class PacketReader:
    """Accumulates bytes and returns every complete packet; refuses packets over ``max_size``."""

    max_size: int = 256 * 1024
    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Packet]:
        self._buffer += data
        packets: list[Packet] = []
        while True:
            header = self._header()
            if header is None:
                return packets
            kind, flags, length, offset = header
            if len(self._buffer) < offset + length:
                return packets
            body = bytes(self._buffer[offset : offset + length])
            del self._buffer[: offset + length]
            packets.append(_decode(kind, flags, body))

    def _header(self) -> tuple[int, int, int, int] | None:
        buf = self._buffer
        if len(buf) < 2:
            return None
        length, multiplier, pos = 0, 1, 1
        while True:
            if pos >= len(buf):
                return None
            byte = buf[pos]
            length += (byte & 0x7F) * multiplier
            pos += 1
            if not byte & 0x80:
                break
            multiplier *= 128
            if pos > 4:
                raise ProtocolError("remaining length longer than 4 bytes")
        if length + pos > self.max_size:
            raise ProtocolError(f"packet of {length + pos} bytes is over the {self.max_size}-byte limit")
        return buf[0] >> 4, buf[0] & 0x0F, length, pos


# -- encoding ------------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    if n > MAX_REMAINING_LENGTH:
        raise ValueError("packet too large for MQTT")
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _text(value: str) -> bytes:
    return _binary(value.encode())


def _binary(value: bytes) -> bytes:
    return struct.pack("!H", len(value)) + value


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _varint(len(body)) + body


def encode(packet: Packet) -> bytes:
    """The bytes of one packet."""
    if isinstance(packet, Connect):
        flags = (0x02 if packet.clean_session else 0) | (0x80 if packet.username is not None else 0)
        flags |= 0x40 if packet.password is not None else 0
        payload = _text(packet.client_id)
        if packet.will_topic is not None:
            flags |= 0x04
            payload += _text(packet.will_topic) + _binary(packet.will_message or b"")
        if packet.username is not None:
            payload += _text(packet.username)
        if packet.password is not None:
            payload += _binary(packet.password)
        head = (
            _text(packet.protocol_name)
            + bytes([packet.protocol_level, flags])
            + struct.pack("!H", packet.keepalive)
        )
        return _packet(0x10, head + payload)
    if isinstance(packet, ConnAck):
        return _packet(0x20, bytes([int(packet.session_present), packet.return_code]))
    if isinstance(packet, Publish):
        first = 0x30 | (packet.qos << 1) | int(packet.retain) | (0x08 if packet.dup else 0)
        pid = struct.pack("!H", packet.packet_id or 0) if packet.qos else b""
        return _packet(first, _text(packet.topic) + pid + packet.payload)
    if isinstance(packet, PubAck):
        return _packet(0x40, struct.pack("!H", packet.packet_id))
    if isinstance(packet, Subscribe):
        return _packet(
            0x82,
            struct.pack("!H", packet.packet_id) + b"".join(_text(t) + bytes([q]) for t, q in packet.topics),
        )
    if isinstance(packet, SubAck):
        return _packet(0x90, struct.pack("!H", packet.packet_id) + bytes(packet.return_codes))
    if isinstance(packet, Unsubscribe):
        return _packet(0xA2, struct.pack("!H", packet.packet_id) + b"".join(_text(t) for t in packet.topics))
    if isinstance(packet, UnsubAck):
        return _packet(0xB0, struct.pack("!H", packet.packet_id))
    if isinstance(packet, PingReq):
        return b"\xc0\x00"
    if isinstance(packet, PingResp):
        return b"\xd0\x00"
    return b"\xe0\x00"
