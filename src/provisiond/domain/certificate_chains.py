"""X.509 device attestation: which enrollment a presented certificate chain proves.

The TLS front accepted whatever chain the device presented (it only proved possession of the
leaf's key); here the chain is judged:

- the leaf's common name must be the registration id, and the leaf must be within its validity;
- an individual enrollment matches when the leaf *is* its enrolled primary or secondary
  certificate (SHA-256 thumbprint);
- an enrollment group matches when a path is built from the leaf through the presented
  intermediates to one of the group's own trust anchors (its signing certificates, or the CAs
  its caReferences name) and ``cryptography``'s verifier accepts it: signatures, validity of
  every certificate, basicConstraints CA:TRUE and key usage on issuers, path length, clientAuth
  when an EKU is present. Names are never compared instead of signatures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from provisiond.domain.certificates import CertificateInfo, EnrolledCertificate, describe
from provisiond.errors import InvalidInput, Unauthorized

__all__ = [
    "MAX_X509_ID_LENGTH",
    "PresentedChain",
    "anchor_depth",
    "check_leaf",
    "leaf_matches",
    "presented_chain",
]

MAX_X509_ID_LENGTH = 64  # a CN holds at most 64 characters, so X.509 registration ids do too

# Device certificates rarely carry a subjectAltName (and some lack key identifiers): allow both
# to be absent; every other web-PKI rule stays.
_EE_POLICY = (
    ExtensionPolicy.webpki_defaults_ee()
    .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    .may_be_present(x509.AuthorityKeyIdentifier, Criticality.AGNOSTIC, None)
)
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca().may_be_present(
    x509.AuthorityKeyIdentifier, Criticality.AGNOSTIC, None
)


@dataclass(frozen=True, slots=True)
class PresentedChain:
    leaf: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]

    @property
    def leaf_sha256(self) -> str:
        from cryptography.hazmat.primitives.serialization import Encoding

        return hashlib.sha256(self.leaf.public_bytes(Encoding.DER)).hexdigest().upper()

    @property
    def leaf_info(self) -> CertificateInfo:
        return describe(self.leaf)

    @property
    def common_name(self) -> str | None:
        """The leaf's CN: a device's registration id."""
        return _common_name(self.leaf)


def presented_chain(ders: Sequence[bytes]) -> PresentedChain:
    """Parse the chain the TLS front captured (DER, leaf first)."""
    if not ders:
        raise Unauthorized("no client certificate was presented")
    try:
        certs = [x509.load_der_x509_certificate(der) for der in ders]
    except ValueError as exc:
        raise Unauthorized("the client certificate chain could not be parsed") from exc
    return PresentedChain(certs[0], tuple(certs[1:]))


def _common_name(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else None
    return value if isinstance(value, str) else None


def check_leaf(chain: PresentedChain, registration_id: str, now: datetime) -> None:
    """The leaf must name the registration id in its CN and be valid now."""
    if len(registration_id) > MAX_X509_ID_LENGTH:
        raise InvalidInput(f"X.509 registration ids are at most {MAX_X509_ID_LENGTH} characters")
    if _common_name(chain.leaf) != registration_id:
        raise Unauthorized("the certificate's common name is not the registration id")
    if not chain.leaf.not_valid_before_utc <= now <= chain.leaf.not_valid_after_utc:
        raise Unauthorized("the device certificate is not valid at this time")


def leaf_matches(
    chain: PresentedChain, enrolled: Sequence[EnrolledCertificate | None]
) -> EnrolledCertificate | None:
    """The enrolled certificate (primary or secondary) that is exactly the presented leaf."""
    thumbprint = chain.leaf_sha256
    for cert in enrolled:
        if cert is not None and cert.info.sha256_thumbprint == thumbprint:
            return cert
    return None


def anchor_depth(
    chain: PresentedChain, anchors: Sequence[x509.Certificate], now: datetime
) -> tuple[int, x509.Certificate] | None:
    """Verify the chain up to one of ``anchors``; return (path length, anchor) or ``None``.

    The shorter the path, the nearer the anchor is to the leaf: among groups, the nearest wins.
    """
    if not anchors:
        return None
    verifier = (
        PolicyBuilder()
        .store(Store(list(anchors)))
        .time(now)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
        .build_client_verifier()
    )
    try:
        verified = verifier.verify(chain.leaf, list(chain.intermediates))
    except VerificationError:
        return None
    return len(verified.chain), verified.chain[-1]
