"""The DPS service document's patterns say what the domain accepts, no more and no less: a
generator fed the document makes keys and ids the service takes, and only those."""

from __future__ import annotations

import base64
import re

from hypothesis import given
from hypothesis import strategies as st

from provisiond.api.dps_service.openapi import ID_SCHEMA, SYMMETRIC_KEY_PATTERN
from provisiond.domain.registration_ids import check_enrollment_id
from provisiond.errors import InvalidInput

KEY = re.compile(SYMMETRIC_KEY_PATTERN)
ID = re.compile(ID_SCHEMA["pattern"])


def test_the_key_pattern_takes_base64_of_16_to_64_bytes_only() -> None:
    for size in range(0, 80):
        encoded = base64.b64encode(bytes(range(size))).decode()
        assert bool(KEY.fullmatch(encoded)) is (16 <= size <= 64), size
    assert not KEY.fullmatch(base64.b64encode(bytes(32)).decode().rstrip("="))  # unpadded


@given(st.text(alphabet="abcXYZ019:._-é ", max_size=140))
def test_the_id_pattern_and_length_are_the_domain_rule(value: str) -> None:
    try:
        check_enrollment_id(value)
        accepted = True
    except InvalidInput:
        accepted = False
    assert accepted is bool(ID.fullmatch(value) and len(value) <= ID_SCHEMA["maxLength"])
