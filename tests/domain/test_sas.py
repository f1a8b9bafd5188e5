"""SAS parsing and verification against test vectors taken from real Node and Python SDK tokens."""

from __future__ import annotations

import urllib.parse

import pytest

from provisiond.domain.sas import build_sas, derive_device_key, parse_sas, sign, verify_signature
from provisiond.errors import Unauthorized

SERVICE_KEY = "c2VjcmV0a2V5c2VjcmV0a2V5c2VjcmV0a2V5MTIzNDU="
DEVICE_KEY = "cHJpbWFyeWtleXByaW1hcnlrZXlwcmltYXJ5a2V5MTI="
BEFORE = 1_700_000_000


@pytest.mark.parametrize(
    ("key", "resource", "expiry", "signature"),
    [
        (SERVICE_KEY, "localhost", "1795321754", "85v44DDH1JNERxPKFF4GbfcKQ+y5Dk0kYyOyEfHbCbU="),
        (SERVICE_KEY, "localhost%3A8443", "1795321758", "OFO6L7eMHSDDVG02XFNw7WA5+OOabc9sdcxKxaPRH28="),
        (
            DEVICE_KEY,
            "0ne00000001/registrations/dev-http-1",
            "1795321756",
            "COZP15/cj3COH0oVwOdtCDU/LRKIyUeVKI3lVZ7j4LU=",
        ),
        (
            DEVICE_KEY,
            "0ne00000001%2Fregistrations%2Fdev-py-mqtt-1",
            "1795321760",
            "OQbTrq7q8ELfPaKBuLCJ1OVg8MJfbGzgUbsQ/BrQggI=",
        ),
    ],
)
def test_signature_matches_sdk_vectors_over_sr_as_received(
    key: str, resource: str, expiry: str, signature: str
) -> None:
    assert sign(key, resource, expiry) == signature
    header = f"SharedAccessSignature sr={resource}&sig={urllib.parse.quote(signature, safe='')}&se={expiry}"
    verify_signature(parse_sas(header), [key], now=BEFORE)


def test_signing_the_decoded_resource_is_the_bug_we_avoid() -> None:
    """The Python device SDK's encoded sr must not be decoded before the HMAC."""
    decoded = urllib.parse.unquote("0ne00000001%2Fregistrations%2Fdev-py-mqtt-1")
    assert sign(DEVICE_KEY, decoded, "1795321760").startswith("JFCUfIQx")


def test_fields_in_any_order_and_python_style_raw_slashes_in_sig() -> None:
    sig = sign(SERVICE_KEY, "localhost", "1795321754")
    header = f"SharedAccessSignature skn=owner&se=1795321754&sig={sig}&sr=localhost"
    token = parse_sas(header)
    assert token.key_name == "owner"
    verify_signature(token, [SERVICE_KEY], now=BEFORE)


def test_secondary_key_is_accepted() -> None:
    token = parse_sas(build_sas(SERVICE_KEY, "localhost", 1795321754, "owner"))
    verify_signature(token, [DEVICE_KEY, SERVICE_KEY], now=BEFORE)


def test_expired_token_is_refused_at_the_expiry_second() -> None:
    token = parse_sas(build_sas(SERVICE_KEY, "localhost", 1795321754))
    with pytest.raises(Unauthorized, match="expired"):
        verify_signature(token, [SERVICE_KEY], now=1795321754)


def test_forged_signature_is_refused() -> None:
    token = parse_sas(build_sas(DEVICE_KEY, "localhost", 1795321754))
    with pytest.raises(Unauthorized, match="does not match"):
        verify_signature(token, [SERVICE_KEY], now=BEFORE)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer abc",
        "SharedAccessSignature sr=localhost&se=1",
        "SharedAccessSignature sr=localhost&sig=a&se=1&sig=b",
        "SharedAccessSignature sr=localhost&sig=a&se=soon",
        "SharedAccessSignature sr=localhost&sig",
    ],
)
def test_malformed_tokens_are_refused(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        parse_sas(header)


def test_group_member_key_derivation_matches_vector() -> None:
    assert derive_device_key(DEVICE_KEY, "dev-7") == "hZQNpBHD5V3Zi8D8KZU9mJORXEC9VMTF0YG55DnXADc="
