"""Prometheus metrics: every family provisiond exports, recorded from any layer, combined across
``serve --processes N``.

**Why the families are made lazily.** prometheus-client decides when a metric is created whether
its values live in the process or in files that several processes share (its multiprocess mode).
``serve`` turns that mode on (``enable_multiprocess``) before forking and before any family
exists, so a scrape answered by any one process sums the figures of all of them. Families are
therefore created on first use, never at import (the CLI imports these modules long before), and
outside the global registry, so that turning the mode on can drop any made before (start-up
opens the database, which times its pool wait).

Figures that are the database's (operations by kind and state, the outbox backlog) are not
counted here: ``exposition`` is handed them, read at scrape time, so every process reports the same.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

__all__ = [
    "db_pool_wait",
    "delivery_failed",
    "enable_multiprocess",
    "exposition",
    "http_request",
    "open_connections",
    "operation_items",
    "process_ended",
    "registration_ended",
]

_ENV = "PROMETHEUS_MULTIPROC_DIR"
_multiprocess: list[Path] = []


def enable_multiprocess(directory: Path) -> None:
    """Keep every family in files under ``directory``, shared by this process and its forks."""
    os.environ[_ENV] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    _multiprocess.append(directory)
    _families.cache_clear()  # any made before (start-up opened the database) were in-process


def process_ended(pid: int) -> None:
    """A forked process stopped: its live gauges (open connections) no longer count."""
    if _multiprocess:
        mark_process_dead(pid, str(_multiprocess[-1]))  # type: ignore[no-untyped-call]


@functools.cache
def _families() -> dict[str, Any]:
    return {
        "registrations": Counter(
            "provisiond_registrations",
            "device registrations that ended",
            ["outcome", "attestation", "transport"],
            registry=None,
        ),
        "registration_seconds": Histogram(
            "provisiond_registration_duration_seconds", "from a register call to its end", registry=None
        ),
        "items": Counter(
            "provisiond_operation_items_processed", "claim operation items processed", registry=None
        ),
        "http": Counter(
            "provisiond_http_requests", "HTTP requests answered", ["dialect", "status"], registry=None
        ),
        "http_seconds": Histogram(
            "provisiond_http_request_duration_seconds",
            "HTTP request handling time",
            ["dialect"],
            registry=None,
        ),
        "connections": Gauge(
            "provisiond_open_connections",
            "connections open now",
            ["listener"],
            multiprocess_mode="livesum",
            registry=None,
        ),
        "mqtt": Gauge(  # the older name of open_connections{listener="mqtt"}, kept for dashboards
            "provisiond_mqtt_connections",
            "MQTT connections open now (TLS and WebSocket)",
            multiprocess_mode="livesum",
            registry=None,
        ),
        "pool_wait": Histogram(
            "provisiond_db_pool_wait_seconds", "waiting for a database connection", registry=None
        ),
        "delivery_failures": Counter(
            "provisiond_outbox_delivery_failures", "failed event delivery attempts", registry=None
        ),
    }


def registration_ended(outcome: str, attestation: str, transport: str, seconds: float) -> None:
    _families()["registrations"].labels(outcome, attestation, transport).inc()
    _families()["registration_seconds"].observe(max(0.0, seconds))


def operation_items(count: int) -> None:
    _families()["items"].inc(count)


def http_request(dialect: str, status: int, seconds: float) -> None:
    _families()["http"].labels(dialect, str(status)).inc()
    _families()["http_seconds"].labels(dialect).observe(seconds)


def open_connections(https: int, mqtt: int) -> None:
    """This process's open connections per listener (summed over live processes)."""
    gauge = _families()["connections"]
    gauge.labels("https").set(https)
    gauge.labels("mqtt").set(mqtt)
    _families()["mqtt"].set(mqtt)


def db_pool_wait(seconds: float) -> None:
    _families()["pool_wait"].observe(seconds)


def delivery_failed() -> None:
    _families()["delivery_failures"].inc()


class _Sampled(Collector):
    """The database's figures, read for this scrape."""

    def __init__(self, operations: Mapping[tuple[str, str], int], backlog: int) -> None:
        self._operations, self._backlog = operations, backlog

    def collect(self) -> Iterable[GaugeMetricFamily]:
        ops = GaugeMetricFamily(
            "provisiond_operations", "claim operations by kind and state", labels=["kind", "state"]
        )
        for (kind, state), count in sorted(self._operations.items()):
            ops.add_metric([kind, state], count)
        yield ops
        yield GaugeMetricFamily(
            "provisiond_outbox_backlog", "events waiting for delivery", value=self._backlog
        )


def exposition(operations: Mapping[tuple[str, str], int], backlog: int) -> bytes:
    """The text a scrape gets: every family (all processes' in multiprocess mode) and the samples."""
    families = _families()
    registry = CollectorRegistry()
    registry.register(_Sampled(operations, backlog))
    if _multiprocess:
        MultiProcessCollector(registry, str(_multiprocess[-1]))  # type: ignore[no-untyped-call]
    else:
        for family in families.values():
            registry.register(family)
    return generate_latest(registry)
