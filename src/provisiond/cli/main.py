"""``provisiond``: init, serve, and the command groups of the operator contract."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provisiond.cli.audit import audit_app
from provisiond.cli.claims import partner_app, worker
from provisiond.cli.common import JsonFlag, configure_logging, emit, fail, group, run, with_db, with_settings
from provisiond.cli.dps import dps_app
from provisiond.cli.enroll import enroll_app
from provisiond.cli.events import events_app
from provisiond.cli.operations import claim_app, operation_app
from provisiond.cli.secrets import secrets_app
from provisiond.cli.settings import settings_app
from provisiond.cli.sphere import tenant_app
from provisiond.config import Settings, init_conflicts
from provisiond.domain.audit import AuditContext
from provisiond.services import audit
from provisiond.services.setup import initialise

__all__ = ["app"]

app = group("Self-hosted device onboarding service.")
app.add_typer(dps_app, name="dps")
app.add_typer(partner_app, name="partner")
app.add_typer(tenant_app, name="tenant")
app.add_typer(secrets_app, name="secrets")
app.add_typer(settings_app, name="settings")
app.add_typer(audit_app, name="audit")
app.add_typer(enroll_app, name="enroll")
app.add_typer(claim_app, name="claim")
app.add_typer(operation_app, name="operation")
app.add_typer(events_app, name="events")
app.command("worker")(worker)

Port = Annotated[int | None, typer.Option("--port", help="HTTPS port [default: recorded, else 8443]")]
MqttPort = Annotated[int | None, typer.Option("--mqtt-port", help="MQTT port [default: recorded, else 8883]")]
ServiceHost = Annotated[
    str | None, typer.Option("--service-host", help="host name clients use [default: localhost]")
]


@app.command()
@with_settings("port", "mqtt_port", "service_host")
def init(
    settings: Settings,
    port: Port = None,
    mqtt_port: MqttPort = None,
    service_host: ServiceHost = None,
    as_json: JsonFlag = False,
) -> None:
    """Create the data dir, migrate the database, create the dev CA and the DPS instance.

    On an initialised data dir it changes nothing and prints the same; a port that differs from
    the recorded one is refused (``provisiond settings set`` changes a recorded setting).
    """
    conflicts = init_conflicts(settings)
    if conflicts:
        raise fail(
            f"this data dir is initialised and init changes nothing: {'; '.join(conflicts)}",
            2,
        )
    result = run(with_db(settings, lambda db: initialise(settings, db)))
    if service_host is not None and service_host != result.service_host:
        raise fail(
            f"this data dir's DPS instance was made for the service host {result.service_host}, "
            f"not {service_host}, and it cannot change: init a new data dir for another host name",
            2,
        )
    data = result.as_json()
    human = "\n".join(f"{name}: {value}" for name, value in data.items())
    emit(as_json, data, human)


@app.command()
@with_settings("host", "port", "mqtt_port", "service_host", "tls_cert", "tls_key", "processes")
def serve(
    settings: Settings,
    host: Annotated[str | None, typer.Option("--host", help="address to bind [default: 127.0.0.1]")] = None,
    port: Port = None,
    mqtt_port: MqttPort = None,
    no_mqtt: Annotated[bool, typer.Option("--no-mqtt", help="do not open the MQTT port")] = False,
    service_host: ServiceHost = None,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="server certificate chain (PEM)")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="server private key (PEM)")] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            help="processes sharing the HTTPS port; more than 1 needs PostgreSQL [default: 1]",
        ),
    ] = None,
) -> None:
    """Serve every API over HTTPS; runs ``init`` first when the data dir is new. Stops on SIGTERM.

    With ``--processes N`` the HTTPS socket is bound once and served by N processes (PostgreSQL
    only); the first of them also owns the MQTT port. A value below 1 is refused by the settings
    with one line, like every other bad setting.
    """
    from provisiond.server import serve as run_server

    configure_logging(settings)
    result = run(with_db(settings, lambda db: initialise(settings, db)))
    # The server's own work (the worker, pending custom allocations) is by provisiond, not by the
    # operator who started it; each request and MQTT message sets its own origin.
    with audit.acting(AuditContext()):
        run_server(settings, result, mqtt=not no_mqtt, processes=settings.processes)
