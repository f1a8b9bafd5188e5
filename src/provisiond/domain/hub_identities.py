"""What an assigned hub is told about a device: its identity, its credential, its initial twin.

IoT Hub takes one authentication type per device (reference: shared/reference/
ISSUANCE_HUBS_EVENTS.md §2.3), so the mapping from how a device proved itself to DPS is a rule
with an order, kept here and nowhere else:

1. a certificate issued at registration wins: ``selfSigned`` with the issued leaf's thumbprint as
   primary and the one before it (if any) as secondary, so a renewal does not lock out the
   certificate the device still uses until it switches;
2. symmetric keys: ``sas`` with the individual enrollment's keys, or the keys derived from both
   group keys for a group member (what the device already holds);
3. TPM: ``sas`` with the hub key delivered, wrapped for the TPM, in ``authenticationKey``;
4. X.509: ``selfSigned`` with an individual enrollment's certificate thumbprints, or
   ``certificateAuthority`` for a group member (the hub checks the chain, not a thumbprint).

Also here: the connection of a linked hub (which connector, its secret) and what a refusing or
throttling hub raises, so services and adapters speak one vocabulary.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from provisiond.domain.enrollments import AttestationType, Enrollment, EnrollmentKind
from provisiond.domain.sas import derive_device_key
from provisiond.errors import InvalidInput, ProvisiondError

__all__ = [
    "ConnectorKind",
    "HubAuthKind",
    "HubAuthentication",
    "HubConnection",
    "HubIdentity",
    "HubRefused",
    "HubThrottled",
    "IotHubConnectionString",
    "TwinPatch",
    "hub_authentication",
    "parse_iothub_connection_string",
    "twin_patch",
]


class ConnectorKind(StrEnum):
    """How a linked hub learns its devices: not at all (``none``), IoT Hub's registry API, or a
    Mosquitto broker's dynamic security."""

    NONE = "none"
    IOTHUB = "iothub"
    MOSQUITTO = "mosquitto"


@dataclass(frozen=True, slots=True)
class HubConnection:
    """A linked hub's connector: its kind, its secret (a connection string; sealed at rest,
    never printed), the address to reach it at when not its host name, and a private CA (PEM)."""

    host_name: str
    kind: ConnectorKind
    secret: str = field(repr=False)  # a repr in a log or a traceback must not carry the key
    endpoint: str | None = None
    ca_pem: str | None = None


@dataclass(frozen=True, slots=True)
class IotHubConnectionString:
    """``HostName=…;SharedAccessKeyName=…;SharedAccessKey=…`` of an IoT Hub shared access policy."""

    host_name: str
    key_name: str
    key: str = field(repr=False)


def parse_iothub_connection_string(text: str) -> IotHubConnectionString:
    """The parts of a hub policy's connection string; ``InvalidInput`` naming what is wrong
    (never echoing the text: it holds the key)."""
    parts: dict[str, str] = {}
    for item in text.strip().split(";"):
        name, sep, value = item.partition("=")
        if sep:
            parts[name.strip().lower()] = value.strip()
    missing = [n for n in ("HostName", "SharedAccessKeyName", "SharedAccessKey") if not parts.get(n.lower())]
    if missing:
        raise InvalidInput(f"the IoT Hub connection string lacks {', '.join(missing)}")
    try:
        base64.b64decode(parts["sharedaccesskey"], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("the connection string's SharedAccessKey is not base64") from None
    return IotHubConnectionString(parts["hostname"], parts["sharedaccesskeyname"], parts["sharedaccesskey"])


class HubRefused(ProvisiondError):
    """The hub refused the call (a 4xx other than 429, a 5xx) or could not be reached.

    ``message`` is the hub's error body as it answered it (DPS puts it in ``errorMessage``
    verbatim, §2.8), or what went wrong on the way there; ``status`` is the HTTP status, if any.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HubThrottled(ProvisiondError):
    """The hub answered 429: try again later (after ``retry_after`` seconds when it said so)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class HubAuthKind(StrEnum):
    SAS = "sas"
    SELF_SIGNED = "selfSigned"
    CERTIFICATE_AUTHORITY = "certificateAuthority"


@dataclass(frozen=True, slots=True)
class HubAuthentication:
    """The device's credential at its hub: two keys (``sas``), two thumbprints (``selfSigned``),
    or neither (``certificateAuthority``)."""

    kind: HubAuthKind
    primary: str | None = None
    secondary: str | None = None


@dataclass(frozen=True, slots=True)
class HubIdentity:
    """The device as its hub is told: id, credential, IoT Edge capability, and the registration
    id (the CN of its certificate: what a broker admitting certificates sees as its username)."""

    device_id: str
    authentication: HubAuthentication
    iot_edge: bool = False
    registration_id: str | None = None


@dataclass(frozen=True, slots=True)
class TwinPatch:
    """Tags and desired properties to merge into a device's twin (``PATCH /twins/{id}``)."""

    tags: dict[str, Any] | None = None
    desired: dict[str, Any] | None = None

    @property
    def empty(self) -> bool:
        return not self.tags and not self.desired


def twin_patch(twin: dict[str, Any] | None) -> TwinPatch | None:
    """A DPS ``initialTwin`` (or a hub's twin, when migrating) as the patch that applies it:
    ``tags`` and ``properties.desired``, without the ``$``-metadata a hub adds to a twin it shows."""
    if not twin:
        return None
    properties = twin.get("properties") if isinstance(twin.get("properties"), dict) else {}
    desired = properties.get("desired") if isinstance(properties, dict) else None
    tags = twin.get("tags")
    patch = TwinPatch(
        tags=dict(tags) if isinstance(tags, dict) and tags else None,
        desired={k: v for k, v in desired.items() if not k.startswith("$")}
        if isinstance(desired, dict)
        else None,
    )
    return None if patch.empty else patch


def hub_authentication(
    enrollment: Enrollment,
    attestation_type: str,
    registration_id: str,
    *,
    issued_thumbprints: tuple[str, ...] = (),
    tpm_hub_key: bytes | None = None,
) -> HubAuthentication:
    """The credential the hub is given for this device (the order is the module docstring's).

    ``issued_thumbprints`` are the SHA-256 thumbprints of the certificates issued to the device,
    newest first (the current registration's leaf first, when it got one); ``tpm_hub_key`` is the
    plain hub key of a TPM device.
    """
    if issued_thumbprints:
        second = issued_thumbprints[1] if len(issued_thumbprints) > 1 else None
        return HubAuthentication(HubAuthKind.SELF_SIGNED, issued_thumbprints[0], second)
    att = enrollment.attestation
    if attestation_type == AttestationType.SYMMETRIC_KEY.value and att.symmetric_key is not None:
        keys = att.symmetric_key
        if enrollment.kind is EnrollmentKind.GROUP:
            return HubAuthentication(
                HubAuthKind.SAS,
                derive_device_key(keys.primary_key, registration_id),
                derive_device_key(keys.secondary_key, registration_id),
            )
        return HubAuthentication(HubAuthKind.SAS, keys.primary_key, keys.secondary_key)
    if attestation_type == AttestationType.TPM.value:
        if tpm_hub_key is None:
            raise InvalidInput(f"no hub key was made for the TPM device {registration_id!r}")
        key = base64.b64encode(tpm_hub_key).decode()
        return HubAuthentication(HubAuthKind.SAS, key, key)
    if attestation_type == AttestationType.X509.value and att.x509 is not None:
        # An individual enrollment's own certificates, the secondary alone if it has only that one.
        own = [c for c in (att.x509.client_primary, att.x509.client_secondary) if c is not None]
        if enrollment.kind is EnrollmentKind.GROUP or not own:
            return HubAuthentication(HubAuthKind.CERTIFICATE_AUTHORITY)
        second = own[1].info.sha256_thumbprint if len(own) > 1 else None
        return HubAuthentication(HubAuthKind.SELF_SIGNED, own[0].info.sha256_thumbprint, second)
    raise InvalidInput(f"no hub credential can be made for attestation {attestation_type!r}")
