"""The composition root the routes reach through ``request.app.state``: settings and services."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from provisiond.config import Settings
from provisiond.domain.clock import Clock
from provisiond.services.claims import ClaimsService
from provisiond.services.custom_allocation import CustomAllocations, CustomAllocator
from provisiond.services.enrollments import EnrollmentService, WebhookRules
from provisiond.services.hubs import HubService
from provisiond.services.instance import InstanceService
from provisiond.services.registration import RegistrationService, RegistrationSettings
from provisiond.services.registration_states import RegistrationStateService
from provisiond.services.sphere import SphereService
from provisiond.services.worker import CrashPoint, OperationWorker
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
    hubs: HubService
    registrations: RegistrationService
    custom_allocations: CustomAllocations
    claims: ClaimsService
    sphere: SphereService
    worker: OperationWorker

    @classmethod
    def build(cls, settings: Settings, db: Database, clock: Clock, allocator: CustomAllocator) -> AppContext:
        worker = OperationWorker(
            db,
            clock,
            batch_size=settings.worker_batch_size,
            lease_seconds=settings.worker_lease_seconds,
            crash=CrashPoint.parse(settings.test_crash_point),
        )
        rules = WebhookRules(tuple(settings.webhook_allowlist), settings.webhook_allow_http)
        custom_allocations = CustomAllocations(db, allocator, rules, settings.webhook_timeout, clock)
        registration_settings = RegistrationSettings(retry_after=settings.registration_retry_after)
        return cls(
            settings=settings,
            db=db,
            clock=clock,
            instance=InstanceService(db, clock),
            enrollments=EnrollmentService(db, clock, rules),
            registration_states=RegistrationStateService(db),
            hubs=HubService(db),
            registrations=RegistrationService(db, custom_allocations, registration_settings, clock),
            custom_allocations=custom_allocations,
            claims=ClaimsService(db, clock, wake=worker.wake),
            sphere=SphereService(db, clock, wake=worker.wake),
            worker=worker,
        )


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx
