"""The DPS instance a data directory holds: its id scope and the host name it answers to."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DpsInstance"]


@dataclass(frozen=True, slots=True)
class DpsInstance:
    id_scope: str
    service_host: str

    def answers_to(self, host: str, port: int) -> bool:
        """Whether a service token's resource (already decoded) names this instance.

        SDKs sign the host with or without the port, in any case, so both forms are accepted; the
        generated service client (azure-iot-deviceprovisioning) signs its whole endpoint,
        ``https://host[:port]``, so that form is too (the scheme and a trailing ``/`` aside, it
        must name the same host and port).
        """
        wanted = self.service_host.lower()
        name = host.lower()
        if name.startswith("https://"):
            name = name[len("https://") :].rstrip("/")
        return name in (wanted, f"{wanted}:{port}")
