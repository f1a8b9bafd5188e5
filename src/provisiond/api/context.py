"""What every dialect reads through ``request.app.state``: the services, never the Database.

``wiring.py`` builds it; a route reaches the store only through a use case. Settings and the
clock ride along because the DPS service API checks a token's lifetime and resource with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from provisiond.config import Settings
from provisiond.domain.clock import Clock
from provisiond.services.claims import ClaimsService
from provisiond.services.credential_policies import CredentialPolicyService
from provisiond.services.custom_allocation import CustomAllocations
from provisiond.services.enrollments import EnrollmentService
from provisiond.services.hubs import HubService
from provisiond.services.instance import InstanceService
from provisiond.services.metrics import MetricsSampler
from provisiond.services.registration import RegistrationService
from provisiond.services.registration_states import RegistrationStateService
from provisiond.services.sphere import SphereService
from provisiond.services.worker import OperationWorker

__all__ = ["AppContext", "context"]


@dataclass(frozen=True, slots=True)
class AppContext:
    """The services one application runs with (built by ``wiring.build_services``)."""

    settings: Settings
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
    credential_policies: CredentialPolicyService
    metrics: MetricsSampler


def context(request: Request) -> AppContext:
    """The services of the application serving ``request``."""
    ctx: AppContext = request.app.state.ctx
    return ctx
