"""Who is calling: a partner's bearer token, and the partner id in the path.

The real service takes OAuth 2 access tokens; ours are opaque partner tokens from
``provisiond partner create`` (stored hashed). An API key (``?key=``) alone is not a credential.
"""

from __future__ import annotations

from starlette.requests import Request

from provisiond.api.context import AppContext, context
from provisiond.api.http import bearer_token
from provisiond.api.zerotouch.errors import UNAUTHENTICATED_MISSING, ZtError
from provisiond.domain.claims import Partner

__all__ = ["authorize"]


async def authorize(request: Request, path_partner: str | None) -> tuple[AppContext, Partner]:
    """The caller's partner; 401 without a valid token, 403 when the path names another partner."""
    ctx = context(request)
    token = bearer_token(request)
    if token is None:
        raise ZtError(401, UNAUTHENTICATED_MISSING)
    partner = await ctx.claims.authenticate(token)  # Unauthorized -> 401 by the error table
    if path_partner is not None and path_partner.strip() != str(partner.id):
        raise ZtError(403, "The caller does not have permission")
    return ctx, partner
