"""Every write that emits an event emits the right one (type, subject, source) into the outbox,
with a catch-all subscription, on both engines; and no event's body holds a secret the run used.
The writes are the audit trail's table rows (``test_audit_trail.py``), driven through the dialects."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from provisiond.services.enrollments import WebhookRules
from provisiond.services.events import EventService
from provisiond.store.tables import event_outbox
from tests.api.test_audit_trail import ROWS, Env, env  # noqa: F401 (env is the fixture)

DPS = "io.provisiond.dps."
CLAIMS = "io.provisiond.claims."
CASES = {
    "enrollment.create": [(DPS + "enrollment.created", "dev-1")],
    "enrollment.disable": [(DPS + "enrollment.created", "dev-1"), (DPS + "enrollment.updated", "dev-1")],
    "enrollment.delete": [(DPS + "enrollment.created", "dev-1"), (DPS + "enrollment.deleted", "dev-1")],
    "enrollment.bulk": [(DPS + "enrollment.created", "taken"), (DPS + "enrollment.created", "bulk-1")],
    "enrollmentGroup.create": [(DPS + "enrollmentgroup.created", "g-1")],
    "device.register (disabled)": [
        (DPS + "enrollment.created", "dev-off"),
        (DPS + "registration.disabled", "dev-off"),
    ],
    "device.register (failed)": [
        (DPS + "enrollment.created", "dev-nohub"),
        (DPS + "registration.failed", "dev-nohub"),
    ],
    "device.claim": [(CLAIMS + "device.claimed", None)],
    "device.unclaim": [(CLAIMS + "device.claimed", None), (CLAIMS + "device.unclaimed", None)],
    "operation.complete": [(CLAIMS + "operation.completed", None)],
}


async def events(env: Env) -> list[dict[str, Any]]:  # noqa: F811
    async with env.api.db.read() as conn:
        rows = await conn.execute(select(event_outbox.c.body).order_by(event_outbox.c.seq))
        return [json.loads(body) for body in rows.scalars()]


@pytest.mark.parametrize("name", list(CASES))
async def test_a_write_emits_its_events(env: Env, name: str) -> None:  # noqa: F811
    _id, secret = await EventService(env.api.db, WebhookRules()).subscribe(
        "https://hooks.example/p", (), None
    )
    env.secrets.append(str(secret))
    _action, row = ROWS[name if name != "enrollment.bulk" else "enrollment.create (bulk)"]
    expected = await row(env)
    emitted = await events(env)
    assert [(e["type"], e["subject"]) for e in emitted] == [
        (kind, subject if subject is not None else expected["target"]) for kind, subject in CASES[name]
    ]
    for event in emitted:
        assert event["specversion"] == "1.0" and event["id"]
        if event["type"].startswith(DPS):
            assert event["source"].startswith("/provisiond/dps/0ne")
        else:
            assert event["source"].startswith("/provisiond/partners/")
    text = json.dumps(emitted)
    for secret_value in env.secrets:
        assert secret_value not in text
