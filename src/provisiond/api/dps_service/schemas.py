"""Wire models of the DPS service API (spec 2021-10-01), with DPS's exact field names.

Only request bodies are modelled: they are validated strictly (a string is not a bool), unknown
and read-only fields are ignored because clients write back what they read.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = ["BulkIn", "EnrollmentGroupIn", "IndividualEnrollmentIn", "QueryIn"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class SymmetricKeyIn(_Wire):
    primaryKey: str | None = None
    secondaryKey: str | None = None


class TpmIn(_Wire):
    endorsementKey: str | None = None
    storageRootKey: str | None = None


class CertificateIn(_Wire):
    certificate: str | None = None  # ``info`` is computed by the server, never read


class CertificatesIn(_Wire):
    primary: CertificateIn | None = None
    secondary: CertificateIn | None = None


class CaReferencesIn(_Wire):
    primary: str | None = None
    secondary: str | None = None


class X509In(_Wire):
    clientCertificates: CertificatesIn | None = None
    signingCertificates: CertificatesIn | None = None
    caReferences: CaReferencesIn | None = None


class AttestationIn(_Wire):
    type: Literal["none", "tpm", "x509", "symmetricKey"]
    tpm: TpmIn | None = None
    symmetricKey: SymmetricKeyIn | None = None
    x509: X509In | None = None


class CapabilitiesIn(_Wire):
    iotEdge: bool = False


class ReprovisionPolicyIn(_Wire):
    updateHubAssignment: bool = True
    migrateDeviceData: bool = True


class CustomAllocationIn(_Wire):
    webhookUrl: str
    apiVersion: str | None = None


class _EnrollmentBase(_Wire):
    attestation: AttestationIn
    capabilities: CapabilitiesIn | None = None
    iotHubHostName: str | None = None
    initialTwin: dict[str, Any] | None = None
    etag: str | None = None
    provisioningStatus: Literal["enabled", "disabled"] | None = None
    reprovisionPolicy: ReprovisionPolicyIn | None = None
    allocationPolicy: Literal["hashed", "geoLatency", "static", "custom"] | None = None
    iotHubs: list[str] | None = None
    customAllocationDefinition: CustomAllocationIn | None = None
    credentialPolicyName: str | None = None  # read only with api-version 2025-07-01-preview

    @field_validator("initialTwin")
    @classmethod
    def _twin_shape(cls, twin: dict[str, Any] | None) -> dict[str, Any] | None:
        """``tags`` and ``properties.desired`` must be objects: a hub takes nothing else, and a
        twin stored otherwise would be dropped silently at registration (found by the fuzzer)."""
        if twin is None:
            return None
        properties = twin.get("properties")
        parts = {"tags": twin.get("tags"), "properties": properties}
        if isinstance(properties, dict):
            parts["properties.desired"] = properties.get("desired")
        for name, value in parts.items():
            if value is not None and not isinstance(value, dict):
                raise ValueError(f"initialTwin.{name} must be an object")
        return twin


class IndividualEnrollmentIn(_EnrollmentBase):
    registrationId: str
    deviceId: str | None = None
    optionalDeviceInformation: dict[str, Any] | None = None


class EnrollmentGroupIn(_EnrollmentBase):
    enrollmentGroupId: str


class BulkIn(_Wire):
    """Items stay raw dicts here: each is validated on its own so one bad item fails alone."""

    mode: Literal["create", "update", "updateIfMatchETag", "delete"]
    enrollments: list[Any] | None = None
    enrollmentGroups: list[Any] | None = None


class QueryIn(_Wire):
    query: str
