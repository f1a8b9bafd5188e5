"""Service-API authentication: a SAS signed with a shared access policy that has the route's right."""

from __future__ import annotations

import time

from starlette.requests import Request

from provisiond.api.context import AppContext, context
from provisiond.domain.audit import Actor, ActorKind
from provisiond.domain.instance import DpsInstance
from provisiond.domain.policies import Policy, Right
from provisiond.domain.sas import parse_sas, verify_signature
from provisiond.errors import Unauthorized
from provisiond.services import audit

__all__ = ["ServiceAuth", "service_auth"]

POLICY_CACHE_SECONDS = 2.0  # a policy deleted with the CLI stops working within this time


class ServiceAuth:
    """Checks tokens; caches policies briefly so each request does not cost a database read."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._instance: DpsInstance | None = None
        self._policies: dict[str, tuple[float, Policy | None]] = {}

    async def _policy(self, name: str) -> Policy | None:
        cached = self._policies.get(name)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        policy = await self.ctx.instance.policy(name)
        if len(self._policies) > 1000:  # unknown names must not grow the cache without bound
            self._policies.clear()
        self._policies[name] = (now + POLICY_CACHE_SECONDS, policy)
        return policy

    async def instance(self) -> DpsInstance:
        if self._instance is None:
            self._instance = await self.ctx.instance.get()
        return self._instance

    async def authorize(self, request: Request, right: Right | None) -> None:
        """Raise ``Unauthorized`` unless the request carries a valid token with ``right`` (``None``:
        any right, for what every policy may read, such as the API's description)."""
        token = parse_sas(request.headers.get("authorization"))
        if not token.key_name:
            raise Unauthorized("a service token must name its policy (skn)")
        policy = await self._policy(token.key_name)
        # An unknown policy is checked against a throwaway key so that timing does not reveal
        # which policy names exist.
        keys = [policy.primary_key, policy.secondary_key] if policy else ["AAAAAAAAAAAAAAAAAAAAAA=="]
        verify_signature(token, keys, self.ctx.clock().timestamp())
        if policy is None:
            raise Unauthorized("SharedAccessSignature signature does not match")
        instance = await self.instance()
        if not instance.answers_to(token.resource, self.ctx.settings.port) and not instance.answers_to(
            token.resource, 443
        ):
            raise Unauthorized("the token's resource (sr) does not name this provisioning service")
        if right is not None and right not in policy.rights:
            raise Unauthorized(f"policy {policy.name!r} lacks the {right.value} right")
        audit.identify(Actor(ActorKind.POLICY, policy.name))  # who this request's changes are by


def service_auth(request: Request) -> ServiceAuth:
    """The application's one ``ServiceAuth``, made on first use for the services the app runs
    with (its policy cache lives as long as they do; a restarted app gets a fresh one)."""
    ctx = context(request)
    auth: ServiceAuth | None = getattr(request.app.state, "dps_service_auth", None)
    if auth is None or auth.ctx is not ctx:
        auth = request.app.state.dps_service_auth = ServiceAuth(ctx)
    return auth
