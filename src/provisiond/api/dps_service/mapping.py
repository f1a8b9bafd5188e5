"""DPS service wire <-> domain: request models to enrollments, domain values to response JSON."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from provisiond.api.dps_service.schemas import (
    AttestationIn,
    CertificatesIn,
    EnrollmentGroupIn,
    IndividualEnrollmentIn,
)
from provisiond.api.dps_wire import certificate_info_out, registration_error_code, timestamp
from provisiond.domain.certificates import EnrolledCertificate, parse_certificate
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
from provisiond.domain.registrations import RegistrationState
from provisiond.errors import InvalidInput

__all__ = [
    "attestation_out",
    "enrollment_from_wire",
    "enrollment_out",
    "state_out",
    "timestamp",
    "validation_message",
]

_ID_FIELD = {EnrollmentKind.INDIVIDUAL: "registrationId", EnrollmentKind.GROUP: "enrollmentGroupId"}
_MODEL: dict[EnrollmentKind, type[IndividualEnrollmentIn] | type[EnrollmentGroupIn]] = {
    EnrollmentKind.INDIVIDUAL: IndividualEnrollmentIn,
    EnrollmentKind.GROUP: EnrollmentGroupIn,
}


def validation_message(exc: ValidationError) -> str:
    """A short, field-named message for the first few problems pydantic found."""
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def wire_id(kind: EnrollmentKind, body: object) -> str:
    """The id an item names, for error reports about items that could not be parsed."""
    value = body.get(_ID_FIELD[kind]) if isinstance(body, dict) else None
    return value if isinstance(value, str) else ""


def enrollment_from_wire(
    kind: EnrollmentKind, body: object, path_id: str | None = None, *, issuance: bool = False
) -> Enrollment:
    """Parse one IndividualEnrollment or EnrollmentGroup body; ``path_id`` fills a missing id.

    ``issuance`` (api-version 2025-07-01-preview): ``credentialPolicyName`` is read, and the
    preview's stricter rules apply (a ``customAllocationDefinition`` with an empty ``webhookUrl``
    or ``apiVersion`` is refused); before it, the field is ignored like any unknown one.
    """
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    if path_id is not None:
        body_id = body.get(_ID_FIELD[kind])
        if body_id is None:
            body = {**body, _ID_FIELD[kind]: path_id}
        elif isinstance(body_id, str) and body_id.lower() != path_id.lower():
            raise InvalidInput(f"{_ID_FIELD[kind]} in the body differs from the one in the path")
    try:
        wire = _MODEL[kind].model_validate(body)
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc)) from exc
    caps = wire.capabilities
    rp = wire.reprovisionPolicy
    custom = wire.customAllocationDefinition
    individual = wire if isinstance(wire, IndividualEnrollmentIn) else None
    if issuance and custom is not None and (not custom.webhookUrl or custom.apiVersion == ""):
        raise InvalidInput("customAllocationDefinition.webhookUrl and .apiVersion must not be empty")
    if issuance and wire.credentialPolicyName == "":
        raise InvalidInput("credentialPolicyName must not be empty (leave it out for no policy)")
    return Enrollment(
        kind=kind,
        id=individual.registrationId if individual else wire.enrollmentGroupId,  # type: ignore[union-attr]
        attestation=_attestation(wire.attestation),
        device_id=individual.deviceId if individual else None,
        optional_device_information=individual.optionalDeviceInformation if individual else None,
        iot_edge=caps.iotEdge if caps else False,
        iot_hub_host_name=wire.iotHubHostName,
        iot_hubs=tuple(wire.iotHubs) if wire.iotHubs is not None else None,
        initial_twin=wire.initialTwin,
        provisioning_enabled=wire.provisioningStatus != "disabled",
        update_hub_assignment=rp.updateHubAssignment if rp else True,
        migrate_device_data=rp.migrateDeviceData if rp else True,
        allocation_policy=AllocationPolicy(wire.allocationPolicy) if wire.allocationPolicy else None,
        custom_allocation=CustomAllocation(custom.webhookUrl, custom.apiVersion) if custom else None,
        credential_policy=wire.credentialPolicyName if issuance else None,
        etag=wire.etag,
    )


def _certs(certs: CertificatesIn | None) -> tuple[EnrolledCertificate | None, EnrolledCertificate | None]:
    if certs is None:
        return None, None
    primary = parse_certificate(certs.primary.certificate) if certs.primary else None
    secondary = parse_certificate(certs.secondary.certificate) if certs.secondary else None
    return primary, secondary


def _attestation(wire: AttestationIn) -> Attestation:
    kind = AttestationType(wire.type)
    if kind is AttestationType.SYMMETRIC_KEY:
        keys = wire.symmetricKey
        return Attestation(
            kind,
            symmetric_key=SymmetricKeyAttestation(
                primary_key=(keys.primaryKey or "") if keys else "",
                secondary_key=(keys.secondaryKey or "") if keys else "",
            ),
        )
    if kind is AttestationType.TPM:
        tpm = wire.tpm
        if tpm is None or not tpm.endorsementKey:
            raise InvalidInput("attestation.tpm.endorsementKey is required")
        return Attestation(kind, tpm=TpmAttestation(tpm.endorsementKey, tpm.storageRootKey))
    if kind is AttestationType.X509:
        x = wire.x509
        if x is None:
            raise InvalidInput("attestation.x509 is required")
        client = _certs(x.clientCertificates)
        signing = _certs(x.signingCertificates)
        ca = x.caReferences
        return Attestation(
            kind,
            x509=X509Attestation(
                client_primary=client[0],
                client_secondary=client[1],
                signing_primary=signing[0],
                signing_secondary=signing[1],
                ca_primary=ca.primary if ca else None,
                ca_secondary=ca.secondary if ca else None,
            ),
        )
    return Attestation(kind)


def _cert_out(cert: EnrolledCertificate | None) -> dict[str, Any] | None:
    return {"info": certificate_info_out(cert.info)} if cert else None


def _pair(primary: Any, secondary: Any) -> dict[str, Any]:
    out = {"primary": primary}
    if secondary is not None:
        out["secondary"] = secondary
    return out


def attestation_out(att: Attestation) -> dict[str, Any]:
    out: dict[str, Any] = {"type": att.type.value}
    if att.symmetric_key:
        out["symmetricKey"] = {
            "primaryKey": att.symmetric_key.primary_key,
            "secondaryKey": att.symmetric_key.secondary_key,
        }
    if att.tpm:
        tpm = {"endorsementKey": att.tpm.endorsement_key}
        if att.tpm.storage_root_key:
            tpm["storageRootKey"] = att.tpm.storage_root_key
        out["tpm"] = tpm
    if att.x509:
        x = att.x509
        if x.client_primary or x.client_secondary:
            out["x509"] = {
                "clientCertificates": _pair(_cert_out(x.client_primary), _cert_out(x.client_secondary))
            }
        elif x.signing_primary or x.signing_secondary:
            out["x509"] = {
                "signingCertificates": _pair(_cert_out(x.signing_primary), _cert_out(x.signing_secondary))
            }
        else:
            out["x509"] = {"caReferences": _pair(x.ca_primary, x.ca_secondary)}
    return out


def enrollment_out(
    e: Enrollment, state: RegistrationState | None = None, *, issuance: bool = False
) -> dict[str, Any]:
    """IndividualEnrollment or EnrollmentGroup JSON; optional fields appear only when set, and
    ``credentialPolicyName`` only with api-version 2025-07-01-preview (``issuance``)."""
    out: dict[str, Any] = {_ID_FIELD[e.kind]: e.id}
    if e.device_id is not None:
        out["deviceId"] = e.device_id
    if state is not None:
        out["registrationState"] = state_out(state)
    out["attestation"] = attestation_out(e.attestation)
    out["capabilities"] = {"iotEdge": e.iot_edge}
    if e.iot_hub_host_name is not None:
        out["iotHubHostName"] = e.iot_hub_host_name
    if e.initial_twin is not None:
        out["initialTwin"] = e.initial_twin
    out["etag"] = e.etag
    out["provisioningStatus"] = "enabled" if e.provisioning_enabled else "disabled"
    out["reprovisionPolicy"] = {
        "updateHubAssignment": e.update_hub_assignment,
        "migrateDeviceData": e.migrate_device_data,
    }
    out["createdDateTimeUtc"] = timestamp(e.created)
    out["lastUpdatedDateTimeUtc"] = timestamp(e.updated)
    if e.allocation_policy is not None:
        out["allocationPolicy"] = e.allocation_policy.value
    if e.iot_hubs is not None:
        out["iotHubs"] = list(e.iot_hubs)
    if e.custom_allocation is not None:
        custom = {"webhookUrl": e.custom_allocation.webhook_url}
        if e.custom_allocation.api_version:
            custom["apiVersion"] = e.custom_allocation.api_version
        out["customAllocationDefinition"] = custom
    if e.optional_device_information is not None:
        out["optionalDeviceInformation"] = e.optional_device_information
    if issuance and e.credential_policy is not None:
        out["credentialPolicyName"] = e.credential_policy
    return out


def state_out(s: RegistrationState) -> dict[str, Any]:
    """DeviceRegistrationState JSON."""
    out: dict[str, Any] = {
        "registrationId": s.registration_id,
        "createdDateTimeUtc": timestamp(s.created),
        "status": s.status,
        "lastUpdatedDateTimeUtc": timestamp(s.updated),
        "etag": s.etag,
    }
    for name, value in (
        ("assignedHub", s.assigned_hub),
        ("deviceId", s.device_id),
        ("substatus", s.substatus),
        ("errorCode", registration_error_code(s.failure)),
        ("errorMessage", s.error_message),
        ("payload", s.payload),
    ):
        if value is not None:
            out[name] = value
    return out
