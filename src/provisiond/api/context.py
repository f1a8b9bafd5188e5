"""The composition root the routes reach through ``request.app.state``: settings and services."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from provisiond.config import Settings
from provisiond.domain.clock import Clock
from provisiond.services.enrollments import EnrollmentService
from provisiond.services.instance import InstanceService
from provisiond.services.registrations import RegistrationStateService
from provisiond.store.db import Database

__all__ = ["AppContext", "context"]


@dataclass(frozen=True, slots=True)
class AppContext:
    settings: Settings
    db: Database
    clock: Clock
    instance: InstanceService
    enrollments: EnrollmentService
    registration_states: RegistrationStateService

    @classmethod
    def build(cls, settings: Settings, db: Database, clock: Clock) -> AppContext:
        return cls(
            settings=settings,
            db=db,
            clock=clock,
            instance=InstanceService(db, clock),
            enrollments=EnrollmentService(db, clock),
            registration_states=RegistrationStateService(db),
        )


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx
