"""Sphere rules: device-id syntax, bulk lists, claim/release decisions, and the wire mapping of
operation states, errors and continuation tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from provisiond.api.sphere.errors import SphereError
from provisiond.api.sphere.mapping import (
    decode_continuation,
    device_ids_from_wire,
    encode_continuation,
    operation_out,
    page_size,
)
from provisiond.domain.claims import ItemStatus, Operation, OperationKind, OperationState
from provisiond.domain.device_identifiers import Vendor
from provisiond.domain.sphere import (
    CONFLICT,
    MAX_BULK_CLAIM,
    InvalidDeviceId,
    InvalidDeviceList,
    SphereOperation,
    TooManyDevices,
    decide_claim,
    decide_release,
    normalise_device_id,
    normalise_device_ids,
)

HEX = "0123456789abcdefABCDEF" * 6  # 132 characters of every hex digit in both cases


def test_a_128_hex_id_in_any_case_is_stored_upper_case() -> None:
    assert normalise_device_id(HEX[:128]) == HEX[:128].upper()


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("", id="empty"),
        pytest.param(HEX[:127], id="127"),
        pytest.param(HEX[:129], id="129"),
        pytest.param("a-" * 64, id="public-pattern-letters-and-dashes"),
        pytest.param("0" * 127 + "\n", id="trailing-newline"),
        pytest.param("\uff10" * 128, id="fullwidth-digits"),
    ],
)
def test_anything_but_128_hex_characters_is_an_invalid_device_id(bad: str) -> None:
    with pytest.raises(InvalidDeviceId):
        normalise_device_id(bad)


def test_a_bulk_list_keeps_request_order_and_duplicates() -> None:
    a, b = "a" * 128, "b" * 128
    assert normalise_device_ids([a, b, a.upper()]) == ["A" * 128, "B" * 128, "A" * 128]


def test_a_bulk_claim_must_name_a_device() -> None:
    with pytest.raises(InvalidDeviceList):
        normalise_device_ids([])


@pytest.mark.parametrize("body", [{}, "a" * 128, None, 5])
def test_a_bulk_body_that_is_not_a_json_array_is_an_invalid_device_list(body: object) -> None:
    with pytest.raises(SphereError) as raised:
        device_ids_from_wire(body)
    assert raised.value.code == "InvalidDeviceList"


@pytest.mark.parametrize("item", [None, 5, ["a" * 128], {"DeviceId": "a" * 128}])
def test_a_bulk_item_that_is_not_a_string_is_an_invalid_device_id(item: object) -> None:
    with pytest.raises(SphereError) as raised:
        device_ids_from_wire(["a" * 128, item])
    assert raised.value.code == "InvalidDeviceId" and "item 1" in raised.value.detail


def test_more_than_1000_ids_is_too_many_and_1000_is_not() -> None:
    assert len(normalise_device_ids(["a" * 128] * MAX_BULK_CLAIM)) == MAX_BULK_CLAIM
    with pytest.raises(TooManyDevices):
        normalise_device_ids(["a" * 128] * (MAX_BULK_CLAIM + 1))


def test_one_bad_id_names_its_position() -> None:
    with pytest.raises(InvalidDeviceId, match="item 1"):
        normalise_device_ids(["a" * 128, "nope"])


def test_a_free_device_is_claimed_an_own_one_is_a_duplicate_and_a_foreign_one_a_conflict() -> None:
    assert decide_claim(1, None) is None
    own = decide_claim(1, 1)
    assert own is not None and own.status is ItemStatus.DUPLICATE and own.ok
    foreign = decide_claim(1, 2)
    assert foreign is not None and not foreign.ok and foreign.code == CONFLICT


def test_only_the_owner_releases_a_device() -> None:
    assert decide_release(1, 1) is None
    for owner in (None, 2):
        refused = decide_release(1, owner)
        assert refused is not None and not refused.ok


def _op(kind: OperationKind, state: OperationState, device: str | None) -> SphereOperation:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    done = now if state in (OperationState.COMPLETE, OperationState.COMPLETE_WITH_ERRORS) else None
    core = Operation(1, kind, 5, Vendor.GOOGLE, state, 4, 4 if done else 0, 3, now, done, done)
    return SphereOperation(uuid.UUID(int=1), uuid.UUID(int=2), device, core)


@pytest.mark.parametrize(
    ("kind", "state", "device", "wire_state", "error"),
    [
        (OperationKind.SPHERE_CLAIM, OperationState.PENDING, "A" * 128, 0, None),
        (OperationKind.SPHERE_CLAIM, OperationState.IN_PROGRESS, "A" * 128, 1, None),
        (OperationKind.SPHERE_CLAIM, OperationState.COMPLETE, "A" * 128, 2, None),
        (OperationKind.SPHERE_CLAIM, OperationState.COMPLETE_WITH_ERRORS, "A" * 128, 3, 7),
        (OperationKind.SPHERE_BULK_CLAIM, OperationState.COMPLETE, None, 2, None),
        (OperationKind.SPHERE_BULK_CLAIM, OperationState.COMPLETE_WITH_ERRORS, None, 4, 7),
    ],
)
def test_core_states_render_as_sphere_states_with_an_error_only_on_failure(
    kind: OperationKind, state: OperationState, device: str | None, wire_state: int, error: int | None
) -> None:
    out = operation_out(_op(kind, state, device), "https://h")
    assert out["State"] == wire_state
    assert (out["Error"] or {}).get("Code") == error
    assert out["OperationType"] == (0 if kind is OperationKind.SPHERE_CLAIM else 11)


def test_a_continuation_token_round_trips_to_the_device_it_names() -> None:
    device = HEX[:128].upper()
    assert decode_continuation(encode_continuation(device)) == device
    assert decode_continuation(None) is None
    assert decode_continuation("") is None  # an empty header asks for the first page


@pytest.mark.parametrize("token", ["abc", "é", encode_continuation("A" * 128) + "A", "A" * 200])
def test_a_token_we_did_not_issue_is_refused(token: str) -> None:
    with pytest.raises(SphereError):
        decode_continuation(token)


def test_page_size_defaults_to_1000_and_is_capped_there() -> None:
    assert page_size(None) == 1000
    assert page_size("7") == 7
    assert page_size("100000") == 1000
