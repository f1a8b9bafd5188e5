"""Every kind of operation has a row in each table keyed by kind: the worker knows how to run a
batch of it, and the domain knows which kind of account owns it."""

from __future__ import annotations

from provisiond.domain.claims import OWNER_KINDS, OperationKind
from provisiond.services.operation_kinds import BATCHES


def test_every_operation_kind_has_a_batch_and_an_owner_kind() -> None:
    assert set(BATCHES) == set(OperationKind)
    assert set(OWNER_KINDS) == set(OperationKind)
