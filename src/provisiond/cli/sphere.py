"""``provisiond tenant …``: Azure Sphere tenants, their tokens, and releasing a claimed device."""

from __future__ import annotations

from uuid import UUID

from provisiond.cli.common import JsonFlag, emit, fail, group, run, with_db, with_settings
from provisiond.config import Settings
from provisiond.services.sphere import SphereService

__all__ = ["tenant_app"]

tenant_app = group("Azure Sphere tenants (the Sphere v2 dialect).")
token_app = group("A tenant's bearer token.")
tenant_app.add_typer(token_app, name="token")


def _tenant_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise fail(f"a tenant id is a UUID, not {text!r}") from None


@tenant_app.command("create")
@with_settings()
def tenant_create(settings: Settings, name: str, as_json: JsonFlag = False) -> None:
    """Create a tenant and print its id and bearer token (shown once; stored hashed)."""
    tenant, token = run(with_db(settings, lambda db: SphereService(db).create_tenant(name)))
    emit(as_json, {"tenantId": str(tenant.id), "token": token}, f"tenant {tenant.id}\ntoken: {token}")


@token_app.command("rotate")
@with_settings()
def token_rotate(settings: Settings, tenant: str, as_json: JsonFlag = False) -> None:
    """Issue a new token; the old one stops working at once."""
    tenant_id = _tenant_id(tenant)
    token = run(with_db(settings, lambda db: SphereService(db).rotate_token(tenant_id)))
    emit(as_json, {"tenantId": str(tenant_id), "token": token}, f"token: {token}")


@tenant_app.command("release")
@with_settings()
def tenant_release(
    settings: Settings,
    tenant: str,
    device: str,
    as_json: JsonFlag = False,
) -> None:
    """Release a device the tenant has claimed (the API cannot: claiming is final there).

    Recorded as a completed DeviceUnclaim operation of the tenant. A device the tenant does not
    own is refused and nothing is recorded.
    """
    tenant_id = _tenant_id(tenant)
    op = run(with_db(settings, lambda db: SphereService(db).release(tenant_id, device)))
    data = {"tenantId": str(tenant_id), "deviceId": op.device_id, "operationId": str(op.id)}
    emit(as_json, data, f"released {op.device_id} (operation {op.id})")
