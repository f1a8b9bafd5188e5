"""The DPS service API's answers as its OpenAPI document describes them: one struct per JSON
object ``mapping`` writes, field for field, closed to other fields (the fuzzer checks every
answer against them). Optional fields are left out when unset, as the service writes them."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from provisiond.api.dps_openapi import RegistrationStateFields, X509CertificateInfo
from provisiond.api.openapi import Closed

__all__ = [
    "AttestationMechanism",
    "BulkEnrollmentGroupOperationResult",
    "BulkEnrollmentOperationResult",
    "DeviceRegistrationState",
    "EnrollmentGroup",
    "IndividualEnrollment",
]


class SymmetricKeyAttestation(Closed):
    primaryKey: str
    secondaryKey: str


class TpmAttestation(Closed):
    endorsementKey: str
    storageRootKey: str | UnsetType = UNSET


class X509CertificateWithInfo(Closed):
    info: X509CertificateInfo


class X509Certificates(Closed):
    primary: X509CertificateWithInfo | None
    secondary: X509CertificateWithInfo | UnsetType = UNSET


class X509CAReferences(Closed):
    primary: str | None
    secondary: str | UnsetType = UNSET


class X509Attestation(Closed):
    clientCertificates: X509Certificates | UnsetType = UNSET
    signingCertificates: X509Certificates | UnsetType = UNSET
    caReferences: X509CAReferences | UnsetType = UNSET


class AttestationMechanism(Closed):
    type: Literal["none", "tpm", "x509", "symmetricKey"]
    tpm: TpmAttestation | UnsetType = UNSET
    x509: X509Attestation | UnsetType = UNSET
    symmetricKey: SymmetricKeyAttestation | UnsetType = UNSET


class InitialTwinProperties(msgspec.Struct, kw_only=True):
    desired: dict[str, Any] | UnsetType = UNSET


class InitialTwin(msgspec.Struct, kw_only=True):
    """As sent: other members than these two are kept (and ignored at the hub)."""

    tags: dict[str, Any] | UnsetType = UNSET
    properties: InitialTwinProperties | UnsetType = UNSET


class DeviceCapabilities(Closed):
    iotEdge: bool


class ReprovisionPolicy(Closed):
    updateHubAssignment: bool
    migrateDeviceData: bool


class CustomAllocationDefinition(Closed):
    webhookUrl: str
    apiVersion: str | UnsetType = UNSET


class DeviceRegistrationState(RegistrationStateFields):
    """The service API's view of a registration state (the fields both APIs share)."""


class _EnrollmentOut(Closed):
    attestation: AttestationMechanism
    capabilities: DeviceCapabilities
    etag: str
    provisioningStatus: Literal["enabled", "disabled"]
    reprovisionPolicy: ReprovisionPolicy
    createdDateTimeUtc: str | None
    lastUpdatedDateTimeUtc: str | None
    iotHubHostName: str | UnsetType = UNSET
    initialTwin: InitialTwin | UnsetType = UNSET
    allocationPolicy: Literal["hashed", "geoLatency", "static", "custom"] | UnsetType = UNSET
    iotHubs: list[str] | UnsetType = UNSET
    customAllocationDefinition: CustomAllocationDefinition | UnsetType = UNSET
    credentialPolicyName: str | UnsetType = UNSET  # only with api-version 2025-07-01-preview


class IndividualEnrollment(_EnrollmentOut, kw_only=True):
    registrationId: str
    deviceId: str | UnsetType = UNSET
    registrationState: DeviceRegistrationState | UnsetType = UNSET
    optionalDeviceInformation: dict[str, Any] | UnsetType = UNSET


class EnrollmentGroup(_EnrollmentOut, kw_only=True):
    enrollmentGroupId: str


class BulkEnrollmentOperationError(Closed):
    registrationId: str
    errorCode: int
    errorStatus: str


class BulkEnrollmentGroupOperationError(Closed):
    enrollmentGroupId: str
    errorCode: int
    errorStatus: str


class BulkEnrollmentOperationResult(Closed):
    isSuccessful: bool
    errors: list[BulkEnrollmentOperationError]


class BulkEnrollmentGroupOperationResult(Closed):
    isSuccessful: bool
    errors: list[BulkEnrollmentGroupOperationError]
