"""A real HTTP server that plays a custom-allocation webhook in tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Webhook", "serve_webhook"]


@dataclass
class Webhook:
    """What the webhook answers (``status``, ``body``; ``delay`` seconds first) and what it got."""

    url: str = ""
    status: int = 200
    body: Any = None
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, status: int = 200, body: Any = None, delay: float = 0.0) -> None:
        self.status, self.body, self.delay = status, body, delay


@contextmanager
def serve_webhook() -> Iterator[Webhook]:
    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            hook.requests.append(json.loads(self.rfile.read(length)))
            time.sleep(hook.delay)
            data = hook.body if isinstance(hook.body, bytes) else json.dumps(hook.body).encode()
            try:
                self.send_response(hook.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the caller gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/api/allocate?code=function-key"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
