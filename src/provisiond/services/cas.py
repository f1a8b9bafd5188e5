"""CA certificates of the instance: the anchors enrollment groups name in caReferences."""

from __future__ import annotations

import re

from cryptography import x509

from provisiond.domain.certificates import EnrolledCertificate, describe, parse_certificate
from provisiond.domain.clock import Clock, utc_now
from provisiond.errors import AlreadyExists, InvalidInput, NotFound
from provisiond.services import audit
from provisiond.store import cas as repo
from provisiond.store.db import Database

__all__ = ["CaService"]

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class CaService:
    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def add(self, name: str, certificate_text: str) -> EnrolledCertificate:
        """Add a CA certificate (PEM, base64 PEM or base64 DER); it must be a CA (CA:TRUE)."""
        if not _NAME_RE.fullmatch(name):
            raise InvalidInput("CA names are 1-128 characters: alphanumerics and '._-'")
        cert = parse_certificate(certificate_text)
        parsed = x509.load_der_x509_certificate(cert.der)
        try:
            is_ca = parsed.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise InvalidInput("the certificate is not a CA certificate (basicConstraints CA:TRUE)")
        async with self._db.write() as conn:
            if not await repo.insert_ca(conn, name, cert.der, self._clock()):
                raise AlreadyExists(f"a CA named {name!r} exists")
            await audit.record(
                conn,
                "ca.add",
                name,
                details={"subject": cert.info.subject_name, "sha256": cert.info.sha256_thumbprint},
            )
        return cert

    async def cas(self) -> list[tuple[str, EnrolledCertificate]]:
        async with self._db.read() as conn:
            rows = await repo.list_cas(conn)
        return [(name, _enrolled(der)) for name, der in rows]

    async def remove(self, name: str) -> None:
        async with self._db.write() as conn:
            if not await repo.delete_ca(conn, name):
                raise NotFound(f"no CA named {name!r}")
            await audit.record(conn, "ca.remove", name)


def _enrolled(der: bytes) -> EnrolledCertificate:
    return EnrolledCertificate(der, describe(x509.load_der_x509_certificate(der)))
