"""Registration states as the service API sees them: read, delete, list per enrollment group."""

from __future__ import annotations

from provisiond.domain.enrollments import normalize_if_match
from provisiond.domain.query import decode_token, encode_token
from provisiond.domain.registration_ids import id_key
from provisiond.domain.registrations import RegistrationState
from provisiond.errors import NotFound, PreconditionFailed
from provisiond.services import audit
from provisiond.services.enrollments import Page
from provisiond.store import registrations as repo
from provisiond.store.db import Database

__all__ = ["RegistrationStateService"]


class RegistrationStateService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, registration_id: str) -> RegistrationState:
        async with self._db.read() as conn:
            state = await repo.get_state(conn, id_key(registration_id))
        if state is None:
            raise NotFound(f"no registration state for {registration_id!r}")
        return state

    async def delete(self, registration_id: str, if_match: str | None) -> None:
        key = id_key(registration_id)
        async with self._db.write() as conn:
            if await repo.delete_state(conn, key, normalize_if_match(if_match)):
                await audit.record(conn, "registrationState.delete", registration_id)
                return
            if await repo.get_state_etag(conn, key) is None:
                raise NotFound(f"no registration state for {registration_id!r}")
            raise PreconditionFailed(f"etag does not match the registration state of {registration_id!r}")

    async def page_of_group(
        self, group_id: str, continuation: str | None, size: int
    ) -> Page[RegistrationState]:
        after = decode_token(continuation)
        async with self._db.read() as conn:
            rows = await repo.page_states_of_group(conn, id_key(group_id), after, size + 1)
        more = len(rows) > size
        items = rows[:size]
        return Page(
            items=items, continuation=encode_token(id_key(items[-1].registration_id)) if more else None
        )
