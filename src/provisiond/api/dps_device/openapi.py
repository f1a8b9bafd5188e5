"""The DPS device API's OpenAPI document: the three HTTPS calls a device makes (register, poll the
operation, look up its status). The request body mirrors what ``mapping`` reads from it; the
answers are structs that mirror ``mapping``'s output field for field (the fuzzer checks every
answer against them). MQTT, and MQTT over WebSocket on this port, are not HTTP operations and
are not described."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from provisiond.api.dps_device.device_requests import MAX_BODY
from provisiond.api.dps_openapi import (
    API_VERSION_PARAM,
    ERROR,
    ErrorDetails,
    RegistrationStateFields,
    X509CertificateInfo,
    dps_errors,
    sas_scheme,
)
from provisiond.api.dps_wire import ISSUANCE_API_VERSION
from provisiond.api.openapi import (
    Closed,
    DialectDocument,
    Operation,
    Schema,
    json_content,
    msgspec_components,
    path_param,
    ref,
)
from provisiond.domain.registration_ids import ID_PATTERN, MAX_ID_LENGTH
from provisiond.services.registration import OPERATION_ID_PATTERN

__all__ = ["DOCUMENT"]

# The domain's id rule (domain/registration_ids.py); DPS ids are case-insensitive (the register
# call's vendor text says lower-case; upper case is accepted).
RegistrationId = Annotated[str, msgspec.Meta(pattern=ID_PATTERN, max_length=MAX_ID_LENGTH)]


class TpmAttestation(msgspec.Struct, kw_only=True):
    """A TPM device's public keys, sent on its first (unsigned) register call; read only when the
    registration id names a TPM enrollment."""

    endorsementKey: str
    storageRootKey: str | UnsetType = UNSET


class DeviceRegistration(msgspec.Struct, kw_only=True):
    """What a device sends. Every field is optional, and so is the body (empty, ``null`` or ``{}``);
    other fields are ignored. ``registrationId``, when sent, must be the path's (case-insensitive)."""

    registrationId: RegistrationId | UnsetType = UNSET
    payload: Any | UnsetType = UNSET
    tpm: TpmAttestation | UnsetType = UNSET
    csr: Annotated[str, msgspec.Meta(min_length=1)] | UnsetType = UNSET


class SymmetricKeyRegistrationResult(Closed):
    enrollmentGroupId: str


class X509RegistrationResult(Closed):
    certificateInfo: X509CertificateInfo | UnsetType = UNSET
    enrollmentGroupId: str | UnsetType = UNSET
    signingCertificateInfo: X509CertificateInfo | UnsetType = UNSET


class TpmRegistrationResult(Closed):
    """The hub key, encrypted for the device's TPM (it imports it to sign its hub tokens)."""

    authenticationKey: str


class DeviceRegistrationResult(RegistrationStateFields):
    """A device's registration state. ``issuedCertificateChain`` (base64 DER, leaf first, root
    last) only in an assigned operation whose register call sent a ``csr``, never in the status
    lookup."""

    symmetricKey: SymmetricKeyRegistrationResult | UnsetType = UNSET
    x509: X509RegistrationResult | UnsetType = UNSET
    tpm: TpmRegistrationResult | UnsetType = UNSET
    issuedCertificateChain: list[str] | UnsetType = UNSET


class RegistrationOperationStatus(Closed):
    """An operation: ``assigning`` (no state yet), or final with the device's registration state."""

    operationId: str
    status: Literal["assigning", "assigned", "failed"]
    registrationState: DeviceRegistrationResult | UnsetType = UNSET


class TpmChallenge(Closed):
    """The answer to a TPM device's first, unsigned register call: the activation blob the device
    imports into its TPM, whose key then signs the device's SAS (DPS's nonce challenge)."""

    message: str
    authenticationKey: str
    keyName: Literal["registration"]


_TAGS = ("registrations",)
_ERROR_CODE_HEADER = {
    "description": "The errorCode of the body.",
    "schema": {"type": "string", "pattern": "^[0-9]{6}$"},
}
_RETRY_AFTER = {
    "description": "Seconds to wait before polling the operation.",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}


def _errors(*statuses: int) -> dict[str, dict[str, Any]]:
    """DPS error answers, each with the ``x-ms-error-code`` header (and Retry-After on 429)."""
    answers: dict[str, dict[str, Any]] = {}
    for status, answer in dps_errors(*statuses).items():
        headers: dict[str, Any] = {"x-ms-error-code": {**_ERROR_CODE_HEADER, "required": True}}
        if status == "429":
            headers["Retry-After"] = {**_RETRY_AFTER, "description": "Seconds until the poll is allowed."}
        answers[status] = {**answer, "headers": headers}
    return answers


def _challenge_or_error() -> dict[str, Any]:
    """Register's 401: the TPM challenge (an unsigned call for a TPM enrollment), else an error."""
    return {
        **json_content({"oneOf": [ref("TpmChallenge"), ref(ERROR)]}, "A TPM challenge, or the refusal."),
        "headers": {"x-ms-error-code": {**_ERROR_CODE_HEADER, "description": "On the refusal only."}},
    }


def _operations() -> Iterator[Operation]:
    scope = path_param("idScope", "The provisioning service's id scope.")
    rid = path_param(
        "registrationId",
        "The device's registration id (X.509: its certificate's common name, at most 64 characters).",
        {"type": "string", "pattern": ID_PATTERN, "maxLength": MAX_ID_LENGTH},
    )
    body = {
        "required": False,
        **json_content(ref("DeviceRegistration"), f"The registration (at most {MAX_BODY} bytes)."),
    }
    base = "/{idScope}/registrations/{registrationId}"
    yield Operation(
        "PUT",
        f"{base}/register",
        "RuntimeRegistration_RegisterDevice",
        "Register a device: start its registration operation.",
        {
            "202": {
                **json_content(ref("RegistrationOperationStatus"), "Started (assigning); poll Location."),
                "headers": {
                    "Retry-After": _RETRY_AFTER,
                    "Location": {
                        "description": "The operation's path (the operation status call).",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                },
            },
            **_errors(400, 404, 413, 503),
            "401": _challenge_or_error(),
        },
        (scope, rid, API_VERSION_PARAM),
        body,
        description=(
            f"With api-version {ISSUANCE_API_VERSION}, `csr` (base64 DER PKCS#10 whose CN is the "
            "registration id) asks the enrollment's credential policy for a certificate, returned "
            "as `issuedCertificateChain` in the finished operation; with other versions `csr` is "
            "ignored. A TPM device's first call carries no Authorization and `tpm`; it is answered "
            "401 with a TpmChallenge."
        ),
        tags=_TAGS,
    )
    yield Operation(
        "GET",
        f"{base}/operations/{{operationId}}",
        "RuntimeRegistration_OperationStatusLookup",
        "Poll a registration operation.",
        {
            "200": json_content(ref("RegistrationOperationStatus"), "Finished (assigned or failed)."),
            "202": {
                **json_content(ref("RegistrationOperationStatus"), "Still assigning."),
                "headers": {"Retry-After": _RETRY_AFTER},
            },
            **_errors(400, 401, 404, 429, 503),
        },
        (
            scope,
            rid,
            path_param(
                "operationId",
                "The operationId of the register call's answer; any other is answered 404.",
                {"type": "string", "pattern": OPERATION_ID_PATTERN},
            ),
            API_VERSION_PARAM,
        ),
        description="A poll before the Retry-After the device was given is answered 429.",
        tags=_TAGS,
    )
    yield Operation(
        "POST",
        base,
        "RuntimeRegistration_DeviceRegistrationStatusLookup",
        "A device's latest registration state.",
        {
            "200": json_content(ref("DeviceRegistrationResult"), "The state (no issuedCertificateChain)."),
            **_errors(400, 401, 404, 413, 503),
        },
        (scope, rid, API_VERSION_PARAM),
        body,
        description=f"A `csr` in the body is refused (400) with api-version {ISSUANCE_API_VERSION}.",
        tags=_TAGS,
    )


def _components() -> dict[str, Schema]:
    components = msgspec_components(
        [DeviceRegistration, RegistrationOperationStatus, DeviceRegistrationResult, TpmChallenge]
    )
    components[ERROR] = msgspec_components([ErrorDetails])["ErrorDetails"]
    return components


DOCUMENT = DialectDocument(
    name="dps-device",
    title="provisiond: Azure IoT Hub Device Provisioning Service, device API",
    api_version="2021-10-01",
    description=(
        "What a device calls over HTTPS to be provisioned, as Azure DPS's device API (every "
        f"api-version an official SDK sends, and {ISSUANCE_API_VERSION} for certificate issuance). "
        "A device proves itself with a SharedAccessSignature (symmetric key, or TPM after its "
        "challenge) or with its X.509 client certificate. The same calls over MQTT (port 8883, or "
        "WebSocket at /$iothub/websocket) are not described here."
    ),
    operations=_operations,
    components=_components,
    security_schemes={
        "sas": sas_scheme(
            "SharedAccessSignature sr={idScope}/registrations/{registrationId}&sig={signature}"
            "&se={expiry}&skn=registration, signed with the device's key (an individual "
            "enrollment's, a key derived from a group's, or a TPM's imported key)."
        ),
        "x509": {
            "type": "mutualTLS",
            "description": "The device's certificate (CN: the registration id) and chain, in the handshake.",
        },
    },
)
