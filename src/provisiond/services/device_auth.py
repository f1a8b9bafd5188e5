"""Device authentication: which enrollment a device is, decided in one place.

A device proves itself with a SAS token (symmetric key, or TPM: signed with the key of its
challenge, ``services/tpm_attestation.py``) or a TLS client certificate chain (X.509). Each
attestation type only answers two questions: does the individual enrollment's
credential match, and which group's does? Who decides between them is settled once, in
``_apply_precedence``, for every attestation type and every transport (HTTPS, MQTT, MQTT over
WebSocket).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from cryptography import x509
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.certificate_chains import (
    PresentedChain,
    anchor_depth,
    check_leaf,
    leaf_matches,
    presented_chain,
)
from provisiond.domain.certificates import CertificateInfo, describe
from provisiond.domain.clock import Clock, utc_now
from provisiond.domain.enrollments import AttestationType, Enrollment, EnrollmentKind
from provisiond.domain.registration_ids import check_enrollment_id, id_key
from provisiond.domain.registration_results import EnrollmentMatch
from provisiond.domain.sas import SasToken, derive_device_key, parse_sas, verify_signature
from provisiond.errors import InvalidInput, NotFound, Unauthorized
from provisiond.services.tpm_attestation import TpmChallengeRequired, own_tpm
from provisiond.store import cas as ca_repo
from provisiond.store import enrollments as enrollment_repo
from provisiond.store import instance as instance_repo

__all__ = ["Credentials", "DeviceAuthenticator", "UnknownIdScope", "UnknownRegistration"]


class UnknownIdScope(NotFound):
    """The id scope is not this instance's."""


class UnknownRegistration(NotFound):
    """No enrollment knows this registration id (or the operation id)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a device presented: a SAS ``Authorization`` value and/or a TLS client chain (DER).

    ``tpm_capable``: the transport carries DPS's TPM attestation (HTTPS does; MQTT does not, as
    in DPS, so a TPM device's token is refused there).
    """

    authorization: str | None = None
    client_chain: tuple[bytes, ...] = ()
    chain_error: str | None = None
    tpm_capable: bool = False


@dataclass
class DeviceAuthenticator:
    """Finds the enrollment a device's credentials prove, inside the caller's transaction.

    The caller's connection is used so that a register call authenticates and registers in one
    transaction (fewer round trips than a read transaction and a write one).
    """

    clock: Clock = utc_now
    _id_scope: str | None = field(default=None, init=False)

    async def authenticate(
        self, conn: AsyncConnection, id_scope: str, registration_id: str, credentials: Credentials
    ) -> EnrollmentMatch:
        """A SAS token when one is sent, else the TLS client certificate chain.

        Each attestation type only answers two questions (does the individual enrollment's
        credential match? which group's does?); who decides is settled in ``_apply_precedence``.
        """
        # The instance's id scope never changes: it is read once.
        if self._id_scope is None:
            instance = await instance_repo.get_instance(conn)
            self._id_scope = instance.id_scope if instance else None
        if self._id_scope is None or self._id_scope.lower() != id_scope.lower():
            raise UnknownIdScope(f"id scope {id_scope!r} is not served here")
        try:
            check_enrollment_id(registration_id)
        except InvalidInput as exc:
            raise UnknownRegistration(exc.message) from exc
        if credentials.authorization is None and credentials.chain_error:
            raise Unauthorized(credentials.chain_error)
        individual = await enrollment_repo.get_enrollment(
            conn, EnrollmentKind.INDIVIDUAL, id_key(registration_id)
        )
        if credentials.authorization is None and credentials.client_chain:
            now = self.clock()
            chain = presented_chain(credentials.client_chain)
            try:
                check_leaf(chain, registration_id, now)
            except InvalidInput as exc:
                raise Unauthorized(exc.message) from exc
            own = _own_x509(individual, chain)
            return await _apply_precedence(
                registration_id, individual, own, lambda: _group_x509(conn, chain, now)
            )
        tpm = individual if individual and individual.attestation.type is AttestationType.TPM else None
        if tpm is not None and credentials.authorization is None:
            raise TpmChallengeRequired(tpm)
        token = parse_sas(credentials.authorization)
        expected = f"{id_scope}/registrations/{registration_id}".lower()
        if token.resource.lower() != expected:
            raise Unauthorized("the token's resource (sr) is not this device's registration")
        at = self.clock().timestamp()
        if token.expiry <= at:
            raise Unauthorized("SharedAccessSignature has expired")
        own = _own_symmetric(individual, token, registration_id, at)
        if tpm is not None:
            # Over MQTT a TPM's token proves nothing (DPS carries TPM over HTTPS and AMQP only),
            # but precedence still applies: a disabled TPM enrollment disenrolls its id from a group.
            own = await own_tpm(conn, tpm, token, at) if credentials.tpm_capable else None
        return await _apply_precedence(
            registration_id, individual, own, lambda: _group_symmetric(conn, token, registration_id, at)
        )


async def _apply_precedence(
    registration_id: str,
    individual: Enrollment | None,
    own: EnrollmentMatch | None,
    groups: Callable[[], Awaitable[_GroupSearch]],
) -> EnrollmentMatch:
    """Attestation precedence, decided here and nowhere else (docs/devices.md).

    If an individual enrollment exists for the registration id, it alone decides: its credential
    and its ``provisioningStatus``. Groups are consulted only when none exists, with one
    exception that is not a fallback: a *disabled* individual enrollment blocks a device that
    proves itself with a group's credential ("disenrollment" of one member of a group), so that
    device gets the ``disabled`` result of the individual enrollment, never the group's hub.
    """
    if individual is None:
        found = await groups()
        if found.match is None:
            if found.candidates == 0:
                raise UnknownRegistration(f"no enrollment for registration id {registration_id!r}")
            raise Unauthorized(found.refusal)
        return found.match
    if own is not None:
        return own
    if not individual.provisioning_enabled:
        found = await groups()
        if found.match is not None:
            return replace(found.match, enrollment=individual)
    raise Unauthorized(
        f"the credential is not the one of the individual enrollment for {registration_id!r}, "
        "which alone decides for its registration id"
    )


@dataclass(frozen=True, slots=True)
class _GroupSearch:
    """The group that accepted a credential, if any; ``candidates``: groups of that attestation type."""

    match: EnrollmentMatch | None
    candidates: int
    refusal: str


def _own_symmetric(
    individual: Enrollment | None, token: SasToken, registration_id: str, at: float
) -> EnrollmentMatch | None:
    if individual is not None and _signed_by(token, _keys(individual, registration_id), at):
        return EnrollmentMatch(individual, AttestationType.SYMMETRIC_KEY.value)
    return None


async def _group_symmetric(
    conn: AsyncConnection, token: SasToken, registration_id: str, at: float
) -> _GroupSearch:
    """The first group, in id order, whose derived key signed the token."""
    async for group in _groups(conn):
        if _signed_by(token, _keys(group, registration_id), at):
            return _GroupSearch(EnrollmentMatch(group, AttestationType.SYMMETRIC_KEY.value), 1, "")
    # A wrong key for an unknown registration id is "not found", as it always was in DPS.
    return _GroupSearch(None, 0, "SharedAccessSignature signature does not match")


def _own_x509(individual: Enrollment | None, chain: PresentedChain) -> EnrollmentMatch | None:
    """The individual enrollment, if it holds this exact leaf."""
    x = individual.attestation.x509 if individual is not None else None
    if individual is None or x is None:
        return None
    if leaf_matches(chain, [x.client_primary, x.client_secondary]) is None:
        return None
    return EnrollmentMatch(individual, AttestationType.X509.value, certificate_info=chain.leaf_info)


async def _group_x509(conn: AsyncConnection, chain: PresentedChain, now: datetime) -> _GroupSearch:
    """The X.509 group whose anchor is nearest the leaf in the presented chain."""
    cas = {name.lower(): der for name, der in await ca_repo.list_cas(conn)}
    best: tuple[int, Enrollment, CertificateInfo] | None = None
    x509_groups = 0
    async for group in _groups(conn):
        anchors = _group_anchors(group, cas)
        if not anchors:
            continue
        x509_groups += 1
        found = anchor_depth(chain, anchors, now)
        if found is not None and (best is None or found[0] < best[0]):
            best = (found[0], group, describe(found[1]))
    refusal = "the certificate matches no enrollment: not an enrolled leaf, no trusted chain"
    if best is None:
        return _GroupSearch(None, x509_groups, refusal)
    return _GroupSearch(
        EnrollmentMatch(best[1], AttestationType.X509.value, chain.leaf_info, best[2]), x509_groups, ""
    )


async def _groups(conn: AsyncConnection) -> AsyncIterator[Enrollment]:
    """Every enrollment group in id order, a page at a time."""
    after: str | None = None
    while True:
        page = await enrollment_repo.page_enrollments(conn, EnrollmentKind.GROUP, after, 100)
        for group in page:
            yield group
        if len(page) < 100:
            return
        after = page[-1].key


def _group_anchors(group: Enrollment, cas: dict[str, bytes]) -> list[x509.Certificate]:
    """The trust anchors of an X.509 group: its signing certificates and its referenced CAs."""
    x = group.attestation.x509
    if group.attestation.type is not AttestationType.X509 or x is None:
        return []
    ders = [cert.der for cert in (x.signing_primary, x.signing_secondary) if cert is not None]
    ders += [cas[name.lower()] for name in (x.ca_primary, x.ca_secondary) if name and name.lower() in cas]
    return [x509.load_der_x509_certificate(der) for der in ders]


def _keys(e: Enrollment, registration_id: str) -> list[str]:
    sym = e.attestation.symmetric_key
    if e.attestation.type is not AttestationType.SYMMETRIC_KEY or sym is None:
        return []
    if e.kind is EnrollmentKind.GROUP:
        return [
            derive_device_key(sym.primary_key, registration_id),
            derive_device_key(sym.secondary_key, registration_id),
        ]
    return [sym.primary_key, sym.secondary_key]


def _signed_by(token: SasToken, keys: list[str], now: float) -> bool:
    if not keys:
        return False
    try:
        verify_signature(token, keys, now)
    except Unauthorized:
        return False
    return True
