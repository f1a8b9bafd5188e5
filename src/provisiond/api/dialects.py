"""The registered dialects: the one list ``create_app`` mounts.

Adding a dialect means writing its package (routes, schemas, mapping, errors with its
``ErrorPolicy``, a ``Dialect`` next to its router) and adding it here.

The order is the order the routers are included (the order routes are matched in); it
does not decide who owns a path (``edge.owner_of`` asks fixed prefixes first) and no path is
served by routes of two dialects.
"""

from __future__ import annotations

from provisiond.api import bench, metrics
from provisiond.api.dps_device import routes as dps_device
from provisiond.api.dps_service import routes as dps_service
from provisiond.api.edge import Dialect
from provisiond.api.pki import routes as pki
from provisiond.api.reseller import routes as reseller
from provisiond.api.sphere import routes as sphere
from provisiond.api.zerotouch import routes as zerotouch

__all__ = ["DIALECTS"]

DIALECTS: tuple[Dialect, ...] = (
    dps_service.DIALECT,  # /enrollments…, /enrollmentGroups…, /registrations…
    dps_device.DIALECT,  # /{idScope}/registrations/…, and MQTT over WebSocket
    metrics.DIALECT,  # /metrics
    bench.DIALECT,  # benchmark baselines, only with bench_endpoints
    zerotouch.DIALECT,  # /v1/…
    reseller.DIALECT,  # /reseller/…
    sphere.DIALECT,  # /v2/tenants…
    pki.DIALECT,  # /crl/{policy}.crl, the one route served without authentication
)
