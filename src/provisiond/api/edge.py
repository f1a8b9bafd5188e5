"""The one edge every dialect stands on: its error policy, the paths it owns, how it is mounted.

Each dialect answers failures in its own wire format (DPS's errorCode body, Google's error object,
the reseller model's Error, Sphere's error array), but the kinds of failure are the same in all of
them: the dialect's own error, a domain error, a body over the limit, a malformed body, a client
that went away, a bug, and a path or method that no route serves. So a dialect only *declares* how
it answers each kind (an ``ErrorPolicy``, in its ``errors.py``) and which paths are its own (a
``Dialect``, next to its router); the arms, their order, the logging of bugs and the quiet handling
of vanished clients are written here once, and ``api/app.py`` mounts every registered dialect in
one loop. Adding a dialect means writing its package and adding its ``Dialect`` to
``api/dialects.py``, nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from provisiond.api.http import BodyTooLarge, ClientDisconnect, MalformedJson, client_gone
from provisiond.api.openapi import DialectDocument
from provisiond.config import Settings
from provisiond.errors import ProvisiondError, StoreUnavailable

__all__ = ["CanonicalPathMiddleware", "Dialect", "ErrorPolicy", "owner_of"]

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Exception)


def _no_note(_err: Any) -> str:
    return ""


class ErrorPolicy(Generic[E]):
    """How one dialect answers every failure: each arm turns a failure into the dialect's own
    error ``E``, which ``render`` writes in the dialect's format.

    - ``translate``: a domain error (``ProvisiondError``), through the dialect's one table;
    - ``too_large``: a body over the dialect's limit (refused before parsing);
    - ``malformed``: a body that is not JSON of the right shape (``malformed_types``: the
      exceptions the dialect's decoder raises for it);
    - ``internal``: anything else, a bug: logged with its traceback (``log_note`` adds what lets
      an operator match the answer with the log line, such as the reseller model's errorId);
    - ``unrouted``: no route for the path or method (404 or 405 from the router), for a path the
      dialect owns.

    A client that went away before its request was read is answered by ``http.client_gone``
    in every dialect: it is routine, not an error.
    """

    def __init__(
        self,
        *,
        error: type[E],
        render: Callable[[E], Response],
        translate: Callable[[ProvisiondError], E],
        too_large: Callable[[BodyTooLarge], E],
        malformed: Callable[[Exception], E],
        internal: Callable[[], E],
        unrouted: Callable[[int], E],
        malformed_types: tuple[type[Exception], ...] = (MalformedJson,),
        log_note: Callable[[E], str] = _no_note,
    ) -> None:
        self.error = error
        self.render = render
        self.translate = translate
        self.too_large = too_large
        self.malformed = malformed
        self.internal = internal
        self.unrouted = unrouted
        self.malformed_types = malformed_types
        self.log_note = log_note
        self.route_class: type[APIRoute] = _route_class(self)

    def answer(self, request: Request, exc: Exception) -> Response:
        """The dialect's answer to ``exc``, raised while handling ``request``."""
        if isinstance(exc, self.error):
            return self.render(exc)
        if isinstance(exc, ProvisiondError):
            translated = self.translate(exc)
            if isinstance(exc, StoreUnavailable):
                log.warning("%s %s: %s", request.method, request.url.path, exc.message)
            elif getattr(translated, "status", 500) >= 500:
                # A domain error the dialect's table does not know (a key file that no longer
                # opens a secret, say) is answered 500: the operator must see why, in the log.
                log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
            return self.render(translated)
        if isinstance(exc, BodyTooLarge):
            return self.render(self.too_large(exc))
        if isinstance(exc, self.malformed_types):
            return self.render(self.malformed(exc))
        if isinstance(exc, ClientDisconnect):
            return client_gone(request)
        err = self.internal()
        log.error(
            "unexpected failure in %s %s%s",
            request.method,
            request.url.path,
            self.log_note(err),
            exc_info=exc,
        )
        return self.render(err)

    def answer_unrouted(self, status: int) -> Response:
        """No route serves the path (404) or the method (405) under the dialect's paths."""
        return self.render(self.unrouted(status))


def _route_class(policy: ErrorPolicy[Any]) -> type[APIRoute]:
    """A route class whose every failure is answered by ``policy``, never as a bare 500."""

    class DialectRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def answer_failures(request: Request) -> Response:
                try:
                    return await handler(request)
                except Exception as exc:  # every failure is answered in the dialect's format
                    return policy.answer(request, exc)

            return answer_failures

    return DialectRoute


def _always(_settings: Settings) -> bool:
    return True


def _owns_nothing(_path: str) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Dialect:
    """One wire API as the app mounts it.

    ``owns_path`` says which unknown paths are answered by ``policy.unrouted``. A dialect that
    recognises its paths by a pattern whose first segment can be anything (the DPS device API's
    ``/{idScope}/registrations/…`` also matches ``/v1/registrations``) sets ``pattern_paths``:
    it is asked only after every dialect with a fixed prefix. ``canonical_path`` puts the
    dialect's paths in canonical form before routing (``None``: not one of its paths).

    ``public_reason``: every route authenticates its caller (docs/security.md), except those of
    a dialect that names here why it may not; the CRL route is the one such exception, and a test
    (tests/api/test_public_routes.py) keeps it the only one.

    ``document``: the dialect's OpenAPI description (``api/openapi.py``), which its router serves
    at ``document.path`` to callers its own authentication accepts; ``make openapi`` writes it out.
    """

    name: str
    routers: tuple[APIRouter, ...]
    policy: ErrorPolicy[Any]
    owns_path: Callable[[str], bool] = _owns_nothing
    pattern_paths: bool = False
    canonical_path: Callable[[str], str | None] | None = None
    enabled: Callable[[Settings], bool] = _always
    public_reason: str = ""
    document: DialectDocument | None = None


def owner_of(dialects: Sequence[Dialect], path: str) -> Dialect | None:
    """The dialect that answers for an unknown ``path``: fixed prefixes first, then patterns (a
    dialect's document path is its own: a wrong method on it is answered in its format)."""
    for dialect in dialects:
        if dialect.document is not None and dialect.document.path == path:
            return dialect
    for pattern in (False, True):
        for dialect in dialects:
            if dialect.pattern_paths is pattern and dialect.owns_path(path):
                return dialect
    return None


class CanonicalPathMiddleware:
    """Puts HTTP paths in each dialect's canonical form before the router sees them.

    Clients differ in the case of fixed path segments and in trailing slashes (DPS's SDKs do).
    Each canonical form is applied to the result of the one before; the two there are (DPS
    service and device API) touch different segments, so their order does not matter
    (tests/api/test_edge.py checks it).
    """

    def __init__(self, app: ASGIApp, canonicalizers: Sequence[Callable[[str], str | None]]) -> None:
        self.app = app
        self.canonicalizers = tuple(canonicalizers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            for canonical_path in self.canonicalizers:
                canonical = canonical_path(path)
                if canonical is not None:
                    path = canonical
            if path != scope["path"]:
                scope = {**scope, "path": path}
        await self.app(scope, receive, send)
