"""Log output: text for people, or (``PROVISIOND_LOG_FORMAT=json``) one JSON object per line for
log pipelines, carrying the request id, the dialect and the actor of the request being served.

Why the request's fields come in through a callable: who is acting is the audit context's
(``services/audit.py``), which this module, below every layer, may not import; the CLI that
configures logging hands it in. The dialect is set here, by the HTTP edge, per request.
No secret is logged anywhere (a test scans a JSON log for every secret a run used).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

__all__ = ["DIALECT", "JsonFormatter", "configure"]

DIALECT: ContextVar[str | None] = ContextVar("provisiond_dialect", default=None)
"""The dialect answering the current HTTP request (set by ``api/http_metrics.py``)."""

RequestFields = Callable[[], Mapping[str, Any]]
_URL_LOGGERS = ("httpx", "httpcore")
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON: time, level, logger, message, the request's fields, and the
    exception (its type and traceback text) if there is one."""

    def __init__(self, request_fields: RequestFields) -> None:
        super().__init__()
        self._request_fields = request_fields

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        line.update({k: v for k, v in self._request_fields().items() if v is not None})
        dialect = DIALECT.get()
        if dialect is not None:
            line["dialect"] = dialect
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: str, fmt: str, request_fields: RequestFields) -> None:
    """Send every logger's records to stderr in ``fmt`` (``text`` or ``json``) from ``level`` up."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(request_fields) if fmt == "json" else logging.Formatter(_TEXT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for chatty in _URL_LOGGERS:  # they log whole URLs, and a webhook URL's query may hold a key
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
