"""The one JSON decoder of every dialect: depth, non-finite numbers, malformed bodies."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisiond.wirejson import MAX_DEPTH, MalformedJson, decode, too_deep


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def nested(levels: int, leaf: Any, key: str) -> Any:
    value = leaf
    for level in range(levels):
        value = {key: value} if level % 2 else [value, key]
    return value


# Strings that look like structure: brackets, quotes and backslashes inside keys and values.
tricky_text = st.text(alphabet='[]{}"\\ab\n', max_size=8)


@settings(max_examples=300, deadline=None)
@given(levels=st.integers(min_value=0, max_value=2 * MAX_DEPTH), leaf=tricky_text, key=tricky_text)
def test_depth_check_agrees_with_the_real_depth(levels: int, leaf: str, key: str) -> None:
    """Brackets, quotes and escapes inside strings never fool the depth check."""
    value = nested(levels, leaf, key)
    body = json.dumps(value).encode()
    assert too_deep(body) == (depth(value) > MAX_DEPTH)


@settings(max_examples=200, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | tricky_text,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
        max_leaves=60,
    )
)
def test_depth_check_on_arbitrary_documents(value: Any) -> None:
    assert too_deep(json.dumps(value).encode()) == (depth(value) > MAX_DEPTH)


def test_exactly_the_limit_is_accepted_and_one_more_refused() -> None:
    ok = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert decode(ok) is not None
    with pytest.raises(MalformedJson, match="nested more than 64"):
        decode(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))


def test_deep_nesting_that_would_exhaust_the_parser_is_a_malformed_body_not_a_recursion_error() -> None:
    with pytest.raises(MalformedJson):
        decode(b'{"a":' * 5000 + b"1" + b"}" * 5000)
    with pytest.raises(MalformedJson):
        decode(b"[" * 100_000)  # unbalanced too


@pytest.mark.parametrize(
    "body", [b"NaN", b"[Infinity]", b'{"x": -Infinity}', b"[1e999]", b'{"x": -1e400}', b"\xff\xfe", b"{"]
)
def test_non_finite_numbers_and_non_json_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedJson):
        decode(body)


def test_typed_decoding_refuses_the_wrong_shape() -> None:
    class Item(msgspec.Struct):
        count: int

    assert decode(b'{"count": 3}', Item) == Item(3)
    with pytest.raises(MalformedJson, match="Expected `int`"):
        decode(b'{"count": "3"}', Item)


_NO_NUL = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)


@given(_NO_NUL, _NO_NUL)
def test_a_nul_in_any_string_is_refused_and_an_escaped_backslash_before_u0000_is_not(a: str, b: str) -> None:
    """PostgreSQL holds no NUL in text or JSON: a body with one is refused on every engine alike."""
    with pytest.raises(MalformedJson, match="NUL"):
        decode(json.dumps({"k": [a + "\x00" + b]}).encode())
    with pytest.raises(MalformedJson, match="NUL"):
        decode(json.dumps({a + "\x00": b}).encode())
    literal = json.dumps({"k": a + "\\u0000" + b}).encode()  # the six characters, not a NUL
    assert decode(literal) == {"k": a + "\\u0000" + b}
