"""``PROVISIOND_LOG_FORMAT=json`` through a real ``provisiond serve``: every line the server writes
is one JSON object (uvicorn's own lines included), lines written while serving a request carry
its request id, dialect and actor, and no line holds any secret the run used (device and policy
keys, a webhook signing secret, the metrics token)."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import httpx

from provisiond.domain.events import new_secret
from tests.compat.support import link_hub, unique_id
from tests.e2e.test_events import KEY, enroll, wait_for
from tests.support.event_receiver import serve_receiver
from tests.support.server import start_server


def test_json_logs_are_one_object_per_line_with_the_request_and_no_secret(tmp_path: Path) -> None:
    secret = new_secret()
    token_file = tmp_path / "metrics.token"
    token_file.write_text("metrics-token-5e7a9c")
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret)
    with serve_receiver(tmp_path, secret, fail_first=1) as receiver:
        env = {
            "PROVISIOND_LOG_FORMAT": "json",
            "PROVISIOND_LOG_LEVEL": "debug",
            "PROVISIOND_WEBHOOK_CA_FILE": str(receiver.ca_file),
            "PROVISIOND_METRICS_TOKEN_FILE": str(token_file),
        }
        server = start_server(tmp_path / "data", env=env, settings={"webhook_timeout": 3})
        try:
            hub = link_hub(server, "logs")
            server.cli("events", "subscribe", receiver.url, "--secret-file", str(secret_file))
            rid = unique_id("log")
            enroll(server, rid, hub)
            server.register_device(rid, KEY)
            with httpx.Client(verify=ssl.create_default_context(cafile=server.ca), trust_env=False) as http:
                # an unauthenticated service call: logged as refused, while serving the request
                http.get(f"{server.base_url}/enrollments/{rid}", params={"api-version": "2021-10-01"})
                http.get(
                    f"{server.base_url}/metrics", headers={"Authorization": "Bearer metrics-token-5e7a9c"}
                )
            wait_for(lambda: len(receiver.events) == 2, "the two events (after a failed attempt)")
        finally:
            server.stop()
    text = server.log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["logger"].startswith("uvicorn") for line in lines)
    answered = [line for line in lines if line["logger"] == "provisiond.api.http_metrics"]
    device = [line for line in answered if line.get("dialect") == "dps_device"]
    assert device and all(len(line["requestId"]) == 32 for line in device)
    assert any(
        line.get("dialect") == "dps_service" and line["actor"].startswith("policy:") for line in answered
    )
    assert any(
        "delivery failed" in line["message"] and line["actor"] == "system:provisiond" for line in lines
    )
    for needle in (KEY, server.owner_key, secret, secret[len("whsec_") :], "metrics-token-5e7a9c"):
        assert needle not in text
