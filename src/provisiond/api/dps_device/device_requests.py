"""What a device's HTTPS request carries besides its body: its credentials, and, for a call whose
path names no device (the OpenAPI document), the device it claims to be.

The register, poll and status calls name the device in their path and hand the credentials to
the registration service; the document is served to any device that service would accept, so
the claimed identity comes from the credentials themselves: the SAS token's resource
(``{idScope}/registrations/{registrationId}``), or the client certificate's common name in this
instance's id scope.
"""

from __future__ import annotations

import re
import ssl

from starlette.requests import Request

from provisiond.domain.certificate_chains import presented_chain
from provisiond.domain.sas import parse_sas
from provisiond.errors import Unauthorized
from provisiond.services.device_auth import Credentials

__all__ = ["MAX_BODY", "claimed_device", "credentials"]

MAX_BODY = 96 * 1024

_RESOURCE = re.compile(r"([^/]+)/registrations/([^/]+)", re.IGNORECASE)


def credentials(request: Request) -> Credentials:
    """The SAS header and the client certificate chain (from the ASGI TLS extension)."""
    tls = request.scope.get("extensions", {}).get("tls") or {}
    chain = tuple(ssl.PEM_cert_to_DER_cert(pem) for pem in tls.get("client_cert_chain") or ())
    error = tls.get("client_cert_error")
    return Credentials(request.headers.get("authorization"), chain, error, tpm_capable=True)


def claimed_device(request: Request, instance_scope: str) -> tuple[str, str, Credentials]:
    """(id scope, registration id, credentials) of the device a request claims to be.

    Only a claim: the caller authenticates it (``RegistrationService.authenticate``), as the
    path of a device call would be. A SAS token wins over a certificate, as in every device call.
    """
    presented = credentials(request)
    if presented.authorization is not None:
        match = _RESOURCE.fullmatch(parse_sas(presented.authorization).resource)
        if match is None:
            raise Unauthorized("the token's resource (sr) names no device registration")
        return match.group(1), match.group(2), presented
    if presented.chain_error:
        raise Unauthorized(presented.chain_error)
    common_name = presented_chain(presented.client_chain).common_name  # no chain: Unauthorized
    if common_name is None:
        raise Unauthorized("the client certificate has no common name (the registration id)")
    return instance_scope, common_name, presented
