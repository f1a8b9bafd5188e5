"""The audit trail's vocabulary: who acted, from where, on what, with which outcome.

An entry is written by the service that makes a change, in the change's own transaction, so the
trail can never say something happened that did not (or miss something that did). The values
here are plain data: the dialects and the CLI say who is acting and from where
(``services/audit.py`` carries it to the services), the store keeps the entries.

Entries never hold a key, token or password: ``details`` is a flat mapping of scalars whose
names are checked against ``SECRET_WORDS`` when the entry is made, so a careless
``details={"primaryKey": …}`` fails in the first test that reaches it instead of leaking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

__all__ = [
    "ACTIONS",
    "SECRET_WORDS",
    "SYSTEM",
    "Actor",
    "ActorKind",
    "AuditContext",
    "AuditEntry",
    "AuditFilter",
    "Detail",
    "Outcome",
    "Transport",
]

Detail = str | int | bool | None


class ActorKind(StrEnum):
    OPERATOR = "operator"  # a CLI command; the id is the OS user
    POLICY = "policy"  # the DPS service API; the id is the shared access policy's name
    PARTNER = "partner"  # zero-touch and the reseller model; the partner id
    TENANT = "tenant"  # Azure Sphere; the tenant id
    DEVICE = "device"  # a device registering; its registration id
    SYSTEM = "system"  # provisiond itself: the worker, retention, start-up


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    id: str

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> Actor:
        """``kind:id`` as stored; an unknown kind is kept as the system's (old rows stay readable)."""
        kind, _, ident = text.partition(":")
        try:
            return cls(ActorKind(kind), ident)
        except ValueError:
            return cls(ActorKind.SYSTEM, text)


SYSTEM = Actor(ActorKind.SYSTEM, "provisiond")


class Transport(StrEnum):
    HTTPS = "https"
    MQTT = "mqtt"
    WEBSOCKET = "websocket"
    CLI = "cli"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"  # a bulk item or an import row refused while the others were written
    # device registrations: the result the device is given
    ASSIGNED = "assigned"
    DISABLED = "disabled"
    FAILED = "failed"
    ASSIGNING = "assigning"  # handed to a custom-allocation webhook; its decision is a second entry
    # durable operations
    SUBMITTED = "submitted"
    COMPLETE = "complete"
    COMPLETE_WITH_ERRORS = "completeWithErrors"


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who is acting and where the request came from, set once at the edge of each request.

    ``request_id`` is made at the edge (and sent back as ``x-request-id`` over HTTPS) so an
    operator can match a client's call with its entries; ``source`` is the client's address.
    """

    actor: Actor = SYSTEM
    request_id: str | None = None
    source: str | None = None
    transport: Transport | None = None


# How no detail's name ends: the values under such names are credentials (``keyType`` is fine,
# ``primaryKey`` is not).
SECRET_WORDS = ("key", "keys", "token", "password", "secret", "signature", "sas")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded action. ``seq`` is the store's order (``None`` until written)."""

    time: datetime
    actor: Actor
    action: str
    target: str
    outcome: Outcome | str
    request_id: str | None = None
    source: str | None = None
    details: Mapping[str, Detail] = field(default_factory=dict)
    seq: int | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown audit action {self.action!r}: add it to domain/audit.ACTIONS")
        for name, value in self.details.items():
            lowered = name.lower()
            if any(lowered.endswith(word) for word in SECRET_WORDS):
                raise ValueError(f"audit detail {name!r} looks like a credential; entries hold none")
            if not isinstance(value, str | int | bool) and value is not None:
                raise ValueError(f"audit detail {name!r} must be a scalar, not {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What ``audit list`` selects: every field is optional; ``actor`` matches ``kind:id`` or
    just ``kind``, ``action`` a whole action or its resource prefix (``enrollment``)."""

    since: datetime | None = None
    actor: str | None = None
    action: str | None = None
    target: str | None = None


# Every action the trail records, by what it is done to. docs/audit.md lists the same table and
# tests/api/test_audit_trail.py has a row per action.
ACTIONS: frozenset[str] = frozenset(
    {
        # DPS: enrollments (individual) and enrollment groups, registration states, devices
        "enrollment.create",
        "enrollment.update",
        "enrollment.delete",
        "enrollment.enable",
        "enrollment.disable",
        "enrollmentGroup.create",
        "enrollmentGroup.update",
        "enrollmentGroup.delete",
        "enrollmentGroup.enable",
        "enrollmentGroup.disable",
        "registrationState.delete",
        "device.register",
        # the instance: init, policies, hubs, regions, allocation, CAs, secrets
        "instance.create",
        "policy.create",
        "policy.delete",
        "hub.add",
        "hub.remove",
        "hub.connector",
        "region.add",
        "region.remove",
        "allocation.set",
        "ca.add",
        "ca.remove",
        "secrets.rotate",
        "registration.deprovision",
        # certificate issuance: services/credential_policies.py
        "credentialPolicy.create",
        "credentialPolicy.delete",
        "certificate.revoke",
        # claims: partners, customers, synchronous claims, durable operations
        "partner.create",
        "partner.rotateToken",
        "customer.create",
        "device.claim",
        "device.unclaim",
        "device.updateMetadata",
        "operation.submit",
        "operation.complete",
        # Sphere
        "tenant.create",
        "tenant.rotateToken",
        "tenant.release",
        # event webhook subscriptions: services/events.py
        "events.subscribe",
        "events.remove",
        # the audit trail itself
        "audit.prune",
    }
)
