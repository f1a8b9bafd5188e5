"""Every way a registration can fail has one DPS errorCode, the same in both DPS dialects."""

from __future__ import annotations

from provisiond.api.dps_wire import registration_error_code
from provisiond.domain.registrations import RegistrationFailure


def test_each_failure_kind_shows_its_documented_error_code() -> None:
    """The codes of docs/errors.md, "Codes inside a failed registration"."""
    assert {kind: registration_error_code(kind) for kind in RegistrationFailure} == {
        RegistrationFailure.DISABLED: 401006,
        RegistrationFailure.NO_HUB: 400206,
        RegistrationFailure.CUSTOM_FAILED: 400207,
        RegistrationFailure.CUSTOM_NO_HUB: 400208,
        RegistrationFailure.CUSTOM_UNAUTHORIZED: 400209,
        RegistrationFailure.HUB_FAILED: 400209,
    }


def test_a_state_that_did_not_fail_shows_no_error_code() -> None:
    assert registration_error_code(None) is None
