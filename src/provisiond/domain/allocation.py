"""Choosing the IoT hub a device is assigned to: hashed, static, geoLatency (custom is a webhook).

``hashed`` uses weighted rendezvous hashing: every (registration id, hub) pair gets a score from
a hash, scaled by the hub's weight, and the best score wins. The choice is deterministic for a
registration id while the candidate set is unchanged, each hub's share converges on
weight / sum(weights), and adding or removing a hub moves only the devices that must move.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from provisiond.domain.enrollments import AllocationPolicy, Enrollment
from provisiond.errors import InvalidInput

__all__ = [
    "AllocationFailed",
    "LinkedHub",
    "RegionRule",
    "candidates",
    "check_hub_host_name",
    "choose_hub",
    "hashed",
    "region_of",
]

_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def check_hub_host_name(text: str) -> str:
    """A hub's host name as devices are told it: DNS labels, an optional ``:port``.

    Refusing anything else keeps a pasted connection string (``HostName=…;SharedAccessKey=…``,
    what Azure's own CLI takes to link a hub) out of the hubs table, the devices' answers and
    the append-only audit trail.
    """
    name = text.strip()
    host, _, port = name.partition(":")
    labels = host.split(".")
    if (
        not host
        or len(name) > 255
        or not all(_LABEL.fullmatch(label) for label in labels)
        or (port and not (port.isdigit() and 0 < int(port) < 65536))
    ):
        raise InvalidInput(
            "a hub is named by its host name (e.g. my-hub.azure-devices.net, optionally :port), "
            "not a connection string or URL"
        )
    return name


@dataclass(frozen=True, slots=True)
class LinkedHub:
    """An IoT hub linked to the instance: devices may be assigned to it."""

    host_name: str
    weight: int = 1
    region: str | None = None
    connector: str = "none"  # how the hub learns its devices (domain/hub_identities.ConnectorKind)


@dataclass(frozen=True, slots=True)
class RegionRule:
    """Devices whose address is in ``network`` are in ``region`` (for geoLatency)."""

    network: str
    region: str


class AllocationFailed(InvalidInput):
    """No hub can be chosen for the device (no candidates, a static hub that is not linked)."""


def _unit_hash(registration_id: str, hub: str) -> float:
    digest = hashlib.sha256(f"{registration_id.lower()}\n{hub.lower()}".encode()).digest()
    # 53 bits mapped into the open interval (0, 1): never 0, so the logarithm is defined.
    return (int.from_bytes(digest[:8], "big") >> 11) / float(1 << 53) + 2**-54


def hashed(registration_id: str, hubs: Sequence[LinkedHub]) -> LinkedHub:
    """The weighted rendezvous choice among ``hubs`` (which must not be empty)."""
    if not hubs:
        raise AllocationFailed("no IoT hub to allocate from: link one with `provisiond dps hub add`")
    return max(
        hubs,
        key=lambda hub: (-hub.weight / math.log(_unit_hash(registration_id, hub.host_name)), hub.host_name),
    )


def region_of(address: str | None, rules: Sequence[RegionRule]) -> str | None:
    """The region of the most specific network that contains ``address``."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    best: tuple[int, str] | None = None
    for rule in rules:
        network = ipaddress.ip_network(rule.network, strict=False)
        if ip.version == network.version and ip in network and (best is None or network.prefixlen > best[0]):
            best = (network.prefixlen, rule.region)
    return best[1] if best else None


def candidates(enrollment: Enrollment, linked: Sequence[LinkedHub]) -> list[LinkedHub]:
    """The hubs this enrollment may use: its ``iotHubs`` if set, else every linked hub."""
    if not enrollment.iot_hubs:
        return list(linked)
    wanted = {h.lower() for h in enrollment.iot_hubs}
    return [hub for hub in linked if hub.host_name.lower() in wanted]


def choose_hub(
    policy: AllocationPolicy,
    enrollment: Enrollment,
    registration_id: str,
    linked: Sequence[LinkedHub],
    *,
    client_region: str | None = None,
) -> LinkedHub:
    """Apply a non-custom allocation policy; raise ``AllocationFailed`` when none fits."""
    pool = candidates(enrollment, linked)
    if policy is AllocationPolicy.STATIC:
        name = enrollment.iot_hub_host_name or (
            enrollment.iot_hubs[0] if enrollment.iot_hubs and len(enrollment.iot_hubs) == 1 else None
        )
        if name is None:
            raise AllocationFailed("static allocation needs iotHubHostName or exactly one entry in iotHubs")
        for hub in linked:
            if hub.host_name.lower() == name.lower():
                return hub
        raise AllocationFailed(f"static hub {name!r} is not linked to this instance")
    if policy is AllocationPolicy.GEO_LATENCY and client_region is not None:
        near = [hub for hub in pool if hub.region and hub.region.lower() == client_region.lower()]
        if near:
            return hashed(registration_id, near)
    return hashed(registration_id, pool)
