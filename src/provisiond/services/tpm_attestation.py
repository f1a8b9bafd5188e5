"""TPM attestation: the nonce challenge, the proof that answers it, and the device's hub key.

A TPM device never shows a secret. Its first register call carries only its EK and SRK; if the
EK is the one enrolled, the server makes a fresh HMAC key, wraps it so that only the TPM holding
that EK can import it (``domain/tpm_activation.py``) and answers 401 with that blob. The device
imports the key and registers again with a SAS token its TPM signed (``skn=registration``):
verifying that token with the key proves the device holds the EK. On ``assigned`` the device
gets a second fresh key the same way, its key at its hub.

Both keys are stored sealed (``store/tpm.py``), in the database and not in a process, so the
challenge and the signed call may reach different ``serve`` processes, or one before and one
after a restart. A new challenge replaces the key of the previous one. Which enrollment decides
is not settled here but in ``services/device_auth.py`` (``_apply_precedence``); this module only
says whether the individual enrollment's TPM proved itself.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.domain.enrollments import AttestationType, Enrollment
from provisiond.domain.registration_ids import id_key
from provisiond.domain.registration_results import EnrollmentMatch
from provisiond.domain.sas import SasToken, verify_signature
from provisiond.domain.tpm_activation import activation_blob, new_device_key
from provisiond.domain.tpm_public import RsaPublic, check_endorsement_key, decode_public_b64
from provisiond.errors import InvalidInput, Unauthorized
from provisiond.store import tpm as repo

__all__ = [
    "PresentedTpm",
    "TpmChallenge",
    "TpmChallengeRequired",
    "hub_key_blob",
    "issue_challenge",
    "own_tpm",
]


class TpmChallengeRequired(Unauthorized):
    """A call without credentials for a TPM enrollment: the device must take a challenge first.

    The register call answers it with a challenge; a poll, a status lookup or an MQTT CONNECT
    gets the plain 401 it also is.
    """

    def __init__(self, enrollment: Enrollment) -> None:
        super().__init__(
            "a TPM device signs its calls with the key of its challenge; "
            "register without Authorization to receive one"
        )
        self.enrollment = enrollment


@dataclass(frozen=True, slots=True)
class PresentedTpm:
    """The ``tpm`` object of a DeviceRegistration body, as sent (base64 TPM2B_PUBLIC each)."""

    endorsement_key: str | None
    storage_root_key: str | None


@dataclass(frozen=True, slots=True)
class TpmChallenge:
    """The answer to a TPM device's first call: the activation blob of its challenge key."""

    authentication_key: str


def _enrolled_ek(enrollment: Enrollment) -> RsaPublic:
    tpm = enrollment.attestation.tpm
    if tpm is None:  # validated on write; an enrollment without an EK is not a TPM enrollment
        raise Unauthorized("the enrollment holds no endorsementKey")
    return check_endorsement_key(tpm.endorsement_key)


async def issue_challenge(
    conn: AsyncConnection,
    enrollment: Enrollment,
    registration_id: str,
    presented: PresentedTpm | None,
    now: datetime,
) -> TpmChallenge:
    """A fresh challenge key for the TPM with the enrolled EK, stored sealed, answered wrapped.

    The EK is compared with the enrolled one on the decoded key, not the bytes. A device with
    another EK is refused (401) and nothing is stored. An EK is public, though: whoever knows it
    (and the registration id) can ask for challenges and so replace the device's pending one,
    which the device then answers with a 401 and asks again (docs/tpm.md, "Limits").
    """
    if presented is None or not presented.endorsement_key or not presented.storage_root_key:
        raise InvalidInput("a TPM device's register call carries tpm.endorsementKey and tpm.storageRootKey")
    ek = decode_public_b64(presented.endorsement_key, "endorsementKey")
    if not _enrolled_ek(enrollment).same_key(ek):
        raise Unauthorized(f"the endorsementKey is not the one enrolled for {registration_id!r}")
    srk = decode_public_b64(presented.storage_root_key, "storageRootKey")
    key = new_device_key()
    blob = activation_blob(ek, srk, key)
    prior = await repo.get_keys(conn, id_key(registration_id))
    # The hub key carries over only to the same TPM: one enrolled under this id before with
    # another EK must not be handed the earlier device's key at its hub.
    same_tpm = prior is not None and decode_public_b64(prior.endorsement_key, "endorsementKey").same_key(ek)
    keys = repo.TpmKeys(
        endorsement_key=presented.endorsement_key,
        storage_root_key=presented.storage_root_key,
        challenge_key=key,
        hub_key=prior.hub_key if prior is not None and same_tpm else None,
        issued=now,
    )
    await repo.put_keys(conn, id_key(registration_id), keys)
    return TpmChallenge(base64.b64encode(bytes(blob)).decode())


async def own_tpm(
    conn: AsyncConnection, individual: Enrollment, token: SasToken, at: float
) -> EnrollmentMatch | None:
    """The individual TPM enrollment, if the token was signed with its latest challenge's key.

    The challenge must have been issued for the EK enrolled now: an EK replaced in the
    enrollment since then makes the old challenge worthless.
    """
    if individual.attestation.type is not AttestationType.TPM:
        return None
    keys = await repo.get_keys(conn, individual.key)
    if keys is None:
        return None
    issued_for = decode_public_b64(keys.endorsement_key, "endorsementKey")
    if not _enrolled_ek(individual).same_key(issued_for):
        return None
    try:
        verify_signature(token, [base64.b64encode(keys.challenge_key).decode()], at)
    except Unauthorized:
        return None
    return EnrollmentMatch(individual, AttestationType.TPM.value)


async def hub_key_blob(conn: AsyncConnection, registration_id: str) -> str:
    """A fresh hub key for the device, stored sealed; the blob that delivers it (base64).

    Made when the registration starts, for the TPM the challenge was issued to, so that a custom
    allocation finishing later (in any process) has it in the operation's context.
    """
    keys = await repo.get_keys(conn, id_key(registration_id))
    if keys is None:  # authenticated by a challenge in this transaction, so it exists
        raise Unauthorized(f"no challenge was issued to {registration_id!r}")
    key = new_device_key()
    ek = decode_public_b64(keys.endorsement_key, "endorsementKey")
    srk = decode_public_b64(keys.storage_root_key, "storageRootKey")
    blob = activation_blob(ek, srk, key)
    await repo.put_keys(conn, id_key(registration_id), replace(keys, hub_key=key))
    return base64.b64encode(bytes(blob)).decode()
