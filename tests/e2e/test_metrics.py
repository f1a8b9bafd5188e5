"""``/metrics`` through a real ``provisiond serve``: never anonymous (401), open to the bearer
token in ``PROVISIOND_METRICS_TOKEN_FILE`` and to a service SAS, and after real registrations
every family the docs list is there with figures that count them, combined across
``serve --processes 2`` on PostgreSQL."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from tests.compat.support import link_hub, unique_id
from tests.e2e.test_events import KEY, enroll
from tests.support.databases import own_database
from tests.support.server import ServerProcess, start_server

FAMILIES = [
    ("provisiond_registrations", "counter"),
    ("provisiond_registration_duration_seconds", "histogram"),
    ("provisiond_operations", "gauge"),
    ("provisiond_operation_items_processed", "counter"),
    ("provisiond_http_requests", "counter"),
    ("provisiond_http_request_duration_seconds", "histogram"),
    ("provisiond_open_connections", "gauge"),
    ("provisiond_db_pool_wait_seconds", "histogram"),
    ("provisiond_outbox_backlog", "gauge"),
    ("provisiond_outbox_delivery_failures", "counter"),
]
TOKEN = "scrape-token-8d1f0c2b"


def scrape(server: ServerProcess, authorization: str | None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization else {}
    with httpx.Client(
        verify=ssl.create_default_context(cafile=server.ca), trust_env=False, timeout=30
    ) as http:
        return http.get(f"{server.base_url}/metrics", headers=headers)


def has_family(text: str, name: str, kind: str) -> bool:
    """A ``# TYPE`` line for the family (multiprocess exposition names a counter with ``_total``)."""
    return any(line in (f"# TYPE {name} {kind}", f"# TYPE {name}_total {kind}") for line in text.splitlines())


def sample(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def start(tmp: Path, **kwargs: object) -> ServerProcess:
    token_file = tmp / "metrics.token"
    token_file.write_text(TOKEN + "\n")
    return start_server(tmp / "data", env={"PROVISIOND_METRICS_TOKEN_FILE": str(token_file)}, **kwargs)  # type: ignore[arg-type]


def traffic(server: ServerProcess, devices: int) -> None:
    hub = link_hub(server, "metrics")
    for _ in range(devices):
        rid = unique_id("met")
        enroll(server, rid, hub)
        server.register_device(rid, KEY)


def test_metrics_need_a_credential_and_list_every_family_after_real_traffic(tmp_path: Path) -> None:
    server = start(tmp_path)
    try:
        assert scrape(server, None).status_code == 401
        assert scrape(server, "Bearer wrong-token").status_code == 401
        traffic(server, 3)
        r = scrape(server, f"Bearer {TOKEN}")
        assert r.status_code == 200
        for name, kind in FAMILIES:
            assert has_family(r.text, name, kind), name
        assigned = (
            'provisiond_registrations_total{attestation="symmetricKey",outcome="assigned",transport="https"}'
        )
        assert sample(r.text, assigned) == 3
        assert sample(r.text, "provisiond_registration_duration_seconds_count") == 3
        assert sample(r.text, 'provisiond_http_requests_total{dialect="dps_service"') >= 3
        assert sample(r.text, 'provisiond_open_connections{listener="https"}') >= 1
        assert sample(r.text, "provisiond_db_pool_wait_seconds_count") > 0
        sas = server.service_sas(600)
        assert scrape(server, sas).status_code == 200
        assert TOKEN not in server.log.read_text()
    finally:
        server.stop()


@pytest.mark.parametrize("engine", ["postgresql"])
def test_two_processes_report_the_figures_of_both(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with own_database(engine, tmp_path, request.getfixturevalue("pg_url")) as url:
        server = start(tmp_path, database=url, serve_args=["--processes", "2"])
        try:
            traffic(server, 8)  # a connection per call: the kernel spreads them over both processes
            for _ in range(4):  # whichever process answers, it reports both
                r = scrape(server, f"Bearer {TOKEN}")
                for name, kind in FAMILIES:
                    assert has_family(r.text, name, kind), name
                assert (
                    sample(
                        r.text, 'provisiond_registrations_total{attestation="symmetricKey",outcome="assigned"'
                    )
                    == 8
                )
        finally:
            server.stop()
