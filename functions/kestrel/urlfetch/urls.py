"""A user-given URL taken apart the strict way: http(s) only, no credentials, a host that is a
valid name or an address literal in any spelling a resolver would accept (decoded here, so the
address checks see the real address), and the request target percent-encoded."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, quote, urlsplit

from kestrel.urlfetch.addresses import IPAddress
from kestrel.urlfetch.errors import refuse_url

MAX_URL_LENGTH = 2048

_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_HEX_OR_DEC = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")
# Printable ASCII that may stay as it is in a request target; everything else is percent-encoded.
_SAFE_IN_TARGET = "!#$%&'()*+,/:;=?@[]~"


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str  # ASCII, lower case, no brackets, no trailing dot; canonical form for addresses
    written_host: str  # the host as the URL spells it (same normalisation): what allowed_hosts match
    ip: IPAddress | None  # set when the host is an address literal
    port: int
    host_header: str
    request_target: str  # path + query, percent-encoded


def normalize_allowed(host: str) -> str:
    # Same normalisation as a URL's host gets below, so "[::1]", "LocalHost." and "::1" all match.
    return host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")


def _ipv4_label(label: str, host: str) -> int:
    if label[:2].lower() == "0x":
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        if not set(label) <= set("01234567"):
            raise refuse_url(f"the URL's host {host!r} is not a valid IPv4 address")
        return int(label, 8)
    return int(label)


def parse_ipv4_number(host: str) -> ipaddress.IPv4Address | None:
    """Decode a host that a URL parser (WHATWG) or inet_aton would read as IPv4: 127.1, 0x7f.1,
    2130706433, 017700000001, ... Returns None when the host is a name, refuses a malformed number."""
    labels = host.split(".")
    if not _HEX_OR_DEC.fullmatch(labels[-1]):
        return None  # a name ("example.com"), not a number
    if len(labels) > 4 or not all(_HEX_OR_DEC.fullmatch(label) for label in labels):
        raise refuse_url(f"the URL's host {host!r} is neither a valid name nor a valid IPv4 address")
    numbers = [_ipv4_label(label, host) for label in labels]
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise refuse_url(f"the URL's host {host!r} is not a valid IPv4 address")
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _split(url: str) -> tuple[SplitResult, int | None]:
    if len(url) > MAX_URL_LENGTH:
        raise refuse_url(f"the URL is longer than {MAX_URL_LENGTH} characters")
    # Control characters and spaces could smuggle headers or be read differently by other parsers.
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise refuse_url("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise refuse_url(f"the URL is malformed ({exc})") from None
    return parts, port


def _check_shape(parts: SplitResult, port: int | None) -> str:
    """The lower-case scheme, once the scheme, credentials and port are acceptable."""
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        has = f"the scheme {scheme!r}" if scheme else "no scheme"
        raise refuse_url(f"the URL has {has}; only http and https URLs are fetched")
    if "@" in parts.netloc:
        raise refuse_url("the URL contains a user name or password (user:pass@host); they are not allowed")
    if port == 0:
        raise refuse_url("the URL's port 0 is not valid")
    return scheme


def _ipv6_host(host: str) -> IPAddress:
    if "%" in host:
        raise refuse_url("the URL's IPv6 host has a zone identifier (%...); it is not allowed")
    try:
        return ipaddress.IPv6Address(host)
    except ValueError:
        raise refuse_url(f"the URL's host [{host}] is not a valid IPv6 address") from None


def _named_host(host: str, raw_host: str) -> tuple[str, IPAddress | None]:
    """A name's ASCII form, or the IPv4 address it spells."""
    if not host.isascii():
        try:  # IDNA also folds look-alikes, e.g. full-width digits, before the checks below.
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise refuse_url(f"the URL's host {raw_host!r} is not a valid name") from None
    ip = parse_ipv4_number(host)
    if ip is None and (len(host) > 253 or not all(_LABEL.fullmatch(x) for x in host.split("."))):
        raise refuse_url(f"the URL's host {raw_host!r} is not a valid name")
    return host, ip


def _host(parts: SplitResult) -> tuple[str, IPAddress | None]:
    """The host as written (normalised) and, for an address literal, its address."""
    raw_host = parts.hostname or ""
    host = raw_host[:-1] if raw_host.endswith(".") else raw_host  # "example.com." is a full name
    if not host:
        raise refuse_url("the URL has no host")
    if parts.netloc.startswith("[") or ":" in host:
        return host, _ipv6_host(host)
    return _named_host(host, raw_host)


def parse_url(url: str) -> Target:
    """The URL's parts as the fetcher uses them, or FetchRefused (400) saying what is wrong."""
    parts, port = _split(url)
    scheme = _check_shape(parts, port)
    written_host, ip = _host(parts)
    host = str(ip) if ip is not None else written_host
    default_port = 443 if scheme == "https" else 80
    effective_port = port if port is not None else default_port
    shown_host = f"[{host}]" if isinstance(ip, ipaddress.IPv6Address) else host
    host_header = shown_host if effective_port == default_port else f"{shown_host}:{effective_port}"
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Target(
        url=url,
        scheme=scheme,
        host=host,
        written_host=written_host,
        ip=ip,
        port=effective_port,
        host_header=host_header,
        request_target=quote(target, safe=_SAFE_IN_TARGET),
    )
