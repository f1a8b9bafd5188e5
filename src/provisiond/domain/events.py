"""Event webhooks: the catalogue of event types, type filters, secrets, signatures and backoff.

Events are CloudEvents 1.0 in structured JSON mode, signed per Standard Webhooks (docs/events.md).
The rules live here, pure, so the store, the dispatcher and tests agree on them: a filter is an
exact type or a prefix ending in ``*``; a secret is ``whsec_`` + base64 and its HMAC key is the
decoded part; the signed content is ``id.timestamp.body`` over the exact bytes sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import secrets
from collections.abc import Sequence
from datetime import timedelta

from provisiond.errors import InvalidInput

__all__ = [
    "EVENT_TYPES",
    "GIVE_UP_AFTER",
    "SECRET_PREFIX",
    "check_secret",
    "matches",
    "new_secret",
    "parse_types",
    "retry_delay",
    "sign",
]

EVENT_TYPES = (
    "io.provisiond.dps.registration.assigned",
    "io.provisiond.dps.registration.failed",
    "io.provisiond.dps.registration.disabled",
    "io.provisiond.dps.enrollment.created",
    "io.provisiond.dps.enrollment.updated",
    "io.provisiond.dps.enrollment.deleted",
    "io.provisiond.dps.enrollmentgroup.created",
    "io.provisiond.dps.enrollmentgroup.updated",
    "io.provisiond.dps.enrollmentgroup.deleted",
    "io.provisiond.claims.operation.completed",
    "io.provisiond.claims.device.claimed",
    "io.provisiond.claims.device.unclaimed",
)

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix of the format, not a secret)
GIVE_UP_AFTER = timedelta(days=3)
FIRST_RETRY = 1.0
MAX_RETRY = 300.0


def parse_types(text: str | None) -> tuple[str, ...]:
    """``--types T1,T2`` as a tuple (empty: every type); each must name or prefix a known type,
    so a typo is refused at subscribe time rather than silently matching nothing."""
    if not text:
        return ()
    types = tuple(t.strip() for t in text.split(",") if t.strip())
    for t in types:
        if not any(matches((t,), known) for known in EVENT_TYPES):
            raise InvalidInput(f"{t!r} is no event type (and no prefix of one ending in '*')")
    return types


def matches(filters: Sequence[str], event_type: str) -> bool:
    """Whether a subscription with ``filters`` (empty: all) wants ``event_type``."""
    if not filters:
        return True
    for f in filters:
        if f.endswith("*") and event_type.startswith(f[:-1]):
            return True
        if f == event_type:
            return True
    return False


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    body = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)


def check_secret(secret: str) -> str:
    """``secret`` stripped, if it is ``whsec_`` + base64 of 24 to 64 bytes (the spec's range)."""
    secret = secret.strip()
    try:
        key = _key(secret) if secret.startswith(SECRET_PREFIX) else b""
    except ValueError:
        key = b""
    if not 24 <= len(key) <= 64:
        raise InvalidInput("a webhook secret is 'whsec_' + base64 of 24 to 64 random bytes")
    return secret


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def retry_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before the next try after ``attempts`` failed ones: about 1 s, doubling, capped
    at 5 minutes, with ±20 % jitter so receivers that come back are not hit by every sender at once."""
    base = min(MAX_RETRY, FIRST_RETRY * 2 ** max(0, attempts - 1))
    jitter: float = (rng or random.Random()).uniform(0.8, 1.2)  # noqa: S311 (timing, not security)
    return float(base * jitter)
