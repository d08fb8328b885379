"""Generated spellings of non-public addresses: every one is refused before any connection.

A user can write an address in many forms a resolver or URL parser accepts (2130706433, 0x7f.1,
0177.0.0.01, [::ffff:7f00:1], [0:0::1]...). Hypothesis picks an address from each non-public range
(loopback, private, link-local/metadata, shared, unspecified, multicast, reserved, IPv6 unique
local and link-local, IPv4-mapped, NAT64, 6to4) and writes it in a random spelling; the fetcher
must refuse it by its address check, and no socket may connect anywhere (the test makes
connecting fail loudly). Short profile: 200 URLs; ``make soak``: 5,000."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kestrel.urlfetch.fetch import FetchPolicy, FetchRefused, check_address, fetch_image_bytes
from tests.soak import SOAK, examples, record

REFUSED_V4 = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "0.0.0.0/8",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "192.0.0.0/24",
    "198.18.0.0/15",
]
REFUSED_V6 = ["::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "::/128"]


def _v4_in(network: str) -> st.SearchStrategy[ipaddress.IPv4Address]:
    net = ipaddress.IPv4Network(network)
    return st.integers(int(net.network_address), int(net.broadcast_address)).map(ipaddress.IPv4Address)


def _v6_in(network: str) -> st.SearchStrategy[ipaddress.IPv6Address]:
    net = ipaddress.IPv6Network(network)
    return st.integers(int(net.network_address), int(net.broadcast_address)).map(ipaddress.IPv6Address)


def _v4_part(value: int, style: str) -> str:
    return {"dec": str(value), "hex": hex(value), "HEX": f"0X{value:X}", "oct": f"0{value:o}"}[style]


@st.composite
def v4_spellings(draw: st.DrawFn, address: ipaddress.IPv4Address) -> str:
    """``address`` as one, two, three or four numbers, each decimal, hex or octal."""
    value = int(address)
    octets = list(address.packed)
    shape = draw(st.sampled_from([1, 2, 3, 4]))
    parts = {1: [value], 2: [octets[0], value & 0xFFFFFF], 3: [octets[0], octets[1], value & 0xFFFF], 4: octets}[shape]
    styles = st.sampled_from(["dec", "hex", "HEX", "oct"])
    return ".".join(_v4_part(part, draw(styles)) for part in parts)


@st.composite
def v6_spellings(draw: st.DrawFn, address: ipaddress.IPv6Address) -> str:
    """``address`` compressed, exploded, upper case, or with its last 32 bits written as IPv4."""
    style = draw(st.sampled_from(["compressed", "exploded", "upper", "dotted"]))
    if style == "exploded":
        text = address.exploded
    elif style == "upper":
        text = address.compressed.upper()
    elif style == "dotted":
        head = ipaddress.IPv6Address(int(address) & ~0xFFFFFFFF).exploded.rsplit(":", 2)[0]
        text = f"{head}:{ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)}"
    else:
        text = address.compressed
    return f"[{text}]"


def _embedded(v4: ipaddress.IPv4Address, prefix: int) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(prefix | int(v4))


_ANY_REFUSED_V4 = st.one_of(*[_v4_in(net) for net in REFUSED_V4])
HOSTS = st.one_of(
    _ANY_REFUSED_V4.flatmap(v4_spellings),
    st.one_of(*[_v6_in(net) for net in REFUSED_V6]).flatmap(v6_spellings),
    _ANY_REFUSED_V4.map(lambda v4: _embedded(v4, 0xFFFF << 32)).flatmap(v6_spellings),  # IPv4-mapped
    _ANY_REFUSED_V4.map(lambda v4: _embedded(v4, 0x64FF9B << 96)).flatmap(v6_spellings),  # NAT64
    _ANY_REFUSED_V4.map(lambda v4: ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80))).flatmap(v6_spellings),
)


def test_the_generated_addresses_are_all_non_public() -> None:
    # The strategy itself is right: each range is one that check_address refuses.
    for net in REFUSED_V4:
        assert check_address(ipaddress.IPv4Network(net).network_address + 1) is not None, net
    for net in REFUSED_V6:
        assert check_address(ipaddress.IPv6Network(net).network_address) is not None, net


@settings(
    max_examples=examples(short=200, soak=5000),
    deadline=None,
    database=None,
    derandomize=not SOAK,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(host=HOSTS, port=st.sampled_from(["", ":80", ":8080", ":443"]), scheme=st.sampled_from(["http", "https"]))
def test_every_spelling_of_a_non_public_address_is_refused(
    no_connect: list[Any], host: str, port: str, scheme: str
) -> None:
    url = f"{scheme}://{host}{port}/image.jpg"
    record("security", ssrf_urls_tried=1)
    with pytest.raises(FetchRefused) as refused:
        fetch_image_bytes(url, FetchPolicy(timeout_seconds=2))
    assert 400 <= refused.value.status < 500, url
    # Refused by the address check (it understood the spelling), not as a malformed URL.
    assert "only public addresses" in refused.value.detail, (url, refused.value.detail)
    assert no_connect == []
