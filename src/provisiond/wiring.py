"""The composition root: the one place that builds the services and adapters from settings.

Dialects read what is built here through ``api.context.AppContext``, which holds services and
never the ``Database``: a route can only reach the store through a use case. Only the server,
the CLI and tests import this module; ``api.app.create_app`` takes what it built.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from provisiond.adapters.allocation_webhook import HttpWebhookAllocator
from provisiond.adapters.event_webhook import HttpEventDelivery, webhook_ssl_context
from provisiond.adapters.hub_connectors import connector_for
from provisiond.api.context import AppContext
from provisiond.api.dps_service.mapping import enrollment_out
from provisiond.config import Settings
from provisiond.domain.clock import Clock, utc_now
from provisiond.services.audit import Retention
from provisiond.services.claims import ClaimsService
from provisiond.services.credential_policies import CredentialPolicyService
from provisiond.services.custom_allocation import CustomAllocations, CustomAllocator
from provisiond.services.enrollments import EnrollmentService, WebhookRules
from provisiond.services.events import Dispatcher, EventService
from provisiond.services.hub_connections import HubConnections
from provisiond.services.hub_sync import ConnectorFactory, HubSync
from provisiond.services.hubs import HubService
from provisiond.services.instance import InstanceService
from provisiond.services.issuance import CertificateIssuer
from provisiond.services.metrics import MetricsSampler
from provisiond.services.registration import RegistrationService, RegistrationSettings
from provisiond.services.registration_states import RegistrationStateService
from provisiond.services.secrets import open_database
from provisiond.services.sphere import SphereService
from provisiond.services.worker import OperationWorker
from provisiond.store.db import Database

__all__ = ["build_services", "event_service", "hub_connections", "operation_worker", "running"]


def operation_worker(settings: Settings, db: Database, clock: Clock = utc_now) -> OperationWorker:
    """The operation worker as settings configure it (the server's in-process one, and the
    ``provisiond worker`` process alike); its housekeeping re-signs CRLs, checked ten times per
    half window (at most every minute), so none is re-signed late, and prunes the audit trail."""
    crls = CredentialPolicyService(db, clock, settings.crl_period)
    days = settings.audit_retention_days
    return OperationWorker(
        db,
        clock,
        batch_size=settings.worker_batch_size,
        lease_seconds=settings.worker_lease_seconds,
        housekeeping=crls.refresh_due,
        housekeeping_seconds=min(60.0, settings.crl_period.total_seconds() / 20),
        retention=Retention(db, days, clock) if days is not None else None,
    )


def hub_connections(
    settings: Settings, db: Database, clock: Clock = utc_now, connectors: ConnectorFactory = connector_for
) -> HubConnections:
    """The operator's hub connector commands (``dps hub add --connector``, ``hub test``,
    ``deprovision``) with the connectors this build has."""
    return HubConnections(db, connectors, clock, settings.crl_period)


def event_service(settings: Settings, db: Database) -> EventService:
    """Event subscriptions (the CLI), under the same URL allow-list as allocation webhooks."""
    return EventService(db, WebhookRules(tuple(settings.webhook_allowlist), settings.webhook_allow_http))


def build_services(
    settings: Settings,
    db: Database,
    clock: Clock,
    allocator: CustomAllocator,
    connectors: ConnectorFactory = connector_for,
) -> AppContext:
    """Every service the dialects use, on one database, clock, custom-allocation adapter and
    hub connector factory."""
    worker = operation_worker(settings, db, clock)
    rules = WebhookRules(tuple(settings.webhook_allowlist), settings.webhook_allow_http)
    issuer = CertificateIssuer(settings.crl_period)
    hub_sync = HubSync(db, connectors, settings.hub_retry_seconds, clock)
    custom_allocations = CustomAllocations(
        db, allocator, rules, settings.webhook_timeout, clock, issuer, hub_sync=hub_sync
    )
    registration_settings = RegistrationSettings(retry_after=settings.registration_retry_after)
    return AppContext(
        settings=settings,
        clock=clock,
        instance=InstanceService(db, clock),
        enrollments=EnrollmentService(db, clock, rules),
        registration_states=RegistrationStateService(db),
        hubs=HubService(db),
        registrations=RegistrationService(db, custom_allocations, registration_settings, clock, issuer),
        credential_policies=CredentialPolicyService(db, clock, settings.crl_period),
        custom_allocations=custom_allocations,
        claims=ClaimsService(db, clock, wake=worker.wake),
        sphere=SphereService(db, clock, wake=worker.wake),
        worker=worker,
        metrics=MetricsSampler(db),
    )


@asynccontextmanager
async def running(
    settings: Settings, *, clock: Clock = utc_now, db: Database | None = None
) -> AsyncIterator[AppContext]:
    """The services of one server process, for as long as it serves (the app's lifespan).

    Opens the database unless one is given (tests hand theirs in and close it themselves),
    restarts the custom allocations a previous process left pending, and runs the in-process
    operation worker when the settings ask for it; on exit stops all of it.
    """
    database = db or await open_database(settings, migrate_schema=False)
    trust = webhook_ssl_context(settings.webhook_ca_file)
    client = httpx.AsyncClient(follow_redirects=False, verify=trust)
    allocator = HttpWebhookAllocator(enrollment_out, client)  # shown the service API's JSON
    ctx = build_services(settings, database, clock, allocator)
    await ctx.custom_allocations.resume_pending()
    loop = asyncio.get_running_loop()
    worker = loop.create_task(ctx.worker.run()) if settings.in_process_worker else None
    # Events: the lease outlives one delivery's timeout, so only a dead process loses its rows.
    delivery = HttpEventDelivery(settings.webhook_timeout, settings.webhook_ca_file)
    dispatcher = loop.create_task(
        Dispatcher(
            database,
            delivery,
            clock,
            lease_seconds=2 * settings.webhook_timeout + 5,
            webhooks=WebhookRules(tuple(settings.webhook_allowlist), settings.webhook_allow_http),
        ).run()
    )
    try:
        yield ctx
    finally:
        for task in (worker, dispatcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await delivery.aclose()
        ctx.custom_allocations.cancel()
        await ctx.custom_allocations.drain()  # the cancelled calls end before their client closes
        await allocator.aclose()
        if db is None:
            await database.dispose()
