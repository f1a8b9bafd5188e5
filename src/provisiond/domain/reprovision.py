"""What a re-registration does, by the enrollment's reprovision policy.

The table, with its reasons, is in ``docs/reprovisioning.md``; in short (before -> result):

- never assigned -> the chosen hub, ``initialAssignment``, the initial twin applies;
- assigned to H, ``updateHubAssignment`` false, or the chosen hub is H -> stays on H,
  ``reprovisionedToInitialAssignment``, the hub keeps its data;
- assigned to H, another hub chosen, ``migrateDeviceData`` true -> the chosen hub,
  ``deviceDataMigrated``, the data moves with the device;
- assigned to H, another hub chosen, ``migrateDeviceData`` false -> the chosen hub,
  ``deviceDataReset``, the initial twin applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Reprovision", "Substatus", "reprovision"]


class Substatus(StrEnum):
    INITIAL_ASSIGNMENT = "initialAssignment"
    DEVICE_DATA_MIGRATED = "deviceDataMigrated"
    DEVICE_DATA_RESET = "deviceDataReset"
    REPROVISIONED_TO_INITIAL_ASSIGNMENT = "reprovisionedToInitialAssignment"


@dataclass(frozen=True, slots=True)
class Reprovision:
    hub: str
    substatus: Substatus
    initial_twin_applies: bool


def reprovision(
    current_hub: str | None, chosen_hub: str, *, update_hub_assignment: bool, migrate_device_data: bool
) -> Reprovision:
    """One row of the table above."""
    if current_hub is None:
        return Reprovision(chosen_hub, Substatus.INITIAL_ASSIGNMENT, True)
    if not update_hub_assignment or chosen_hub.lower() == current_hub.lower():
        return Reprovision(current_hub, Substatus.REPROVISIONED_TO_INITIAL_ASSIGNMENT, False)
    if migrate_device_data:
        return Reprovision(chosen_hub, Substatus.DEVICE_DATA_MIGRATED, False)
    return Reprovision(chosen_hub, Substatus.DEVICE_DATA_RESET, True)
