"""Every row of the reprovisioning table (docs/reprovisioning.md)."""

from __future__ import annotations

import pytest

from provisiond.domain.reprovision import Substatus, reprovision


@pytest.mark.parametrize(
    ("current", "chosen", "update", "migrate", "hub", "substatus", "twin"),
    [
        (None, "a", True, True, "a", Substatus.INITIAL_ASSIGNMENT, True),
        (None, "a", False, False, "a", Substatus.INITIAL_ASSIGNMENT, True),
        ("a", "b", False, True, "a", Substatus.REPROVISIONED_TO_INITIAL_ASSIGNMENT, False),
        ("a", "b", False, False, "a", Substatus.REPROVISIONED_TO_INITIAL_ASSIGNMENT, False),
        ("a", "A", True, True, "a", Substatus.REPROVISIONED_TO_INITIAL_ASSIGNMENT, False),
        ("a", "a", True, False, "a", Substatus.REPROVISIONED_TO_INITIAL_ASSIGNMENT, False),
        ("a", "b", True, True, "b", Substatus.DEVICE_DATA_MIGRATED, False),
        ("a", "b", True, False, "b", Substatus.DEVICE_DATA_RESET, True),
    ],
)
def test_reprovision_table_row(
    current: str | None, chosen: str, update: bool, migrate: bool, hub: str, substatus: Substatus, twin: bool
) -> None:
    outcome = reprovision(current, chosen, update_hub_assignment=update, migrate_device_data=migrate)
    assert (outcome.hub, outcome.substatus, outcome.initial_twin_applies) == (hub, substatus, twin)
