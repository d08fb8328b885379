"""Which IP addresses a user-given URL may reach: public unicast ones only (no loopback, private,
link-local, cloud metadata, ..., nor an IPv6 form that embeds such an IPv4 address)."""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS/GCP/Azure/OpenStack instance metadata
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "169.254.170.23",  # AWS EKS pod identity agent
        "100.100.100.200",  # Alibaba Cloud metadata
        "fd00:ec2::254",  # AWS instance metadata over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity agent over IPv6
    )
)

_V4_RANGES: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "unspecified"),  # Linux connects 0.0.0.0 to the local host
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("100.64.0.0/10", "shared address space (CGNAT)"),
        ("169.254.0.0/16", "link-local"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
        ("192.0.0.0/24", "reserved"),  # IETF protocol assignments
        ("192.0.2.0/24", "reserved"),  # documentation
        ("198.51.100.0/24", "reserved"),  # documentation
        ("203.0.113.0/24", "reserved"),  # documentation
        ("198.18.0.0/15", "reserved"),  # benchmarking
        ("192.88.99.0/24", "reserved"),  # deprecated 6to4 relay anycast
    )
)

_V6_RANGES: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), reason)
    for net, reason in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("fc00::/7", "private"),  # unique local
        ("fec0::/10", "private"),  # deprecated site-local
        ("fe80::/10", "link-local"),
        ("ff00::/8", "multicast"),
        ("64:ff9b:1::/48", "private"),  # local-use NAT64
        ("2001:db8::/32", "reserved"),  # documentation
        ("100::/64", "reserved"),  # discard-only
    )
)

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def check_address(ip: IPAddress) -> str | None:
    """None if ``ip`` is a public unicast address we may connect to, else why not (a short phrase)."""
    if ip in _METADATA:
        return "cloud metadata"
    if isinstance(ip, ipaddress.IPv4Address):
        for net, reason in _V4_RANGES:
            if ip in net:
                return reason
        # Anything else the registries do not call globally reachable (the explicit table above
        # gives the common cases their own words; this catches the rest as Python knows them).
        return None if ip.is_global else "reserved"
    # IPv6 forms that carry an IPv4 address reach that address: judge the embedded one.
    if ip.ipv4_mapped is not None:
        inner = check_address(ip.ipv4_mapped)
        return None if inner is None else f"IPv4-mapped address of {inner}"
    if ip in _NAT64:
        inner = check_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return None if inner is None else f"NAT64 address of {inner}"
    if ip.sixtofour is not None:
        inner = check_address(ip.sixtofour)
        return None if inner is None else f"6to4 address of {inner}"
    for net6, reason in _V6_RANGES:
        if ip in net6:
            return reason
    # ::/8 holds the deprecated IPv4-compatible form (::127.0.0.1), which Python calls global.
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None
