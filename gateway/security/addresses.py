"""Addresses a webhook may never reach: link-local ranges, where cloud metadata services answer."""

from __future__ import annotations

import ipaddress

FORBIDDEN = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))


def forbidden_address(text: str) -> bool:
    """True for a link-local or metadata address (also written as an IPv4-mapped IPv6 address)."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0].strip("[]"))
    except ValueError:
        return False
    address = getattr(address, "ipv4_mapped", None) or address
    return address.is_link_local or any(address.version == n.version and address in n for n in FORBIDDEN)
