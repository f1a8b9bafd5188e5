"""Bearer-token authentication and the tenant check every tenant-scoped route starts with."""

from __future__ import annotations

from uuid import UUID

from starlette.requests import Request

from provisiond.api.context import context
from provisiond.api.http import bearer_token
from provisiond.api.sphere import errors as codes
from provisiond.api.sphere.errors import SphereError
from provisiond.domain.sphere import Tenant

__all__ = ["authenticate", "authorize"]


async def authenticate(request: Request) -> Tenant:
    """The caller's tenant; a missing, malformed or unknown token is a 401."""
    return await context(request).sphere.authenticate(bearer_token(request))


async def authorize(request: Request, tenant_id: str) -> Tenant:
    """The caller's tenant, which must be the path's: any other path tenant is a 403, whether
    or not it exists (so tenant ids cannot be probed)."""
    tenant = await authenticate(request)
    try:
        same = UUID(tenant_id) == tenant.id
    except ValueError:
        same = False
    if not same:
        raise SphereError(403, codes.FORBIDDEN, "the token does not give access to this tenant")
    return tenant
