"""Allocation rules: weighted rendezvous hashing, static, geoLatency, the region table."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisiond.domain.allocation import (
    AllocationFailed,
    LinkedHub,
    RegionRule,
    check_hub_host_name,
    choose_hub,
    hashed,
    region_of,
)
from provisiond.domain.enrollments import (
    AllocationPolicy,
    Attestation,
    AttestationType,
    Enrollment,
    EnrollmentKind,
)
from provisiond.errors import InvalidInput

IDS = [f"device-{n}" for n in range(10_000)]


def enrollment(**fields: object) -> Enrollment:
    return Enrollment(
        kind=EnrollmentKind.INDIVIDUAL,
        id="e",
        attestation=Attestation(AttestationType.SYMMETRIC_KEY),
        **fields,
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("weights", [(1, 1), (1, 1, 1, 1), (1, 2, 3), (5, 1), (10, 10, 1)])
def test_each_hubs_share_is_within_5_percent_of_its_weight_share(weights: tuple[int, ...]) -> None:
    hubs = [LinkedHub(f"hub{i}.example", w) for i, w in enumerate(weights)]
    counts = Counter(hashed(rid, hubs).host_name for rid in IDS)
    total = sum(weights)
    for hub in hubs:
        expected = hub.weight / total
        assert abs(counts[hub.host_name] / len(IDS) - expected) <= 0.05 * expected + 0.005, (hub, counts)


def test_hashed_is_deterministic_and_independent_of_hub_order_and_case() -> None:
    hubs = [LinkedHub("a.example"), LinkedHub("b.example"), LinkedHub("c.example")]
    first = [hashed(rid, hubs).host_name for rid in IDS[:500]]
    assert first == [hashed(rid, list(reversed(hubs))).host_name for rid in IDS[:500]]
    assert first == [hashed(rid.upper(), hubs).host_name for rid in IDS[:500]]


def test_adding_a_hub_only_moves_devices_to_the_new_hub() -> None:
    before = [LinkedHub("a.example"), LinkedHub("b.example")]
    after = [*before, LinkedHub("c.example")]
    for rid in IDS[:2000]:
        old, new = hashed(rid, before).host_name, hashed(rid, after).host_name
        assert new in (old, "c.example")


def test_hashed_without_hubs_fails() -> None:
    with pytest.raises(AllocationFailed):
        hashed("dev", [])


def test_enrollment_iot_hubs_narrow_the_candidates() -> None:
    linked = [LinkedHub("a.example"), LinkedHub("b.example"), LinkedHub("c.example")]
    e = enrollment(iot_hubs=("B.example",))
    assert {choose_hub(AllocationPolicy.HASHED, e, rid, linked).host_name for rid in IDS[:200]} == {
        "b.example"
    }


def test_static_uses_iot_hub_host_name_or_the_single_iot_hub() -> None:
    linked = [LinkedHub("a.example"), LinkedHub("b.example")]
    assert (
        choose_hub(AllocationPolicy.STATIC, enrollment(iot_hub_host_name="b.example"), "d", linked).host_name
        == "b.example"
    )
    assert (
        choose_hub(AllocationPolicy.STATIC, enrollment(iot_hubs=("a.example",)), "d", linked).host_name
        == "a.example"
    )
    for bad in (
        enrollment(),
        enrollment(iot_hubs=("a.example", "b.example")),
        enrollment(iot_hub_host_name="z.example"),
    ):
        with pytest.raises(AllocationFailed):
            choose_hub(AllocationPolicy.STATIC, bad, "d", linked)


def test_geo_latency_prefers_hubs_of_the_devices_region_and_hashes_ties() -> None:
    linked = [
        LinkedHub("eu1", region="europe"),
        LinkedHub("eu2", region="europe"),
        LinkedHub("us1", region="us"),
    ]
    chosen = Counter(
        choose_hub(AllocationPolicy.GEO_LATENCY, enrollment(), rid, linked, client_region="Europe").host_name
        for rid in IDS[:2000]
    )
    assert set(chosen) == {"eu1", "eu2"} and min(chosen.values()) > 800
    assert (
        choose_hub(AllocationPolicy.GEO_LATENCY, enrollment(), "d", linked, client_region="us").host_name
        == "us1"
    )
    unknown = {
        choose_hub(AllocationPolicy.GEO_LATENCY, enrollment(), rid, linked, client_region=None).host_name
        for rid in IDS[:300]
    }
    assert unknown == {"eu1", "eu2", "us1"}  # no region known: hashed over every candidate


def test_region_of_takes_the_most_specific_network() -> None:
    rules = [
        RegionRule("10.0.0.0/8", "wide"),
        RegionRule("10.1.0.0/16", "narrow"),
        RegionRule("2001:db8::/32", "v6"),
    ]
    assert region_of("10.1.2.3", rules) == "narrow"
    assert region_of("10.2.2.3", rules) == "wide"
    assert region_of("2001:db8::1", rules) == "v6"
    assert region_of("192.168.1.1", rules) is None
    assert region_of("not-an-ip", rules) is None
    assert region_of(None, rules) is None


@given(st.text(min_size=1, max_size=128), st.lists(st.integers(1, 50), min_size=1, max_size=6))
def test_hashed_always_picks_one_of_the_candidates(rid: str, weights: list[int]) -> None:
    hubs = [LinkedHub(f"h{i}", w) for i, w in enumerate(weights)]
    assert hashed(rid, hubs) in hubs


@pytest.mark.parametrize("name", ["hub-a.example", "contoso.azure-devices.net", "hub.local:8443", "h1"])
def test_a_hub_is_named_by_its_host_name(name: str) -> None:
    assert check_hub_host_name(f" {name} ") == name


@pytest.mark.parametrize(
    "text",
    [
        "HostName=h.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=c2VjcmV0",
        "https://h.example",
        "h.example:99999",
        "-bad.example",
        "two words.example",
        "",
    ],
)
def test_a_connection_string_or_url_is_not_a_hub_name(text: str) -> None:
    """A pasted connection string must never reach the hubs table, devices or the audit trail."""
    with pytest.raises(InvalidInput, match="host name"):
        check_hub_host_name(text)
