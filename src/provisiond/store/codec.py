"""Enrollments to and from the JSON document kept in the ``doc`` column.

The document is the store's own format (snake_case, DER in base64), not a wire format: a change
of an API's JSON never forces a data migration.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from provisiond.domain.certificates import CertificateInfo, EnrolledCertificate
from provisiond.domain.credential_policies import IssuedChain
from provisiond.domain.enrollments import (
    AllocationPolicy,
    Attestation,
    AttestationType,
    CustomAllocation,
    Enrollment,
    EnrollmentKind,
    SymmetricKeyAttestation,
    TpmAttestation,
    X509Attestation,
)
from provisiond.domain.registrations import (
    OperationStatus,
    RegistrationFailure,
    RegistrationOperation,
    RegistrationState,
)
from provisiond.jsontext import dumps, loads
from provisiond.store.keyring import Keyring, key_id_of

__all__ = [
    "dump_enrollment",
    "dump_operation",
    "dump_state",
    "enrollment_row",
    "load_enrollment",
    "load_operation",
    "load_state",
]

_CERT_SLOTS = ("client_primary", "client_secondary", "signing_primary", "signing_secondary")


def _dump_cert(cert: EnrolledCertificate | None) -> str | None:
    return base64.b64encode(cert.der).decode() if cert else None


def _load_cert(der_b64: str | None, info: dict[str, Any] | None) -> EnrolledCertificate | None:
    loaded = _load_cert_info(info)
    if der_b64 is None or loaded is None:
        return None
    return EnrolledCertificate(der=base64.b64decode(der_b64), info=loaded)


def _dump_info(cert: EnrolledCertificate | None) -> dict[str, Any] | None:
    return _dump_cert_info(cert.info) if cert else None


def _load_cert_info(info: dict[str, Any] | None) -> CertificateInfo | None:
    if info is None:
        return None
    return CertificateInfo(
        **{
            **info,
            "not_before": datetime.fromisoformat(info["not_before"]),
            "not_after": datetime.fromisoformat(info["not_after"]),
        }
    )


def _dump_cert_info(i: CertificateInfo | None) -> dict[str, Any] | None:
    if i is None:
        return None
    return {
        "subject_name": i.subject_name,
        "sha1_thumbprint": i.sha1_thumbprint,
        "sha256_thumbprint": i.sha256_thumbprint,
        "issuer_name": i.issuer_name,
        "not_before": i.not_before.isoformat(),
        "not_after": i.not_after.isoformat(),
        "serial_number": i.serial_number,
        "version": i.version,
    }


def enrollment_row(kind: str, key: str) -> str:
    """The associated data an enrollment's sealed keys are bound to."""
    return f"enrollments/{kind}/{key}"


def _dump_attestation(att: Attestation, keyring: Keyring, row: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": att.type.value}
    if att.symmetric_key:
        # Both keys in one sealed value: one AEAD operation per enrollment read.
        keys = f"{att.symmetric_key.primary_key} {att.symmetric_key.secondary_key}"
        doc["symmetric_key"] = keyring.seal(keys, row)
    if att.tpm:
        doc["tpm"] = [att.tpm.endorsement_key, att.tpm.storage_root_key]
    if att.x509:
        x = att.x509
        doc["x509"] = {
            **{slot: _dump_cert(getattr(x, slot)) for slot in _CERT_SLOTS},
            **{slot + "_info": _dump_info(getattr(x, slot)) for slot in _CERT_SLOTS},
            "ca_primary": x.ca_primary,
            "ca_secondary": x.ca_secondary,
        }
    return doc


# Enum members by value: a dict lookup, where calling the enum class costs ~0.7 µs a value,
# which adds up when a query page rebuilds a thousand enrollments.
_KINDS = {member.value: member for member in EnrollmentKind}
_ATTESTATION_TYPES = {member.value: member for member in AttestationType}
_POLICIES = {member.value: member for member in AllocationPolicy}


def _load_attestation(doc: dict[str, Any], keyring: Keyring, row: str) -> Attestation:
    x509 = None
    if "x509" in doc:
        x = doc["x509"]
        certs = {slot: _load_cert(x[slot], x[slot + "_info"]) for slot in _CERT_SLOTS}
        x509 = X509Attestation(**certs, ca_primary=x["ca_primary"], ca_secondary=x["ca_secondary"])
    sealed = doc.get("symmetric_key")
    tpm = doc.get("tpm")
    return Attestation(
        type=_ATTESTATION_TYPES[doc["type"]],
        symmetric_key=SymmetricKeyAttestation(*keyring.open(sealed, row).split(" ")) if sealed else None,
        tpm=TpmAttestation(*tpm) if tpm else None,
        x509=x509,
    )


def dump_enrollment(e: Enrollment, keyring: Keyring) -> tuple[str, str | None]:
    """The ``doc`` column of an enrollment (everything but the key columns), its symmetric keys
    sealed; and the id of the outer key that sealed them (``None`` when it holds none)."""
    attestation = _dump_attestation(e.attestation, keyring, enrollment_row(e.kind.value, e.key))
    sealed = attestation.get("symmetric_key")
    doc = {
        "id": e.id,
        "attestation": attestation,
        "device_id": e.device_id,
        "optional_device_information": e.optional_device_information,
        "iot_edge": e.iot_edge,
        "iot_hub_host_name": e.iot_hub_host_name,
        "iot_hubs": list(e.iot_hubs) if e.iot_hubs is not None else None,
        "initial_twin": e.initial_twin,
        "provisioning_enabled": e.provisioning_enabled,
        "update_hub_assignment": e.update_hub_assignment,
        "migrate_device_data": e.migrate_device_data,
        "allocation_policy": e.allocation_policy.value if e.allocation_policy else None,
        "custom_allocation": (
            [e.custom_allocation.webhook_url, e.custom_allocation.api_version]
            if e.custom_allocation
            else None
        ),
    }
    if e.credential_policy is not None:
        doc["credential_policy"] = e.credential_policy
    return dumps(doc), key_id_of(sealed) if sealed else None


def load_enrollment(
    keyring: Keyring, kind: str, key: str, etag: str, created: datetime, updated: datetime, doc_text: str
) -> Enrollment:
    """Rebuild an enrollment from its row, opening its sealed keys."""
    doc = loads(doc_text)
    hubs = doc["iot_hubs"]
    custom = doc["custom_allocation"]
    policy = doc["allocation_policy"]
    return Enrollment(
        kind=_KINDS[kind],
        id=doc["id"],
        attestation=_load_attestation(doc["attestation"], keyring, enrollment_row(kind, key)),
        device_id=doc["device_id"],
        optional_device_information=doc["optional_device_information"],
        iot_edge=doc["iot_edge"],
        iot_hub_host_name=doc["iot_hub_host_name"],
        iot_hubs=tuple(hubs) if hubs is not None else None,
        initial_twin=doc["initial_twin"],
        provisioning_enabled=doc["provisioning_enabled"],
        update_hub_assignment=doc["update_hub_assignment"],
        migrate_device_data=doc["migrate_device_data"],
        allocation_policy=_POLICIES[policy] if policy else None,
        custom_allocation=CustomAllocation(*custom) if custom else None,
        credential_policy=doc.get("credential_policy"),
        created=created,
        updated=updated,
        etag=etag,
    )


# A failure kind is stored as the number in ``error_code`` that rows have always held (DPS's
# errorCode, which states once carried). These numbers are a storage format now, apart from
# any wire table: never renumber them, or older rows would read as another failure.
_FAILURE_NUMBERS = {
    RegistrationFailure.DISABLED: 401006,
    RegistrationFailure.NO_HUB: 400206,
    RegistrationFailure.CUSTOM_FAILED: 400207,
    RegistrationFailure.CUSTOM_NO_HUB: 400208,
    RegistrationFailure.CUSTOM_UNAUTHORIZED: 400209,
    # Shown as 400209 too (api/dps_wire.py), but stored apart so the kind survives a reload.
    RegistrationFailure.HUB_FAILED: 400290,
}
_FAILURES = {number: failure for failure, number in _FAILURE_NUMBERS.items()}


def dump_state(s: RegistrationState) -> str:
    doc = {
        "registration_id": s.registration_id,
        "status": s.status,
        "enrollment_group_id": s.enrollment_group_id,
        "assigned_hub": s.assigned_hub,
        "device_id": s.device_id,
        "substatus": s.substatus,
        "error_code": _FAILURE_NUMBERS[s.failure] if s.failure is not None else None,
        "error_message": s.error_message,
        "payload": s.payload,
        "attestation_type": s.attestation_type,
        "initial_twin": s.initial_twin,
        "certificate_info": _dump_cert_info(s.certificate_info),
        "signing_certificate_info": _dump_cert_info(s.signing_certificate_info),
    }
    if s.tpm_authentication_key is not None:  # only TPM states: other documents stay as they were
        doc["tpm_authentication_key"] = s.tpm_authentication_key
    if s.issuance is not None:  # only registrations that sent a CSR; older rows have neither key
        doc["issuance"] = s.issuance
        doc["issued_serial"] = s.issued_serial
    if s.identity_hub is not None:  # only where a connector wrote an identity
        doc["identity_hub"] = s.identity_hub
        doc["identity_device_id"] = s.identity_device_id
    return dumps(doc)


def load_state(etag: str, created: datetime, updated: datetime, doc_text: str) -> RegistrationState:
    return _state_from_doc(loads(doc_text), etag, created, updated)


def _state_from_doc(
    doc: dict[str, Any], etag: str, created: datetime, updated: datetime
) -> RegistrationState:
    doc = {
        **doc,
        "certificate_info": _load_cert_info(doc.get("certificate_info")),
        "signing_certificate_info": _load_cert_info(doc.get("signing_certificate_info")),
    }
    number = doc.pop("error_code", None)
    failure = _FAILURES[number] if number is not None else None
    return RegistrationState(created=created, updated=updated, etag=etag, failure=failure, **doc)


def dump_operation(op: RegistrationOperation) -> str:
    """The ``doc`` of an operation row: its state snapshot (with its own times) and context."""
    state = None
    if op.state is not None:
        s = op.state
        state = {
            "doc": loads(dump_state(s)),
            "etag": s.etag,
            "created": s.created.isoformat(),
            "updated": s.updated.isoformat(),
        }
    doc: dict[str, Any] = {"registration_id": op.registration_id, "state": state, "context": op.context}
    if op.issuance is not None:
        doc["issuance"] = op.issuance
    if op.certificate is not None:
        doc["certificate"] = {
            "serial": op.certificate.serial,
            "chain": [_b64(der) for der in op.certificate.chain],
        }
    return dumps(doc)


def load_operation(
    operation_id: str,
    status: str,
    created: datetime,
    updated: datetime,
    poll_not_before: datetime | None,
    doc_text: str,
) -> RegistrationOperation:
    doc = loads(doc_text)
    snap = doc["state"]
    state = None
    if snap is not None:
        state = _state_from_doc(
            snap["doc"],
            snap["etag"],
            datetime.fromisoformat(snap["created"]),
            datetime.fromisoformat(snap["updated"]),
        )
    return RegistrationOperation(
        operation_id=operation_id,
        registration_id=doc["registration_id"],
        status=OperationStatus(status),
        created=created,
        updated=updated,
        poll_not_before=poll_not_before,
        state=state,
        context=doc["context"],
        issuance=doc.get("issuance"),
        certificate=_issued_chain(doc.get("certificate")),
    )


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode()


def _issued_chain(doc: dict[str, Any] | None) -> IssuedChain | None:
    if doc is None:
        return None
    return IssuedChain(doc["serial"], tuple(base64.b64decode(der) for der in doc["chain"]))
