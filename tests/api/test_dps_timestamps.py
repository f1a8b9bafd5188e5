"""DPS timestamps: ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC for every datetime, fraction always there.

The fast path formats through msgspec, which leaves out a zero fraction; the reference here is
the slow, obvious isoformat of the UTC value.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from provisiond.api.dps_wire import timestamp


def reference(value: datetime) -> str:
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
        ),
    )
)
def test_aware_datetimes_are_written_in_utc_with_six_fraction_digits(value: datetime) -> None:
    assert timestamp(value) == reference(value)


def test_examples() -> None:
    assert timestamp(datetime(2024, 1, 1, tzinfo=UTC)) == "2024-01-01T00:00:00.000000Z"
    assert timestamp(datetime(2024, 1, 1, 0, 0, 0, 120000, tzinfo=UTC)) == "2024-01-01T00:00:00.120000Z"
    assert (
        timestamp(datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))))
        == "2024-01-01T00:00:00.000000Z"
    )
    assert timestamp(datetime(2024, 1, 1)) == "2024-01-01T00:00:00.000000Z"  # naive values are UTC
    assert timestamp(None) is None
