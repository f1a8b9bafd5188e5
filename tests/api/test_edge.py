"""The dialect edge: one policy answers every failure of a dialect's routes, and unknown paths go
to the dialect that owns them."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from fastapi.routing import APIRoute
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from provisiond.api.dialects import DIALECTS
from provisiond.api.dps_device import routes as dps_device
from provisiond.api.dps_device.routing import canonical_path as device_canonical
from provisiond.api.dps_service import routes as dps_service
from provisiond.api.dps_service.routing import canonical_path as service_canonical
from provisiond.api.edge import ErrorPolicy, owner_of
from provisiond.api.http import BodyTooLarge, MalformedJson
from provisiond.api.reseller import routes as reseller
from provisiond.api.sphere import routes as sphere
from provisiond.api.zerotouch import routes as zerotouch
from provisiond.errors import NotFound, StoreUnavailable
from provisiond.store.keyring import SecretUnreadable


class _Failure(Exception):
    def __init__(self, status: int, what: str) -> None:
        super().__init__(what)
        self.status = status
        self.what = what


_POLICY = ErrorPolicy(
    error=_Failure,
    render=lambda err: Response(err.what, status_code=err.status),
    translate=lambda exc: _Failure(404, f"domain: {exc.message}"),
    too_large=lambda exc: _Failure(413, f"too large: {exc.limit}"),
    malformed=lambda exc: _Failure(400, f"malformed: {exc}"),
    internal=lambda: _Failure(500, "internal"),
    unrouted=lambda status: _Failure(status, "unrouted"),
    log_note=lambda err: " (note)",
)


def _request() -> Request:
    return Request({"type": "http", "method": "PUT", "path": "/x", "headers": [], "query_string": b""})


@pytest.mark.parametrize(
    ("exc", "status", "body"),
    [
        (_Failure(409, "own"), 409, b"own"),
        (NotFound("no such thing"), 404, b"domain: no such thing"),
        (BodyTooLarge(96), 413, b"too large: 96"),
        (MalformedJson("not JSON"), 400, b"malformed: not JSON"),
        (ClientDisconnect(), 499, b""),
        (RuntimeError("a bug"), 500, b"internal"),
    ],
)
def test_each_kind_of_failure_gets_its_arm_of_the_policy(exc: Exception, status: int, body: bytes) -> None:
    answer = _POLICY.answer(_request(), exc)
    assert (answer.status_code, answer.body) == (status, body)


def test_a_bug_is_logged_with_its_traceback_and_the_policys_note(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="provisiond.api.edge"):
        _POLICY.answer(_request(), RuntimeError("a bug"))
    [record] = caplog.records
    assert record.getMessage() == "unexpected failure in PUT /x (note)"
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


def test_a_domain_error_answered_500_is_logged_and_a_store_outage_is_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A domain error the dialect's table does not know (here: a sealed key that no longer opens)
    is answered 500 and logged with its traceback; an unavailable store is expected: one line."""
    policy = ErrorPolicy(
        error=_Failure,
        render=lambda err: Response(err.what, status_code=err.status),
        translate=lambda exc: _Failure(503 if isinstance(exc, StoreUnavailable) else 500, "internal"),
        too_large=lambda exc: _Failure(413, ""),
        malformed=lambda exc: _Failure(400, ""),
        internal=lambda: _Failure(500, "internal"),
        unrouted=lambda status: _Failure(status, ""),
    )
    with caplog.at_level(logging.WARNING, logger="provisiond.api.edge"):
        assert policy.answer(_request(), SecretUnreadable("no key 'k1'")).status_code == 500
        assert policy.answer(_request(), StoreUnavailable("database unavailable")).status_code == 503
    unreadable, outage = caplog.records
    assert unreadable.levelno == logging.ERROR and isinstance(unreadable.exc_info[1], SecretUnreadable)  # type: ignore[index]
    assert outage.levelno == logging.WARNING and outage.exc_info is None


def test_every_route_of_a_dialect_answers_failures_with_that_dialects_policy() -> None:
    for dialect in DIALECTS:
        routes = [
            route for router in dialect.routers for route in router.routes if isinstance(route, APIRoute)
        ]
        assert routes, dialect.name
        assert all(type(route) is dialect.policy.route_class for route in routes), dialect.name


@pytest.mark.parametrize(
    ("path", "owner"),
    [
        ("/v1/registrations/x", zerotouch.DIALECT),  # the device pattern matches too: the prefix wins
        ("/reseller/registrations", reseller.DIALECT),
        ("/v2/tenants/t/registrations", sphere.DIALECT),
        ("/0ne00000001/registrations/dev/nope", dps_device.DIALECT),
        ("/v2/registrations/dev", dps_device.DIALECT),
        ("/enrollmentGroups/g/x/y", dps_service.DIALECT),
        ("/registrations/x/y/z", dps_service.DIALECT),
    ],
)
def test_an_unknown_path_is_answered_by_the_dialect_that_owns_it(path: str, owner: object) -> None:
    assert owner_of(DIALECTS, path) is owner


def test_a_path_no_dialect_owns_has_no_owner() -> None:
    assert owner_of(DIALECTS, "/nothing/here") is None


_SEGMENTS = "enrollments ENROLLMENTGROUPS Registrations query QUERY attestationMechanism register Operations"
_SEGMENT = st.sampled_from([*_SEGMENTS.split(), "0ne00000001", "dev-1", ""])


def _canonical(path: str, forms: tuple[Callable[[str], str | None], ...]) -> str:
    for form in forms:
        canonical = form(path)
        if canonical is not None:
            path = canonical
    return path


@given(st.lists(_SEGMENT, min_size=1, max_size=6), st.sampled_from(["/", "//"]), st.sampled_from(["", "/"]))
def test_the_dps_canonical_forms_do_not_depend_on_their_order(
    segments: list[str], lead: str, trail: str
) -> None:
    path = lead + "/".join(segments) + trail
    device_first = _canonical(path, (device_canonical, service_canonical))
    assert device_first == _canonical(path, (service_canonical, device_canonical))
