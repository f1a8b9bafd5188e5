"""``provisiond dps …``: the DPS instance's shared access policies."""

from __future__ import annotations

from typing import Annotated

import typer

from provisiond.cli.common import DatabaseUrl, DataDir, JsonFlag, emit, run, settings_from, with_db
from provisiond.domain.policies import parse_rights
from provisiond.services.instance import InstanceService
from provisiond.store.db import Database

__all__ = ["dps_app"]

dps_app = typer.Typer(no_args_is_help=True, help="The DPS instance of this data dir.")
policy_app = typer.Typer(no_args_is_help=True, help="Shared access policies (who may call the service API).")
dps_app.add_typer(policy_app, name="policy")


@policy_app.command("create")
def policy_create(
    name: str,
    rights: Annotated[
        str, typer.Option("--rights", help="comma-separated, e.g. EnrollmentRead,EnrollmentWrite")
    ],
    data_dir: DataDir = None,
    database: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a policy with its own keys; prints its connection string."""
    settings = settings_from(data_dir, database)

    async def action(db: Database) -> dict[str, object]:
        service = InstanceService(db)
        parsed = parse_rights(rights)
        instance = await service.get()
        policy = await service.create_policy(name, parsed)
        host = instance.service_host if settings.port == 443 else f"{instance.service_host}:{settings.port}"
        return {
            "name": policy.name,
            "rights": sorted(r.value for r in policy.rights),
            "primaryKey": policy.primary_key,
            "secondaryKey": policy.secondary_key,
            "connectionString": policy.connection_string(host),
        }

    data = run(with_db(settings, action))
    emit(as_json, data, f"created policy {name}\nconnection string: {data['connectionString']}")


@policy_app.command("list")
def policy_list(data_dir: DataDir = None, database: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """List policies and their rights (keys are not shown)."""
    settings = settings_from(data_dir, database)
    policies = run(with_db(settings, lambda db: InstanceService(db).policies()))
    rows = [{"name": p.name, "rights": sorted(r.value for r in p.rights)} for p in policies]
    emit(as_json, {"policies": rows}, "\n".join(f"{r['name']}\t{','.join(r['rights'])}" for r in rows))


@policy_app.command("delete")
def policy_delete(
    name: str, data_dir: DataDir = None, database: DatabaseUrl = None, as_json: JsonFlag = False
) -> None:
    """Delete a policy; tokens signed with its keys stop working (within two seconds on a running server)."""
    settings = settings_from(data_dir, database)
    run(with_db(settings, lambda db: InstanceService(db).delete_policy(name)))
    emit(as_json, {"deleted": name}, f"deleted policy {name}")
