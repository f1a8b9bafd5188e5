"""The audit trail records every action, by whom, from where, with its outcome, and no secret.

One row per action: the row does the action the way its actor does (a DPS service API call
signed by a policy, a partner's or tenant's bearer call, a device registering over HTTPS, an
operator's CLI command through the same service the CLI calls, under the CLI's audit context),
then the newest entry of that action must name the right actor, target, outcome, request id and
source address. Every row runs on SQLite and PostgreSQL (the ``db`` fixture). The last test runs
every row in one database and scans all the entries they produced for every secret used.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisiond import wiring
from provisiond.cli.common import operator_context
from provisiond.domain.audit import ACTIONS, AuditEntry, AuditFilter
from provisiond.domain.policies import Right
from provisiond.domain.sas import derive_device_key
from provisiond.services import audit
from provisiond.services.audit import AuditService, Retention
from provisiond.services.cas import CaService
from provisiond.services.enrollments import WebhookRules
from provisiond.services.events import EventService
from provisiond.services.secrets import rotate
from provisiond.store.db import Database
from tests.api.conftest import DpsApi, running_app
from tests.api.dps_device.conftest import KEY, KEY2, Device
from tests.api.zerotouch.conftest import SECTION, ident
from tests.support.clock import FakeClock
from tests.support.iothub_double import serve_iothub
from tests.support.issuance import make_csr
from tests.support.pki import issue
from tests.support.webhook import serve_webhook

CLIENT = "10.1.2.3"  # the address running_app's client calls from
HUB = "hub-a.azure-devices.net"

# Issue 17's actions: its services are not on this branch yet; their rows come with the merge.


@dataclass
class Env:
    api: DpsApi
    tmp: Path
    secrets: list[str] = field(default_factory=list)
    partner: tuple[str, str] | None = None
    devices: int = 0

    def ident(self) -> dict[str, str]:
        """A device identifier no earlier row used (rows share a database in the secret scan)."""
        self.devices += 1
        return ident(self.devices)

    @property
    def ctx(self) -> Any:
        return self.api.ctx

    async def dps(self, method: str, path: str, body: Any = None, status: int = 200) -> httpx.Response:
        token = self.api.token()
        self.secrets.append(token)
        r = await self.api.call(method, path, json=body, auth=token)
        assert r.status_code == status, r.text
        return r

    async def zt(self, method: str, path: str, body: Any = None) -> httpx.Response:
        if self.partner is None:
            p, token = await self.ctx.claims.create_partner("Reseller")
            self.partner = (str(p.id), token)
            self.secrets.append(token)
        pid, token = self.partner
        url = f"/v1/partners/{pid}/{path}"
        r = await self.api.http.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        return r

    async def work(self) -> None:
        while await self.ctx.worker.run_once():
            pass


def individual(rid: str, **fields: Any) -> dict[str, Any]:
    return {
        "registrationId": rid,
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY2}},
        **fields,
    }


def group(gid: str, **fields: Any) -> dict[str, Any]:
    return {
        "enrollmentGroupId": gid,
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY, "secondaryKey": KEY2}},
        **fields,
    }


def by_policy(r: httpx.Response) -> dict[str, Any]:
    """What an entry made by a service API call with the owner policy carries."""
    return {
        "actor": "policy:provisioningserviceowner",
        "request_id": r.headers["x-request-id"],
        "source": CLIENT,
    }


def by_operator() -> dict[str, Any]:
    return {"actor": str(audit.current().actor), "source": None}


# -- the rows: each does its action and says what the newest entry of it must hold ----------------


async def enrollment_create(env: Env) -> dict[str, Any]:
    r = await env.dps("PUT", "/enrollments/dev-1", individual("dev-1"))
    return {
        **by_policy(r),
        "target": "dev-1",
        "outcome": "success",
        "details": {"attestation": "symmetricKey", "transport": "https"},
    }


async def enrollment_update(env: Env) -> dict[str, Any]:
    await env.dps("PUT", "/enrollments/dev-1", individual("dev-1"))
    r = await env.dps("PUT", "/enrollments/dev-1", individual("dev-1", deviceId="renamed"))
    return {**by_policy(r), "target": "dev-1", "details": {"provisioningStatus": "enabled"}}


async def enrollment_disable(env: Env) -> dict[str, Any]:
    await env.dps("PUT", "/enrollments/dev-1", individual("dev-1"))
    r = await env.dps("PUT", "/enrollments/dev-1", individual("dev-1", provisioningStatus="disabled"))
    return {**by_policy(r), "target": "dev-1", "details": {"provisioningStatus": "disabled"}}


async def enrollment_enable(env: Env) -> dict[str, Any]:
    await env.dps("PUT", "/enrollments/dev-1", individual("dev-1", provisioningStatus="disabled"))
    r = await env.dps("PUT", "/enrollments/dev-1", individual("dev-1", provisioningStatus="enabled"))
    return {**by_policy(r), "target": "dev-1", "details": {"provisioningStatus": "enabled"}}


async def enrollment_delete(env: Env) -> dict[str, Any]:
    await env.dps("PUT", "/enrollments/dev-1", individual("dev-1"))
    r = await env.dps("DELETE", "/enrollments/dev-1", status=204)
    return {**by_policy(r), "target": "dev-1", "outcome": "success"}


async def enrollment_bulk(env: Env) -> dict[str, Any]:
    """A bulk create: each item is an entry; a refused item is one too, outcome ``failure``."""
    await env.dps("PUT", "/enrollments/taken", individual("taken"))
    body = {"mode": "create", "enrollments": [individual("taken"), individual("bulk-1")]}
    r = await env.dps("POST", "/enrollments", body)
    [refused] = await entries(env, action="enrollment.create", target="taken", limit=1)
    assert refused.outcome == "failure" and refused.details["bulk"] == "create", refused
    return {**by_policy(r), "target": "bulk-1", "outcome": "success", "details": {"bulk": "create"}}


async def group_create(env: Env) -> dict[str, Any]:
    r = await env.dps("PUT", "/enrollmentGroups/g-1", group("g-1"))
    return {**by_policy(r), "target": "g-1", "outcome": "success"}


async def group_update(env: Env) -> dict[str, Any]:
    await env.dps("PUT", "/enrollmentGroups/g-1", group("g-1"))
    r = await env.dps("PUT", "/enrollmentGroups/g-1", group("g-1", iotHubs=[HUB]))
    return {**by_policy(r), "target": "g-1"}


async def group_disable(env: Env) -> dict[str, Any]:
    await env.dps("PUT", "/enrollmentGroups/g-1", group("g-1"))
    r = await env.dps("PUT", "/enrollmentGroups/g-1", group("g-1", provisioningStatus="disabled"))
    return {**by_policy(r), "target": "g-1", "details": {"provisioningStatus": "disabled"}}


async def group_enable(env: Env) -> dict[str, Any]:
    await env.dps("PUT", "/enrollmentGroups/g-1", group("g-1", provisioningStatus="disabled"))
    r = await env.dps("PUT", "/enrollmentGroups/g-1", group("g-1"))
    return {**by_policy(r), "target": "g-1", "details": {"provisioningStatus": "enabled"}}


async def group_delete(env: Env) -> dict[str, Any]:
    await env.dps("PUT", "/enrollmentGroups/g-1", group("g-1"))
    r = await env.dps("DELETE", "/enrollmentGroups/g-1", status=204)
    return {**by_policy(r), "target": "g-1"}


async def register(env: Env, rid: str, **fields: Any) -> httpx.Response:
    await env.dps("PUT", f"/enrollments/{rid}", individual(rid, **fields))
    device = Device(env.api, rid, KEY)
    token = device.token()
    env.secrets.append(token)
    r = await device.register(token=token)
    assert r.status_code == 202, r.text
    return r


async def device_register(env: Env) -> dict[str, Any]:
    r = await register(env, "dev-r")
    return {
        "actor": "device:dev-r",
        "target": "dev-r",
        "outcome": "assigned",
        "request_id": r.headers["x-request-id"],
        "source": CLIENT,
        "details": {"hub": HUB, "attestation": "symmetricKey", "transport": "https"},
    }


async def device_register_disabled(env: Env) -> dict[str, Any]:
    await register(env, "dev-off", provisioningStatus="disabled")
    return {"actor": "device:dev-off", "target": "dev-off", "outcome": "disabled", "details": {"hub": None}}


async def device_register_failed(env: Env) -> dict[str, Any]:
    await env.ctx.hubs.remove(HUB)  # nothing left to assign
    await register(env, "dev-nohub")
    return {"target": "dev-nohub", "outcome": "failed", "source": CLIENT}


async def device_register_custom(env: Env) -> dict[str, Any]:
    """A webhook decides later: ``assigning`` first, then the decision, both with the request's id."""
    with serve_webhook() as hook:
        hook.answer(200, {"iotHubHostName": HUB})
        custom = {"webhookUrl": hook.url, "apiVersion": "2021-10-01"}
        r = await register(env, "dev-c", allocationPolicy="custom", customAllocationDefinition=custom)
        await env.ctx.custom_allocations.drain()
    _decided, started = await entries(env, action="device.register", target="dev-c")
    assert (started.outcome, started.request_id) == ("assigning", r.headers["x-request-id"])
    return {
        "actor": "device:dev-c",
        "target": "dev-c",
        "outcome": "assigned",
        "request_id": r.headers["x-request-id"],
        "source": CLIENT,
        "details": {"hub": HUB, "transport": "https"},
    }


async def registration_state_delete(env: Env) -> dict[str, Any]:
    await register(env, "dev-s")
    r = await env.dps("DELETE", "/registrations/dev-s", status=204)
    return {**by_policy(r), "target": "dev-s"}


async def instance_create(env: Env) -> dict[str, Any]:
    return {"target": env.api.init.id_scope, "details": {"serviceHost": "localhost"}}


async def policy_create(env: Env) -> dict[str, Any]:
    policy = await env.ctx.instance.create_policy("reader", frozenset({Right.ENROLLMENT_READ}))
    env.secrets += [policy.primary_key, policy.secondary_key]
    return {**by_operator(), "target": "reader", "details": {"transport": "cli"}}


async def policy_delete(env: Env) -> dict[str, Any]:
    policy = await env.ctx.instance.create_policy("reader", frozenset({Right.ENROLLMENT_READ}))
    env.secrets += [policy.primary_key, policy.secondary_key]
    await env.ctx.instance.delete_policy("reader")
    return {**by_operator(), "target": "reader"}


async def hub_add(env: Env) -> dict[str, Any]:
    await env.ctx.hubs.add("hub-b.azure-devices.net", 5, "west")
    return {**by_operator(), "target": "hub-b.azure-devices.net", "details": {"weight": 5, "region": "west"}}


async def hub_remove(env: Env) -> dict[str, Any]:
    await env.ctx.hubs.remove(HUB)
    return {**by_operator(), "target": HUB}


async def region_add(env: Env) -> dict[str, Any]:
    await env.ctx.hubs.add_region("10.0.0.0/8", "west")
    return {**by_operator(), "target": "10.0.0.0/8", "details": {"region": "west"}}


async def region_remove(env: Env) -> dict[str, Any]:
    await env.ctx.hubs.add_region("10.0.0.0/8", "west")
    await env.ctx.hubs.remove_region("10.0.0.0/8")
    return {**by_operator(), "target": "10.0.0.0/8"}


async def allocation_set(env: Env) -> dict[str, Any]:
    await env.ctx.hubs.set_allocation("static")
    return {**by_operator(), "target": "static"}


async def ca_add(env: Env) -> dict[str, Any]:
    await CaService(env.api.db).add("root", issue("Audit Root", ca=True).pem)
    return {**by_operator(), "target": "root"}


async def ca_remove(env: Env) -> dict[str, Any]:
    await CaService(env.api.db).add("root", issue("Audit Root", ca=True).pem)
    await CaService(env.api.db).remove("root")
    return {**by_operator(), "target": "root"}


async def secrets_rotate(env: Env) -> dict[str, Any]:
    result = await rotate(env.api.db, grace=0)
    return {**by_operator(), "target": result.key_id, "details": {"resealed": result.resealed}}


async def events_subscribe(env: Env) -> dict[str, Any]:
    service = EventService(env.api.db, WebhookRules())
    ident, secret = await service.subscribe("https://hooks.example/p?code=k1", ("io.provisiond.dps.*",), None)
    assert secret is not None
    env.secrets += [secret, "k1"]
    details = {"url": "https://hooks.example/p?****", "types": "io.provisiond.dps.*"}
    return {**by_operator(), "target": ident, "details": details}


async def events_remove(env: Env) -> dict[str, Any]:
    service = EventService(env.api.db, WebhookRules())
    ident, secret = await service.subscribe("https://hooks.example/p", (), None)
    env.secrets.append(str(secret))
    await service.remove(ident)
    return {**by_operator(), "target": ident}


async def partner_create(env: Env) -> dict[str, Any]:
    partner, token = await env.ctx.claims.create_partner("Reseller B")
    env.secrets.append(token)
    return {**by_operator(), "target": str(partner.id), "details": {"name": "Reseller B"}}


async def partner_rotate(env: Env) -> dict[str, Any]:
    partner, token = await env.ctx.claims.create_partner("Reseller B")
    env.secrets += [token, await env.ctx.claims.rotate_token(partner.id)]
    return {**by_operator(), "target": str(partner.id)}


async def customer(env: Env) -> str:
    r = await env.zt(
        "POST", "customers", {"customer": {"companyName": "Acme", "ownerEmails": ["o@acme.example"]}}
    )
    return str(r.json()["companyId"])


def by_partner(env: Env, r: httpx.Response) -> dict[str, Any]:
    assert env.partner is not None
    return {"actor": f"partner:{env.partner[0]}", "request_id": r.headers["x-request-id"], "source": CLIENT}


async def customer_create(env: Env) -> dict[str, Any]:
    company = await customer(env)
    assert env.partner is not None
    return {"actor": f"partner:{env.partner[0]}", "target": company, "source": CLIENT}


async def device_claim(env: Env) -> dict[str, Any]:
    company = await customer(env)
    body = {"customerId": company, "sectionType": SECTION, "deviceIdentifier": env.ident()}
    r = await env.zt("POST", "devices:claim", body)
    return {
        **by_partner(env, r),
        "target": r.json()["deviceId"],
        "outcome": "success",
        "details": {"customer": company, "vendor": "google"},
    }


async def device_unclaim(env: Env) -> dict[str, Any]:
    company = await customer(env)
    body = {"customerId": company, "sectionType": SECTION, "deviceIdentifier": env.ident()}
    device = (await env.zt("POST", "devices:claim", body)).json()["deviceId"]
    r = await env.zt("POST", "devices:unclaim", {"deviceId": device, "sectionType": SECTION})
    return {**by_partner(env, r), "target": device, "outcome": "success"}


async def device_metadata(env: Env) -> dict[str, Any]:
    company = await customer(env)
    body = {"customerId": company, "sectionType": SECTION, "deviceIdentifier": env.ident()}
    device = (await env.zt("POST", "devices:claim", body)).json()["deviceId"]
    r = await env.zt("POST", f"devices/{device}/metadata", {"deviceMetadata": {"entries": {"a": "1"}}})
    return {**by_partner(env, r), "target": device}


async def claim_async(env: Env) -> httpx.Response:
    company = await customer(env)
    claims = [
        {"customerId": company, "sectionType": SECTION, "deviceIdentifier": env.ident()} for _ in range(2)
    ] + [
        {
            "customerId": company,
            "sectionType": SECTION,
            "deviceIdentifier": {"imei": "123", "manufacturer": "x"},
        }
    ]
    r = await env.zt("POST", "devices:claimAsync", {"claims": claims})
    await env.work()
    return r


async def operation_submit(env: Env) -> dict[str, Any]:
    r = await claim_async(env)
    op_id = r.json()["name"].rsplit("/", 1)[1]
    return {
        **by_partner(env, r),
        "target": op_id,
        "outcome": "submitted",
        "details": {"items": 3, "kind": "claim"},
    }


async def operation_complete(env: Env) -> dict[str, Any]:
    r = await claim_async(env)
    op_id = r.json()["name"].rsplit("/", 1)[1]
    assert len(await entries(env, target=op_id)) == 2  # one submit, one complete: never one per device
    return {
        "actor": "system:provisiond",
        "target": op_id,
        "outcome": "completeWithErrors",
        "details": {"items": 3, "succeeded": 2, "failed": 1},
    }


async def tenant(env: Env) -> tuple[Any, str]:
    made, token = await env.ctx.sphere.create_tenant("Contoso")
    env.secrets.append(token)
    return made, token


async def tenant_create(env: Env) -> dict[str, Any]:
    made, _ = await tenant(env)
    return {**by_operator(), "target": str(made.id), "details": {"name": "Contoso"}}


async def tenant_rotate(env: Env) -> dict[str, Any]:
    made, _ = await tenant(env)
    env.secrets.append(await env.ctx.sphere.rotate_token(made.id))
    return {**by_operator(), "target": str(made.id)}


async def sphere_claim(env: Env) -> tuple[Any, httpx.Response, str]:
    made, token = await tenant(env)
    env.devices += 1
    device = format(env.devices, "0128X")
    url = f"/v2/tenants/{made.id}/devices/{device}/claim"
    r = await env.api.http.put(url, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 202, r.text
    await env.work()
    return made, r, device


async def sphere_operation_submit(env: Env) -> dict[str, Any]:
    made, r, _ = await sphere_claim(env)
    return {
        "actor": f"tenant:{made.id}",
        "request_id": r.headers["x-request-id"],
        "source": CLIENT,
        "outcome": "submitted",
        "details": {"kind": "sphere_claim", "sphereOperationId": r.json()["OperationId"]},
    }


async def tenant_release(env: Env) -> dict[str, Any]:
    made, _, device = await sphere_claim(env)
    await env.ctx.sphere.release(made.id, device)
    return {**by_operator(), "target": device, "details": {"tenant": str(made.id)}}


async def audit_prune(env: Env) -> dict[str, Any]:
    now = env.api.clock()
    async with env.api.db.write() as conn:
        await audit.record(conn, "hub.add", "old-hub", at=now - timedelta(days=31))
    deleted = await Retention(env.api.db, 30, env.api.clock).prune()
    assert deleted == 1 and not await entries(env, target="old-hub")
    return {"actor": "system:provisiond", "target": "audit", "details": {"deleted": 1, "retentionDays": 30}}


async def credential_policy_create(env: Env) -> dict[str, Any]:
    await env.ctx.credential_policies.create("fleet", validity_days=14)
    return {
        **by_operator(),
        "target": "fleet",
        "details": {"validityDays": 14, "keyType": "ec-p384", "imported": False},
    }


async def credential_policy_delete(env: Env) -> dict[str, Any]:
    await env.ctx.credential_policies.create("retired")
    await env.ctx.credential_policies.delete("retired")
    return {**by_operator(), "target": "retired"}


async def certificate_revoke(env: Env) -> dict[str, Any]:
    """A device that sent a CSR (2025-07-01-preview) has a certificate; revoking it by its
    registration id is one entry with the count, never the certificate."""
    await env.ctx.credential_policies.create("issuing")
    body = individual("dev-cert", credentialPolicyName="issuing")
    r = await env.api.call("PUT", "/enrollments/dev-cert", json=body, version="2025-07-01-preview")
    assert r.status_code == 200, r.text
    device = Device(env.api, "dev-cert", KEY)
    registered = await env.api.http.put(
        f"/{device.id_scope}/registrations/dev-cert/register",
        params={"api-version": "2025-07-01-preview"},
        json={"registrationId": "dev-cert", "csr": make_csr("dev-cert").b64},
        headers={"Authorization": device.token()},
    )
    assert registered.status_code == 202, registered.text
    assert await env.ctx.credential_policies.revoke(registration_id="dev-cert")
    return {**by_operator(), "target": "dev-cert", "details": {"by": "registration", "revoked": 1}}


async def hub_connector(env: Env) -> dict[str, Any]:
    """Linking a connector names its kind, never the connection string (the secret scan checks)."""
    with serve_iothub(env.tmp, "hub-iot.example") as double:
        secret = double.add_policy("provisioning")
        env.secrets.append(secret)
        connections = wiring.hub_connections(env.ctx.settings, env.api.db)
        await connections.link("hub-iot.example", 1, None, "iothub", secret, double.endpoint, double.ca_pem)
    return {**by_operator(), "target": "hub-iot.example", "details": {"connector": "iothub"}}


async def registration_deprovision(env: Env) -> dict[str, Any]:
    await register(env, "dev-gone")
    await wiring.hub_connections(env.ctx.settings, env.api.db).deprovision("dev-gone")
    return {
        **by_operator(),
        "target": "dev-gone",
        "details": {"hub": None, "identityDeleted": False, "revoked": 0},
    }


Row = Callable[[Env], Awaitable[dict[str, Any]]]

ROWS: dict[str, tuple[str, Row]] = {
    "enrollment.create": ("enrollment.create", enrollment_create),
    "enrollment.create (bulk)": ("enrollment.create", enrollment_bulk),
    "enrollment.update": ("enrollment.update", enrollment_update),
    "enrollment.disable": ("enrollment.disable", enrollment_disable),
    "enrollment.enable": ("enrollment.enable", enrollment_enable),
    "enrollment.delete": ("enrollment.delete", enrollment_delete),
    "enrollmentGroup.create": ("enrollmentGroup.create", group_create),
    "enrollmentGroup.update": ("enrollmentGroup.update", group_update),
    "enrollmentGroup.disable": ("enrollmentGroup.disable", group_disable),
    "enrollmentGroup.enable": ("enrollmentGroup.enable", group_enable),
    "enrollmentGroup.delete": ("enrollmentGroup.delete", group_delete),
    "registrationState.delete": ("registrationState.delete", registration_state_delete),
    "device.register": ("device.register", device_register),
    "device.register (disabled)": ("device.register", device_register_disabled),
    "device.register (failed)": ("device.register", device_register_failed),
    "device.register (custom allocation)": ("device.register", device_register_custom),
    "instance.create": ("instance.create", instance_create),
    "policy.create": ("policy.create", policy_create),
    "policy.delete": ("policy.delete", policy_delete),
    "credentialPolicy.create": ("credentialPolicy.create", credential_policy_create),
    "credentialPolicy.delete": ("credentialPolicy.delete", credential_policy_delete),
    "certificate.revoke": ("certificate.revoke", certificate_revoke),
    "hub.add": ("hub.add", hub_add),
    "hub.connector": ("hub.connector", hub_connector),
    "registration.deprovision": ("registration.deprovision", registration_deprovision),
    "hub.remove": ("hub.remove", hub_remove),
    "region.add": ("region.add", region_add),
    "region.remove": ("region.remove", region_remove),
    "allocation.set": ("allocation.set", allocation_set),
    "ca.add": ("ca.add", ca_add),
    "ca.remove": ("ca.remove", ca_remove),
    "secrets.rotate": ("secrets.rotate", secrets_rotate),
    "partner.create": ("partner.create", partner_create),
    "partner.rotateToken": ("partner.rotateToken", partner_rotate),
    "customer.create": ("customer.create", customer_create),
    "device.claim": ("device.claim", device_claim),
    "device.unclaim": ("device.unclaim", device_unclaim),
    "device.updateMetadata": ("device.updateMetadata", device_metadata),
    "operation.submit": ("operation.submit", operation_submit),
    "operation.submit (sphere)": ("operation.submit", sphere_operation_submit),
    "operation.complete": ("operation.complete", operation_complete),
    "tenant.create": ("tenant.create", tenant_create),
    "tenant.rotateToken": ("tenant.rotateToken", tenant_rotate),
    "tenant.release": ("tenant.release", tenant_release),
    "events.subscribe": ("events.subscribe", events_subscribe),
    "events.remove": ("events.remove", events_remove),
    "audit.prune": ("audit.prune", audit_prune),
}


async def entries(env: Env, *, limit: int = 1000, **selection: Any) -> list[AuditEntry]:
    return await AuditService(env.api.db).entries(AuditFilter(**selection), limit)


@pytest.fixture
async def env(db: Database, tmp_path: Path) -> AsyncIterator[Env]:
    async with running_app(db, tmp_path / "data", FakeClock(), in_process_worker=False) as api:
        await api.ctx.hubs.add(HUB)
        yield Env(api, tmp_path)


def test_every_action_has_a_row() -> None:
    """A new action without a row here is caught: the trail's completeness is tested per action."""
    assert {action for action, _ in ROWS.values()} == ACTIONS


@pytest.mark.parametrize("name", list(ROWS))
async def test_action_is_recorded(env: Env, name: str) -> None:
    action, row = ROWS[name]
    with audit.acting(operator_context()):  # what every CLI command acts under
        expected = await row(env)
    newest = await entries(env, action=action, target=expected.get("target"), limit=1)
    assert newest, f"no {action} entry"
    entry = newest[0]
    assert entry.action == action
    details = expected.pop("details", {})
    seen = {
        "actor": str(entry.actor),
        "target": entry.target,
        "outcome": str(entry.outcome),
        "request_id": entry.request_id,
        "source": entry.source,
    }
    assert {k: seen[k] for k in expected} == expected, entry
    assert {k: entry.details.get(k) for k in details} == details, entry


async def test_no_entry_holds_a_secret(env: Env) -> None:
    """Every row in one database; no key, token or SAS they used appears in any entry."""
    env.secrets += [KEY, KEY2, derive_device_key(KEY, "dev-r"), env.api.owner_key]
    with audit.acting(operator_context()):
        for name, (_, row) in ROWS.items():
            if name != "audit.prune":  # it deletes; the scan wants everything
                await row(env)
            await _reset_between(env)
    everything = [e async for e in AuditService(env.api.db).export()]
    assert len(everything) > len(ROWS)
    text = "\n".join(json.dumps({**e.details, "target": e.target, "actor": str(e.actor)}) for e in everything)
    leaked = [s for s in env.secrets if s and s in text]
    assert leaked == []


async def _reset_between(env: Env) -> None:
    """Rows reuse ids (dev-1, g-1, reader, root, …): clear what the next row would collide with."""
    for path in ("/enrollments/dev-1", "/enrollmentGroups/g-1"):
        r = await env.api.call("DELETE", path)
        assert r.status_code in (204, 404)
    for policy in await env.ctx.instance.policies():
        if policy.name == "reader":
            await env.ctx.instance.delete_policy("reader")
    if not any(h.host_name == HUB for h in await env.ctx.hubs.hubs()):
        await env.ctx.hubs.add(HUB)
    for name_, _ in await CaService(env.api.db).cas():
        await CaService(env.api.db).remove(name_)
    env.partner = None
