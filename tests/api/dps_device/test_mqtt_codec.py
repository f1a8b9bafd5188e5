"""The MQTT 3.1.1 codec: every way bytes can arrive, and every way they can be wrong."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisiond.api.dps_device.mqtt.codec import (
    ConnAck,
    Connect,
    Disconnect,
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

SAMPLES = [
    Connect(
        "dev-1",
        "0ne00000001/registrations/dev-1/api-version=2019-03-31",
        b"SharedAccessSignature sr=x",
        60,
        False,
    ),
    Connect("dev-2", keepalive=0, will_topic="w", will_message=b"bye"),
    ConnAck(5),
    Publish("$dps/registrations/PUT/iotdps-register/?$rid=1", b'{"payload":null}', 1, 7),
    Publish("$dps/registrations/res/202/?$rid=1&retry-after=1", b"{}"),
    PubAck(7),
    Subscribe(1, (("$dps/registrations/res/#", 1),)),
    SubAck(1, (1,)),
    Unsubscribe(2, ("$dps/registrations/res/#",)),
    UnsubAck(2),
    PingReq(),
    PingResp(),
    Disconnect(),
]


@pytest.mark.parametrize("packet", SAMPLES, ids=lambda p: type(p).__name__)
def test_every_packet_round_trips(packet: object) -> None:
    assert PacketReader().feed(encode(packet)) == [packet]  # type: ignore[arg-type]


def test_packets_fed_byte_by_byte_come_out_whole_and_in_order() -> None:
    reader = PacketReader()
    stream = b"".join(encode(p) for p in SAMPLES)
    out = []
    for i in range(len(stream)):
        out += reader.feed(stream[i : i + 1])
    assert out == SAMPLES


def test_several_packets_coalesced_in_one_read() -> None:
    assert PacketReader().feed(b"".join(encode(p) for p in SAMPLES)) == SAMPLES


@pytest.mark.parametrize("size", [127, 128, 16_383, 16_384, 20_000, 2_097_151, 2_097_152])
def test_multi_byte_remaining_lengths_and_large_payloads(size: int) -> None:
    packet = Publish("t", b"x" * size)
    data = encode(packet)
    assert PacketReader(max_size=4 * 1024 * 1024).feed(data) == [packet]


def test_payload_over_16_kb_split_across_reads() -> None:
    packet = Publish("$dps/registrations/PUT/iotdps-register/?$rid=9", b"{" + b" " * 40_000 + b"}", 1, 3)
    data = encode(packet)
    reader = PacketReader()
    assert reader.feed(data[:10_000]) == []
    assert reader.feed(data[10_000:30_000]) == []
    assert reader.feed(data[30_000:]) == [packet]


def test_oversized_packet_is_refused_from_its_header_alone() -> None:
    header = encode(Publish("t", b"x" * 300_000))[:5]
    with pytest.raises(ProtocolError, match="limit"):
        PacketReader(max_size=128 * 1024).feed(header)


@pytest.mark.parametrize(
    "data",
    [
        b"\x30\xff\xff\xff\xff\x01",  # remaining length of five bytes
        b"\x00\x00",  # packet type 0
        b"\xf0\x00",  # packet type 15
        b"\x80\x05\x00\x01\x00\x01a",  # SUBSCRIBE with flags 0 instead of 2
        b"\x82\x02\x00\x01",  # SUBSCRIBE without topics
        b"\x36\x03\x00\x01t",  # PUBLISH with QoS 3
        b"\x10\x03\x00\x04M",  # CONNECT cut short
        b"\xc0\x01\x00",  # PINGREQ with a body
        b"\x30\x04\x00\x02\xff\xfe",  # topic not UTF-8
    ],
)
def test_malformed_packets_raise_protocol_errors(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        PacketReader().feed(data)


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=17))
def test_random_bytes_never_crash_the_reader_with_anything_but_protocol_error(
    data: bytes, chunk: int
) -> None:
    reader = PacketReader(max_size=4096)
    try:
        for i in range(0, len(data), chunk):
            reader.feed(data[i : i + chunk])
    except ProtocolError:
        pass


@given(st.text(max_size=50).filter(lambda t: "\x00" not in t), st.binary(max_size=2000), st.integers(0, 1))
def test_publish_round_trips_for_any_topic_and_payload(topic: str, payload: bytes, qos: int) -> None:
    packet = Publish(topic, payload, qos, 1 if qos else None)
    assert PacketReader().feed(encode(packet)) == [packet]
