"""``GET /crl/{policy}.crl``: a credential policy's current CRL (DER), for anyone who asks.

A CRL is public by design (it is signed, and says only which serials are revoked), and the
clients that fetch it from a certificate's CRL Distribution Point present no credential. So this
is the one route that does not authenticate; its ``Dialect`` says so (``public_reason``), and
docs/security.md lists it.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from provisiond.api.context import context
from provisiond.api.edge import Dialect
from provisiond.api.pki.errors import POLICY, PkiError

__all__ = ["CRL_MEDIA_TYPE", "DIALECT", "router"]

CRL_MEDIA_TYPE = "application/pkix-crl"  # RFC 5280 section 4.2.1.13 / RFC 2585

router = APIRouter(route_class=POLICY.route_class)


@router.get("/crl/{file}", name="credential_policy_crl")
async def crl(file: str, request: Request) -> Response:
    name, dot, extension = file.rpartition(".")
    if not dot or extension.lower() != "crl":
        raise PkiError(404, "CRLs are at /crl/{policy}.crl")
    der = await context(request).credential_policies.crl_der(name)
    # Brokers poll this; a cache may keep it a minute (the CRL is re-signed at half its window).
    return Response(der, media_type=CRL_MEDIA_TYPE, headers={"Cache-Control": "max-age=60"})


def _is_crl_path(path: str) -> bool:
    return path == "/crl" or path.startswith("/crl/")


DIALECT = Dialect(
    "pki",
    (router,),
    POLICY,
    owns_path=_is_crl_path,
    public_reason="a CRL is public by design and fetched by TLS clients that present no credential",
)
