"""Which Host and Origin a state-changing request may carry, and whose X-Forwarded-* headers count.

A web page the user visits can send requests to the gateway (a form POST, fetch without cors), and
with DNS rebinding even under a name of its own. Such a request is served only when its Host is one
of the gateway's own names and its Origin, when sent, is the gateway itself (or an allowed origin).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"", "0.0.0.0", "::", "*"})


def split_host(host: str | None) -> tuple[str, int | None] | None:
    """(lower-case host name without brackets, port or None) of a Host header; None when malformed."""
    if not host or any(c in host for c in "/?#@ \\") or not host.isascii():
        return None
    try:
        parts = urlsplit("//" + host)
        return (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None


def is_loopback_bind(host: str) -> bool:
    """True when the gateway listens on loopback only (no login needed then)."""
    name = (host or "").strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=256)
def _is_local_address(text: str) -> bool:
    """True when an IP literal is one of this machine's own addresses (it can be bound to)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if address.is_unspecified or address.is_multicast or getattr(address, "ipv4_mapped", None):
        return False
    if address.is_loopback:
        return True
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((text, 0))
        return True
    except OSError:
        return False


class HostRules:
    """The gateway's own names (loopback, the bound address, allowed_hosts) and allowed origins."""

    def __init__(self, bind_host: str, allowed_hosts=(), allowed_origins=()):
        bind = (bind_host or "").strip().strip("[]").lower()
        self.wildcard = bind in WILDCARDS
        self.names = set(LOOPBACK_NAMES) | {h.strip().strip("[]").lower() for h in allowed_hosts if h.strip()}
        if not self.wildcard:
            self.names.add(bind)
        if self.wildcard:
            # Bound to every interface: the machine's own name is one of ours too.
            for name in (socket.gethostname(), socket.getfqdn()):
                if name:
                    self.names.add(name.lower())
        self.any_host = "*" in self.names
        self.origins = {o.strip().rstrip("/").lower() for o in allowed_origins if o.strip()}

    def host_allowed(self, host: str | None) -> bool:
        """True when a Host header names this gateway."""
        parsed = split_host(host)
        if parsed is None:
            return False
        name = parsed[0]
        if self.any_host or name in self.names:
            return True
        # Bound to every interface, the machine's own IP addresses are its names (a DNS-rebinding
        # attack needs a name of its own, never an IP literal of this machine).
        return self.wildcard and _is_local_address(name)

    def origin_allowed(self, host: str | None, origin: str | None, scheme: str = "http") -> bool:
        """True when no Origin is sent, or it is the gateway itself (same scheme, host and port) or allowed."""
        if origin is None:
            return True
        origin = origin.strip().rstrip("/").lower()
        if origin in self.origins or "*" in self.origins:
            return True
        try:
            parts = urlsplit(origin)
            origin_host, origin_port = (parts.hostname or ""), parts.port
        except ValueError:
            return False
        if parts.scheme != scheme or not origin_host:
            return False  # another scheme, "null" (sandboxed frames, file://) and anything odd
        mine = split_host(host)
        if mine is None:
            return False
        default = 443 if parts.scheme == "https" else 80
        return origin_host == mine[0] and (origin_port or default) == (mine[1] or default)


def parse_networks(values) -> tuple:
    """ip_network objects of trusted_proxies entries (addresses or CIDR ranges)."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def peer_trusted(peer: str | None, networks: tuple) -> bool:
    """True when the direct peer is one of the trusted proxies."""
    if not peer or not networks:
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped or address
    return any(address.version == net.version and address in net for net in networks)


def forwarded_client(headers, peer: str, networks: tuple) -> tuple[str, str | None]:
    """(client address, scheme or None) from X-Real-IP / X-Forwarded-For / X-Forwarded-Proto, read only
    when the peer is a trusted proxy; the first address that is not a trusted proxy, from the right."""
    if not peer_trusted(peer, networks):
        return peer, None
    client = peer
    chain = [part.strip() for part in headers.get("X-Forwarded-For", "").split(",") if part.strip()]
    for hop in reversed(chain):
        client = hop
        if not peer_trusted(hop, networks):
            break
    real = headers.get("X-Real-IP", "").strip()
    if real and not chain:
        client = real
    try:
        ipaddress.ip_address(client.split("%", 1)[0])
    except ValueError:
        client = peer
    scheme = headers.get("X-Forwarded-Proto", headers.get("X-Scheme", "")).split(",")[0].strip().lower()
    return client, scheme if scheme in ("http", "https") else None
