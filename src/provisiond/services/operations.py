"""The operator's view of durable operations: any owner's, by id or by name (``operation watch``).

A partner or tenant reads only its own operations through its dialect; the operator, on the
machine that runs provisiond, may follow any of them. An operation is named by its core id, its
zero-touch name (``operations/apibatchoperation/<id>``, as ``claim import`` prints it) or a
Sphere operation's public UUID.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID

from provisiond.domain.claims import Operation
from provisiond.errors import NotFound
from provisiond.store import operations as op_repo
from provisiond.store import sphere as sphere_repo
from provisiond.store.db import Database

__all__ = ["OperationsService"]

_TRAILING_NUMBER = re.compile(r"(?:operations/(?:[a-z]+/)?)?(\d{1,19})")


@dataclass
class OperationsService:
    db: Database

    async def find(self, name: str) -> Operation:
        """The operation ``name`` names (any owner); ``NotFound`` when there is none."""
        text = name.strip()
        async with self.db.read() as conn:
            number = _TRAILING_NUMBER.fullmatch(text)
            if number is not None:
                found = await op_repo.get_operation(conn, int(number.group(1)))
            else:
                try:
                    public = UUID(text)
                except ValueError:
                    raise NotFound(
                        f"{name!r} names no operation (an id, operations/…/ID or a UUID)"
                    ) from None
                ref = await sphere_repo.operation_ref(conn, public)
                found = await op_repo.get_operation(conn, ref[0]) if ref else None
        if found is None:
            raise NotFound(f"no operation {name!r}")
        return found
