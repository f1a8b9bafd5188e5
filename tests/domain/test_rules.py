"""Id, etag and query rules of the DPS service dialect's domain."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisiond.domain.enrollments import normalize_if_match
from provisiond.domain.instance import DpsInstance
from provisiond.domain.query import check_query, decode_token, encode_token, page_size
from provisiond.domain.registration_ids import check_enrollment_id, new_id_scope
from provisiond.errors import InvalidInput


@pytest.mark.parametrize("value", ["a", "dev-1", "A.b:c_d-9", "x" * 128])
def test_valid_registration_ids(value: str) -> None:
    assert check_enrollment_id(value) == value


@pytest.mark.parametrize("value", ["", "-dev", "dev-", "dev 1", "dév", "x" * 129, "a/b", 5, None])
def test_invalid_registration_ids(value: object) -> None:
    with pytest.raises(InvalidInput):
        check_enrollment_id(value)


def test_id_scope_has_dps_shape() -> None:
    scope = new_id_scope()
    assert scope.startswith("0ne") and len(scope) == 11
    int(scope[3:], 16)


@pytest.mark.parametrize(
    ("header", "stored"),
    [(None, None), ("", None), ("*", "*"), ('"abc"', '"abc"'), ("abc", '"abc"'), ('W/"abc"', '"abc"')],
)
def test_if_match_is_normalized_to_the_stored_quoted_form(header: str | None, stored: str | None) -> None:
    assert normalize_if_match(header) == stored


@pytest.mark.parametrize("query", ["*", "SELECT * FROM enrollments", "select  *  from ENROLLMENTS"])
def test_all_records_queries_are_accepted(query: str) -> None:
    check_query(query, "enrollments")


@pytest.mark.parametrize(
    "query", ["SELECT * FROM enrollmentGroups", "SELECT * FROM enrollments WHERE x=1", 3]
)
def test_other_queries_are_refused(query: object) -> None:
    with pytest.raises(InvalidInput):
        check_query(query, "enrollments")


def test_page_size_defaults_and_caps() -> None:
    assert page_size(None) == 100
    assert page_size("5") == 5
    assert page_size("100000") == 1000
    for bad in ("0", "-1", "many"):
        with pytest.raises(InvalidInput):
            page_size(bad)


@given(st.text(min_size=1, max_size=128))
def test_continuation_tokens_round_trip(key: str) -> None:
    assert decode_token(encode_token(key)) == key


@pytest.mark.parametrize("token", ["garbage!", "e30=", "bm90IGpzb24="])
def test_foreign_continuation_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidInput):
        decode_token(token)


def test_instance_answers_to_host_with_or_without_port_in_any_case() -> None:
    instance = DpsInstance("0ne00000001", "localhost")
    assert instance.answers_to("LocalHost", 8443)
    assert instance.answers_to("localhost:8443", 8443)
    assert not instance.answers_to("localhost:9999", 8443)
    assert not instance.answers_to("evil.example", 8443)


def test_instance_answers_to_its_endpoint_url_as_the_generated_service_client_signs_it() -> None:
    instance = DpsInstance("0ne00000001", "localhost")
    assert instance.answers_to("https://localhost:8443", 8443)
    assert instance.answers_to("HTTPS://LocalHost:8443/", 8443)
    assert instance.answers_to("https://localhost", 8443)
    for other in (
        "https://localhost:9999",
        "http://localhost:8443",
        "https://evil.example",
        "https://localhost.evil",
    ):
        assert not instance.answers_to(other, 8443), other
