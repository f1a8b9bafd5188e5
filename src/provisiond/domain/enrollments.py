"""Enrollment records: individual enrollments and enrollment groups.

Both kinds share almost every field, so one ``Enrollment`` type serves both and ``kind`` says
which it is; the fields only an individual enrollment has (device id, optional device
information) stay ``None`` on a group. Ids are case-insensitive and live in two separate
namespaces, one per kind.
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from provisiond.domain.certificates import EnrolledCertificate
from provisiond.domain.registration_ids import check_enrollment_id, id_key
from provisiond.domain.tpm_public import check_endorsement_key, decode_public_b64
from provisiond.errors import InvalidInput

__all__ = [
    "ANY_ETAG",
    "AllocationPolicy",
    "Attestation",
    "AttestationType",
    "CustomAllocation",
    "Enrollment",
    "EnrollmentKind",
    "SymmetricKeyAttestation",
    "TpmAttestation",
    "X509Attestation",
    "keep_stored_keys",
    "new_etag",
    "new_symmetric_key",
    "normalize_if_match",
    "same_content",
]


# IoT Hub's device id characters (its documented set), which hubs and brokers name topics by.
_DEVICE_ID = re.compile(r"[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}")


class EnrollmentKind(StrEnum):
    INDIVIDUAL = "individual"
    GROUP = "group"

    @property
    def id_name(self) -> str:
        """The name of the id field in DPS's wire format, for messages."""
        return "registrationId" if self is EnrollmentKind.INDIVIDUAL else "enrollmentGroupId"


class AttestationType(StrEnum):
    NONE = "none"
    TPM = "tpm"
    X509 = "x509"
    SYMMETRIC_KEY = "symmetricKey"


class AllocationPolicy(StrEnum):
    HASHED = "hashed"
    GEO_LATENCY = "geoLatency"
    STATIC = "static"
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class SymmetricKeyAttestation:
    primary_key: str
    secondary_key: str


@dataclass(frozen=True, slots=True)
class TpmAttestation:
    endorsement_key: str
    storage_root_key: str | None = None


@dataclass(frozen=True, slots=True)
class X509Attestation:
    """Exactly one of the three forms DPS allows is set.

    ``client_*`` are device certificates (individual enrollments), ``signing_*`` are CA or
    intermediate certificates a group trusts directly, ``ca_*`` name CA certificates of the
    instance by name.
    """

    client_primary: EnrolledCertificate | None = None
    client_secondary: EnrolledCertificate | None = None
    signing_primary: EnrolledCertificate | None = None
    signing_secondary: EnrolledCertificate | None = None
    ca_primary: str | None = None
    ca_secondary: str | None = None


@dataclass(frozen=True, slots=True)
class Attestation:
    type: AttestationType
    symmetric_key: SymmetricKeyAttestation | None = None
    tpm: TpmAttestation | None = None
    x509: X509Attestation | None = None


@dataclass(frozen=True, slots=True)
class CustomAllocation:
    webhook_url: str
    api_version: str | None = None


@dataclass(frozen=True, slots=True)
class Enrollment:
    """An individual enrollment or an enrollment group, as the service stores it."""

    kind: EnrollmentKind
    id: str
    attestation: Attestation
    device_id: str | None = None
    optional_device_information: dict[str, Any] | None = None
    iot_edge: bool = False
    iot_hub_host_name: str | None = None
    iot_hubs: tuple[str, ...] | None = None
    initial_twin: dict[str, Any] | None = None
    provisioning_enabled: bool = True
    update_hub_assignment: bool = True
    migrate_device_data: bool = True
    allocation_policy: AllocationPolicy | None = None
    custom_allocation: CustomAllocation | None = None
    credential_policy: str | None = None  # credentialPolicyName (api-version 2025-07-01-preview)
    created: datetime | None = None
    updated: datetime | None = None
    etag: str | None = None

    @property
    def key(self) -> str:
        """The case-folded id under which the record is stored."""
        return id_key(self.id)

    def validated(self) -> Enrollment:
        """Check the cross-field rules and fill generated defaults; return the record to store."""
        check_enrollment_id(self.id, self.kind.id_name)
        if self.kind is EnrollmentKind.GROUP and self.device_id is not None:
            raise InvalidInput("an enrollment group has no deviceId")
        if self.device_id is not None and not _DEVICE_ID.fullmatch(self.device_id):
            raise InvalidInput(
                "deviceId is 1-128 characters: letters, digits and - . % _ * ? ! ( ) , : = @ $ ' "
                "(IoT Hub's rule; no '/', '+' or '#', which would reach into other devices' topics)"
            )
        att = self.attestation
        if self.kind is EnrollmentKind.GROUP and att.type is AttestationType.TPM:
            raise InvalidInput("TPM attestation is not supported for enrollment groups")
        if att.type is AttestationType.NONE:
            raise InvalidInput("attestation type 'none' cannot be enrolled")
        if att.type is AttestationType.SYMMETRIC_KEY:
            return replace(self, attestation=replace(att, symmetric_key=_filled_keys(att.symmetric_key)))
        if att.type is AttestationType.TPM:
            _check_tpm(att.tpm)
        if att.type is AttestationType.X509:
            _check_x509(self.kind, att.x509)
        if self.allocation_policy is AllocationPolicy.CUSTOM and self.custom_allocation is None:
            raise InvalidInput("allocationPolicy 'custom' needs customAllocationDefinition.webhookUrl")
        return self

    def stamped(self, now: datetime) -> Enrollment:
        """The record as written now, with a fresh etag.

        ``created`` is ``now`` too; when the write replaces an existing record, the store keeps
        that record's creation time instead.
        """
        return replace(self, created=now, updated=now, etag=new_etag())


def _filled_keys(keys: SymmetricKeyAttestation | None) -> SymmetricKeyAttestation:
    primary = keys.primary_key if keys and keys.primary_key else new_symmetric_key()
    secondary = keys.secondary_key if keys and keys.secondary_key else new_symmetric_key()
    for key in (primary, secondary):
        try:
            raw = base64.b64decode(key, validate=True)
        except ValueError as exc:
            raise InvalidInput("symmetric keys must be base64") from exc
        if not 16 <= len(raw) <= 64:
            raise InvalidInput("symmetric keys must decode to between 16 and 64 bytes")
    return SymmetricKeyAttestation(primary_key=primary, secondary_key=secondary)


def _check_tpm(tpm: TpmAttestation | None) -> None:
    """The EK must be one the TPM flow can answer (an RSA-2048 EK, TCG default template), so a
    device is never enrolled with a key it could not register with; an SRK, if given, likewise."""
    if tpm is None or not tpm.endorsement_key:
        raise InvalidInput("TPM attestation needs an endorsementKey")
    check_endorsement_key(tpm.endorsement_key)
    if tpm.storage_root_key:
        decode_public_b64(tpm.storage_root_key, "storageRootKey")


def _check_x509(kind: EnrollmentKind, x509: X509Attestation | None) -> None:
    if x509 is None:
        raise InvalidInput("x509 attestation needs clientCertificates, signingCertificates or caReferences")
    forms = [
        x509.client_primary or x509.client_secondary,
        x509.signing_primary or x509.signing_secondary,
        x509.ca_primary or x509.ca_secondary,
    ]
    if sum(1 for f in forms if f) != 1:
        raise InvalidInput(
            "x509 attestation needs exactly one of clientCertificates, signingCertificates, caReferences"
        )
    if kind is EnrollmentKind.INDIVIDUAL and not forms[0]:
        raise InvalidInput("an individual enrollment's x509 attestation needs clientCertificates")
    if kind is EnrollmentKind.GROUP and forms[0]:
        raise InvalidInput("an enrollment group's x509 attestation needs signingCertificates or caReferences")
    primary = x509.client_primary or x509.signing_primary or x509.ca_primary
    if primary is None:
        raise InvalidInput("x509 attestation needs a primary certificate")


def keep_stored_keys(incoming: Enrollment, stored: Enrollment | None) -> Enrollment:
    """``incoming`` with the stored symmetric keys where it names none.

    A record written again without its keys (an import file re-run, a CSV without key columns)
    must not rotate the keys its devices hold: DPS generates keys only for a new enrollment.
    """
    att = incoming.attestation
    kept = stored.attestation.symmetric_key if stored is not None else None
    if att.type is not AttestationType.SYMMETRIC_KEY or kept is None:
        return incoming
    given = att.symmetric_key
    keys = SymmetricKeyAttestation(
        primary_key=(given.primary_key if given and given.primary_key else kept.primary_key),
        secondary_key=(given.secondary_key if given and given.secondary_key else kept.secondary_key),
    )
    return replace(incoming, attestation=replace(att, symmetric_key=keys))


def same_content(a: Enrollment, b: Enrollment) -> bool:
    """Whether two records say the same thing, whatever their etags and timestamps."""
    return replace(a, created=None, updated=None, etag=None) == replace(
        b, created=None, updated=None, etag=None
    )


def new_symmetric_key() -> str:
    """A random 64-byte key in base64, as DPS generates when none is given."""
    return base64.b64encode(secrets.token_bytes(64)).decode()


def new_etag() -> str:
    """An opaque quoted etag; clients echo it back verbatim."""
    return f'"{uuid.uuid4()}"'


ANY_ETAG = "*"


def normalize_if_match(value: str | None) -> str | None:
    """The etag a conditional write must find, in stored (quoted) form; ``*`` means any version.

    Clients send If-Match quoted or bare, sometimes weak (``W/``); all of them name the same
    version, so the comparison in the store can be a plain equality in one statement.
    """
    if value is None or not value.strip():
        return None
    bare = value.strip()
    if bare == ANY_ETAG:
        return ANY_ETAG
    if bare.startswith("W/"):
        bare = bare[2:]
    return f'"{bare.strip(chr(34))}"'
