"""The error policy of the CRL route: plain ``{"error": {"code", "message"}}`` JSON.

A CRL is fetched by brokers and TLS libraries, which read the status and nothing else; the body
is for the operator who runs ``curl``. Every status is listed in ``docs/errors.md``.
"""

from __future__ import annotations

from starlette.responses import Response

from provisiond.api.edge import ErrorPolicy
from provisiond.api.http import BodyTooLarge, json_response
from provisiond.errors import NotFound, ProvisiondError, StoreUnavailable

__all__ = ["POLICY", "PkiError"]


class PkiError(Exception):
    """A failure of the CRL route: its HTTP status and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _render(err: PkiError) -> Response:
    return json_response({"error": {"code": err.status, "message": err.message}}, err.status)


def _translate(exc: ProvisiondError) -> PkiError:
    if isinstance(exc, NotFound):
        return PkiError(404, exc.message)
    if isinstance(exc, StoreUnavailable):
        return PkiError(503, exc.message)
    return PkiError(500, "internal error")


def _too_large(exc: BodyTooLarge) -> PkiError:
    return PkiError(413, str(exc))


def _malformed(exc: Exception) -> PkiError:
    return PkiError(400, f"malformed request: {exc}")


def _internal() -> PkiError:
    return PkiError(500, "internal error")


def _unrouted(status: int) -> PkiError:
    return PkiError(status, "method not allowed" if status == 405 else "no such CRL")


POLICY = ErrorPolicy(
    error=PkiError,
    render=_render,
    translate=_translate,
    too_large=_too_large,
    malformed=_malformed,
    internal=_internal,
    unrouted=_unrouted,
)
