"""Shared access signatures (SAS) as DPS and IoT Hub use them.

The SDKs disagree on how they write a token (field order, whether ``sr`` is percent-encoded,
upper- or lower-case hex, whether ``skn`` is present), so verification follows one rule that
accepts all of them: the HMAC is computed over ``sr`` exactly as it arrived, never over a decoded
or re-encoded form, and only the *resource check* looks at the decoded value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

from provisiond.errors import Unauthorized

__all__ = ["SasToken", "build_sas", "derive_device_key", "parse_sas", "sign", "verify_signature"]

_PREFIX = "SharedAccessSignature "


@dataclass(frozen=True, slots=True)
class SasToken:
    """A parsed token: ``sr`` and ``se`` as received, ``sig`` decoded, ``skn`` if sent."""

    resource_raw: str
    signature: str
    expiry_raw: str
    expiry: int
    key_name: str | None

    @property
    def resource(self) -> str:
        """The resource with percent-escapes decoded, for comparison with what the route names."""
        return urllib.parse.unquote(self.resource_raw)


def parse_sas(header: str | None) -> SasToken:
    """Parse an ``Authorization`` value; refuse anything that is not one well-formed SAS."""
    if not header:
        raise Unauthorized("missing Authorization header")
    if not header.startswith(_PREFIX):
        raise Unauthorized("Authorization is not a SharedAccessSignature")
    fields: dict[str, str] = {}
    for part in header[len(_PREFIX) :].strip().split("&"):
        name, sep, value = part.partition("=")
        if not sep or not name:
            raise Unauthorized("malformed SharedAccessSignature field")
        if name in fields:
            raise Unauthorized(f"repeated SharedAccessSignature field {name!r}")
        fields[name] = value
    missing = [name for name in ("sr", "sig", "se") if not fields.get(name)]
    if missing:
        raise Unauthorized(f"SharedAccessSignature lacks {', '.join(missing)}")
    try:
        expiry = int(fields["se"])
    except ValueError as exc:
        raise Unauthorized("SharedAccessSignature expiry is not an integer") from exc
    skn = fields.get("skn")
    return SasToken(
        resource_raw=fields["sr"],
        # unquote, not unquote_plus: a '+' in base64 must stay a '+'.
        signature=urllib.parse.unquote(fields["sig"]),
        expiry_raw=fields["se"],
        expiry=expiry,
        key_name=urllib.parse.unquote(skn) if skn else None,
    )


def _decode_key(key_b64: str) -> bytes:
    try:
        return base64.b64decode(key_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unauthorized("key is not base64") from exc


def sign(key_b64: str, resource_raw: str, expiry_raw: str) -> str:
    """The base64 HMAC-SHA256 of ``sr + "\\n" + se`` under a base64 key."""
    message = f"{resource_raw}\n{expiry_raw}".encode()
    digest = hmac.new(_decode_key(key_b64), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_signature(token: SasToken, keys: Iterable[str], now: float) -> None:
    """Accept the token if any candidate key signed it and it has not expired.

    Every candidate is compared in constant time, and all of them are tried even after a
    match, so timing does not reveal which key (primary or secondary) was used.
    """
    if token.expiry <= now:
        raise Unauthorized("SharedAccessSignature has expired")
    presented = token.signature.encode()
    matched = False
    for key in keys:
        expected = sign(key, token.resource_raw, token.expiry_raw).encode()
        matched |= hmac.compare_digest(expected, presented)
    if not matched:
        raise Unauthorized("SharedAccessSignature signature does not match")


def derive_device_key(group_key_b64: str, registration_id: str) -> str:
    """The key a member of a symmetric-key enrollment group signs with."""
    digest = hmac.new(_decode_key(group_key_b64), registration_id.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def build_sas(key_b64: str, resource: str, expiry: int, key_name: str | None = None) -> str:
    """Build a token the way the Node SDK does (raw ``sr``); used by the CLI and tests."""
    sig = urllib.parse.quote(sign(key_b64, resource, str(expiry)), safe="")
    token = f"{_PREFIX}sr={resource}&sig={sig}&se={expiry}"
    return f"{token}&skn={key_name}" if key_name else token
