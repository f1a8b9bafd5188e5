"""Registration operations and states in the device API's JSON (RegistrationOperationStatus)."""

from __future__ import annotations

import base64
from typing import Any

from provisiond.api.dps_wire import certificate_info_out, registration_error_code, timestamp
from provisiond.domain.registrations import OperationStatus, RegistrationOperation, RegistrationState
from provisiond.errors import InvalidInput
from provisiond.services.tpm_attestation import PresentedTpm, TpmChallenge

__all__ = [
    "challenge_answer",
    "operation_answer",
    "operation_out",
    "register_answer",
    "registration_csr",
    "registration_payload",
    "registration_state_out",
    "registration_tpm",
    "status_lookup_body",
]


def registration_state_out(s: RegistrationState) -> dict[str, Any]:
    """DeviceRegistrationResult: always with ``status`` (the Node SDK crashes without it)."""
    out: dict[str, Any] = {
        "registrationId": s.registration_id,
        "createdDateTimeUtc": timestamp(s.created),
        "status": s.status,
    }
    if s.assigned_hub is not None:
        out["assignedHub"] = s.assigned_hub
    if s.device_id is not None:
        out["deviceId"] = s.device_id
    if s.substatus is not None:
        out["substatus"] = s.substatus
    if s.failure is not None:
        out["errorCode"] = registration_error_code(s.failure)
        out["errorMessage"] = s.error_message
    out["lastUpdatedDateTimeUtc"] = timestamp(s.updated)
    out["etag"] = s.etag
    if s.payload is not None:
        out["payload"] = s.payload
    if s.attestation_type == "symmetricKey" and s.enrollment_group_id is not None:
        out["symmetricKey"] = {"enrollmentGroupId": s.enrollment_group_id}
    if s.attestation_type == "x509":
        x509: dict[str, Any] = {}
        if s.certificate_info is not None:
            x509["certificateInfo"] = certificate_info_out(s.certificate_info)
        if s.enrollment_group_id is not None:
            x509["enrollmentGroupId"] = s.enrollment_group_id
        if s.signing_certificate_info is not None:
            x509["signingCertificateInfo"] = certificate_info_out(s.signing_certificate_info)
        out["x509"] = x509
    if s.attestation_type == "tpm" and s.tpm_authentication_key is not None:
        # Required on ``assigned``: the SDKs import it as the device's key at its hub.
        out["tpm"] = {"authenticationKey": s.tpm_authentication_key}
    return out


def operation_out(op: RegistrationOperation) -> dict[str, Any]:
    """``{"operationId", "status"}`` while assigning; with ``registrationState`` once final.

    An assigned operation whose device sent a CSR carries ``issuedCertificateChain`` (base64 DER,
    leaf first, root last); only here, never in the status lookup's registration state.
    """
    out: dict[str, Any] = {"operationId": op.operation_id, "status": op.status.value}
    if op.status is not OperationStatus.ASSIGNING and op.state is not None:
        state = registration_state_out(op.state)
        if op.status is OperationStatus.ASSIGNED and op.certificate is not None:
            state["issuedCertificateChain"] = [base64.b64encode(der).decode() for der in op.certificate.chain]
        out["registrationState"] = state
    return out


def registration_payload(body: Any, registration_id: str) -> Any:
    """The device's ``payload`` from a DeviceRegistration body (absent, ``{}`` or ``null`` allowed)."""
    if body is None:
        return None
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a DeviceRegistration JSON object")
    named = body.get("registrationId")
    if named is not None and (not isinstance(named, str) or named.lower() != registration_id.lower()):
        raise InvalidInput("registrationId in the body differs from the one in the path")
    return body.get("payload")


def registration_tpm(body: Any) -> PresentedTpm | None:
    """The ``tpm`` object of a TPM device's first register call (its EK and SRK), if any."""
    tpm = body.get("tpm") if isinstance(body, dict) else None
    if not isinstance(tpm, dict):
        return None
    ek, srk = tpm.get("endorsementKey"), tpm.get("storageRootKey")
    if not isinstance(ek, str | None) or not isinstance(srk, str | None):
        raise InvalidInput("tpm.endorsementKey and tpm.storageRootKey are base64 strings")
    return PresentedTpm(ek, srk)


def challenge_answer(challenge: TpmChallenge) -> tuple[int, dict[str, Any]]:
    """401 with the activation blob: what the SDKs read as DPS's TPM nonce challenge."""
    return 401, {
        "message": "TPM challenge: import authenticationKey and sign the registration with it",
        "authenticationKey": challenge.authentication_key,
        "keyName": "registration",
    }


def registration_csr(body: Any, issuance: bool) -> object:
    """The ``csr`` of a register body (checked by the service), with an api-version that has
    certificate issuance; before it, ``csr`` is an unknown field and ignored like any other."""
    if not issuance or not isinstance(body, dict):
        return None
    return body.get("csr")


def status_lookup_body(body: Any, registration_id: str, issuance: bool) -> None:
    """Check a status lookup's DeviceRegistration body; a ``csr`` there is a bad request."""
    registration_payload(body, registration_id)
    if issuance and isinstance(body, dict) and body.get("csr") is not None:
        raise InvalidInput("csr is not accepted by the registration status lookup; send it to register")


def register_answer(op: RegistrationOperation) -> tuple[int, dict[str, Any]]:
    """A register call is always answered 202 ``assigning``; the device polls for the result."""
    return 202, {"operationId": op.operation_id, "status": OperationStatus.ASSIGNING.value}


def operation_answer(op: RegistrationOperation) -> tuple[int, dict[str, Any]]:
    """202 while assigning, 200 with the registration state once final."""
    return (202 if op.status is OperationStatus.ASSIGNING else 200), operation_out(op)
