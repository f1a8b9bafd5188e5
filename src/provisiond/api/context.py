"""The composition root the routes reach through ``request.app.state``: settings and services."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from provisiond.config import Settings
from provisiond.domain.clock import Clock
from provisiond.services.claims import ClaimsService
from provisiond.services.enrollments import EnrollmentService, WebhookRules
from provisiond.services.hubs import HubService
from provisiond.services.instance import InstanceService
from provisiond.services.registration import CustomAllocator, RegistrationService, RegistrationSettings
from provisiond.services.registrations import RegistrationStateService
from provisiond.services.sphere import SphereService
from provisiond.services.worker import OperationWorker
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
        )
        rules = WebhookRules(tuple(settings.webhook_allowlist), settings.webhook_allow_http)
        registration_settings = RegistrationSettings(
            retry_after=settings.registration_retry_after,
            webhook_timeout=settings.webhook_timeout,
            webhook_allowlist=rules.allowlist,
            webhook_allow_http=rules.allow_http,
        )
        return cls(
            settings=settings,
            db=db,
            clock=clock,
            instance=InstanceService(db, clock),
            enrollments=EnrollmentService(db, clock, rules),
            registration_states=RegistrationStateService(db),
            hubs=HubService(db),
            registrations=RegistrationService(db, allocator, registration_settings, clock),
            claims=ClaimsService(db, clock, wake=worker.wake),
            sphere=SphereService(db, clock, wake=worker.wake),
            worker=worker,
        )


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx
