"""Registration states in the store's document: rows written before failure kinds existed.

The domain names why a registration failed by kind; the document keeps the number that rows
have always held in ``error_code``. Old rows must read back as their kind and be written back
byte for byte, or a state's etag-free document would change under an upgrade.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from provisiond.store.codec import dump_state, load_state

_AT = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _doc(status: str, error_code: int | None, message: str | None) -> str:
    """A document exactly as the version that stored DPS errorCodes in states wrote it."""
    code = "null" if error_code is None else str(error_code)
    text = "null" if message is None else f'"{message}"'
    return (
        f'{{"registration_id":"dev-1","status":"{status}","enrollment_group_id":null,'
        f'"assigned_hub":null,"device_id":null,"substatus":null,"error_code":{code},'
        f'"error_message":{text},"payload":null,"attestation_type":"symmetricKey",'
        '"initial_twin":null,"certificate_info":null,"signing_certificate_info":null}'
    )


@pytest.mark.parametrize(
    ("status", "error_code"),
    [
        ("disabled", 401006),
        ("failed", 400206),
        ("failed", 400207),
        ("failed", 400208),
        ("failed", 400209),
        ("assigned", None),
    ],
)
def test_a_stored_state_reads_back_and_is_written_again_byte_for_byte(
    status: str, error_code: int | None
) -> None:
    doc = _doc(status, error_code, "why" if error_code else None)
    state = load_state('"e1"', _AT, _AT, doc)
    assert (state.failure is None) == (error_code is None)
    assert dump_state(state) == doc


def test_each_stored_number_reads_as_a_different_failure_kind() -> None:
    kinds = {load_state('"e1"', _AT, _AT, _doc("failed", n, "why")).failure for n in range(400206, 400210)}
    kinds.add(load_state('"e1"', _AT, _AT, _doc("disabled", 401006, "why")).failure)
    assert None not in kinds and len(kinds) == 5
