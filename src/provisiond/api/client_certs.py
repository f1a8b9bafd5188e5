"""The client certificate chain of a request, in the ASGI TLS extension, whoever terminated TLS.

Two sources, one result (``scope["extensions"]["tls"]["client_cert_chain"]``, PEM strings,
leaf first, as the ASGI TLS extension defines it):

- our own TLS front, which leaves the presented chain in ``tls.front.peer_chain``;
- a TLS-terminating proxy in front of us (Envoy), which forwards the certificate and chain in
  ``x-forwarded-client-cert`` (``Cert="…";Chain="…"``, URL-encoded PEM). That header is believed
  only from the configured proxy addresses; from anywhere else it is an attempt to forge a
  certificate, recorded as ``client_cert_error`` so that certificate authentication refuses it.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
import urllib.parse
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from provisiond.tls.front import peer_chain

__all__ = ["ClientCertificateMiddleware", "parse_xfcc"]

XFCC = b"x-forwarded-client-cert"
_PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
_PAIR_RE = re.compile(r'\s*([A-Za-z]+)=("(?:[^"\\]|\\.)*"|[^;,]*)\s*(;|,|$)')


def parse_xfcc(value: str) -> list[str]:
    """The PEM chain (leaf first) of the last element of an XFCC header (the nearest proxy's)."""
    elements: list[dict[str, str]] = [{}]
    pos = 0
    while pos < len(value):
        match = _PAIR_RE.match(value, pos)
        if match is None or match.end() == pos:
            raise ValueError("malformed x-forwarded-client-cert")
        key, raw, sep = match.groups()
        elements[-1][key.lower()] = urllib.parse.unquote(raw[1:-1] if raw.startswith('"') else raw)
        if sep == ",":
            elements.append({})
        pos = match.end()
    last = elements[-1]
    leaf = _PEM_RE.findall(last.get("cert", ""))
    chain = _PEM_RE.findall(last.get("chain", ""))
    if not leaf and not chain:
        raise ValueError("x-forwarded-client-cert carries no certificate")
    certs = leaf + [pem for pem in chain if pem not in leaf]
    return certs


class ClientCertificateMiddleware:
    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[str] = ()) -> None:
        self.app = app
        self.proxies = [ipaddress.ip_network(cidr, strict=False) for cidr in trusted_proxies]

    def _trusted(self, scope: Scope) -> bool:
        client = scope.get("client")
        if not client or not self.proxies:
            return False
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        return any(address in network for network in self.proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        chain = [ssl.DER_cert_to_PEM_cert(der) for der in peer_chain.get()]
        error = None
        header = next((v for k, v in scope["headers"] if k == XFCC), None)
        if header is not None:
            if not self._trusted(scope):
                error = "x-forwarded-client-cert came from an address that is not a configured proxy"
                chain = []
            else:
                try:
                    chain = parse_xfcc(header.decode("latin-1"))
                except ValueError as exc:
                    error, chain = str(exc), []
        tls = {"client_cert_chain": chain, "client_cert_error": error}
        extensions = {**scope.get("extensions", {}), "tls": tls}
        await self.app({**scope, "extensions": extensions}, receive, send)
