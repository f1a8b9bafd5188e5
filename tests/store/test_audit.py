"""The audit table on both engines: appended in order, filtered, exported in keyset pages, and
never updated; retention is its only delete."""

from __future__ import annotations

import ast
import inspect
from datetime import UTC, datetime, timedelta

import pytest

from provisiond.domain.audit import Actor, ActorKind, AuditContext, AuditEntry, AuditFilter, Transport
from provisiond.services import audit
from provisiond.services.audit import AuditService
from provisiond.store import audit as repo
from provisiond.store.db import Database

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def _fill(db: Database, n: int) -> None:
    async with db.write() as conn:
        for i in range(n):
            await audit.record(conn, "hub.add", f"hub-{i}", at=T0 + timedelta(minutes=i))


async def test_an_entry_keeps_every_field(db: Database) -> None:
    origin = AuditContext(Actor(ActorKind.POLICY, "writer"), "req-1", "192.0.2.7", Transport.HTTPS)
    with audit.acting(origin):
        async with db.write() as conn:
            await audit.record(conn, "hub.add", "hub-x", details={"weight": 3, "region": None}, at=T0)
    [entry] = await AuditService(db).entries(AuditFilter(), 10)
    assert (entry.time, str(entry.actor), entry.action, entry.target, entry.outcome) == (
        T0,
        "policy:writer",
        "hub.add",
        "hub-x",
        "success",
    )
    assert (entry.request_id, entry.source) == ("req-1", "192.0.2.7")
    assert entry.details == {"weight": 3, "region": None, "transport": "https"}


async def test_an_entry_rolls_back_with_its_change(db: Database) -> None:
    """Recorded in the change's transaction: a change that fails leaves no entry."""
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await audit.record(conn, "hub.add", "hub-x")
            raise RuntimeError("the change failed")
    assert await AuditService(db).entries(AuditFilter(), 10) == []


async def test_list_filters_and_returns_the_newest_first(db: Database) -> None:
    with audit.acting(AuditContext(Actor(ActorKind.OPERATOR, "alice"))):
        async with db.write() as conn:
            await audit.record(conn, "enrollment.create", "dev-1", at=T0)
            await audit.record(conn, "enrollmentGroup.create", "g-1", at=T0 + timedelta(hours=1))
    with audit.acting(AuditContext(Actor(ActorKind.DEVICE, "dev-1"))):
        async with db.write() as conn:
            await audit.record(conn, "device.register", "dev-1", "assigned", at=T0 + timedelta(hours=2))
    service = AuditService(db)

    async def targets(limit: int = 10, **selection: object) -> list[str]:
        return [e.action for e in await service.entries(AuditFilter(**selection), limit)]  # type: ignore[arg-type]

    assert await targets() == ["device.register", "enrollmentGroup.create", "enrollment.create"]
    assert await targets(limit=1) == ["device.register"]
    assert await targets(actor="operator") == ["enrollmentGroup.create", "enrollment.create"]
    assert await targets(actor="operator:bob") == []
    assert await targets(actor="device:dev-1") == ["device.register"]
    assert await targets(action="enrollment") == ["enrollment.create"]  # not enrollmentGroup.*
    assert await targets(action="enrollmentGroup.create") == ["enrollmentGroup.create"]
    assert await targets(target="dev-1") == ["device.register", "enrollment.create"]
    assert await targets(since=T0 + timedelta(minutes=30)) == ["device.register", "enrollmentGroup.create"]


async def test_export_streams_every_entry_in_order_across_pages(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "EXPORT_BATCH", 7)  # many pages from a few rows
    await _fill(db, 30)
    exported = [e.target async for e in AuditService(db).export()]
    assert exported == [f"hub-{i}" for i in range(30)]
    since = [e.target async for e in AuditService(db).export(T0 + timedelta(minutes=25))]
    assert since == [f"hub-{i}" for i in range(25, 30)]


async def test_retention_deletes_only_older_entries(db: Database) -> None:
    await _fill(db, 10)
    async with db.write() as conn:
        assert await repo.delete_before(conn, T0 + timedelta(minutes=4), limit=3) == 3  # the oldest
        assert await repo.delete_before(conn, T0 + timedelta(minutes=4), limit=3) == 1
    assert [e.target async for e in AuditService(db).export()] == [f"hub-{i}" for i in range(4, 10)]


def test_the_store_has_no_update_and_only_the_retention_delete() -> None:
    """Append-only: no function of store/audit.py updates, and only ``delete_before`` deletes."""
    tree = ast.parse(inspect.getsource(repo))
    calls: dict[str, set[str]] = {}
    for fn in tree.body:
        if isinstance(fn, ast.AsyncFunctionDef | ast.FunctionDef):
            names = {
                n.func.id for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
            }
            calls[fn.name] = names & {"update", "delete"}
    assert {name for name, used in calls.items() if used} == {"delete_before"}
    assert calls["delete_before"] == {"delete"}


def test_an_entry_refuses_a_detail_named_like_a_credential() -> None:
    for name in ("primaryKey", "token", "adminPassword", "clientSecret", "sas"):
        with pytest.raises(ValueError, match="credential"):
            AuditEntry(T0, Actor(ActorKind.SYSTEM, "x"), "hub.add", "h", "success", details={name: "x"})
    AuditEntry(T0, Actor(ActorKind.SYSTEM, "x"), "hub.add", "h", "success", details={"keyType": "ec-p256"})


def test_an_unknown_action_is_refused() -> None:
    """Every action is in the catalogue (domain/audit.ACTIONS), which the table-driven test covers."""
    with pytest.raises(ValueError, match="unknown audit action"):
        AuditEntry(T0, Actor(ActorKind.SYSTEM, "x"), "hub.explode", "h", "success")
