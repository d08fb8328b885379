"""Fetch an image from a user-given URL without letting the URL reach into our own network (SSRF).

The classify endpoint accepts ``{"_url": ...}`` records, so any caller can make the service open a
connection to an address of their choice. This module is the only place that does so, and it:

- accepts only ``http``/``https`` URLs with a plain host (no ``user:pass@``), at most 2048 characters;
- resolves the host itself (``socket.getaddrinfo``; IPv4 literals in any spelling that a resolver
  would accept, such as ``127.1`` or ``0x7f.1``, are decoded here first so the check sees the real
  address) and refuses the host when ANY of its addresses is not public (``check_address``), unless
  the host is named in ``FetchPolicy.allowed_hosts`` (local development and tests);
- connects to the address it checked, never to the name again (no DNS-rebinding window), sending the
  original ``Host`` header and, for https, SNI plus certificate verification against the host name;
- follows at most ``max_redirects`` redirects by hand, validating every hop the same way;
- caps the body (``Content-Length`` up front, then while streaming) and holds one total deadline for
  the whole call: every socket operation waits at most for the time that is left, so a server that
  trickles bytes cannot hold the caller past it.

Every failure comes out as ``FetchRefused`` with a sentence for the record's ``_status.text`` and the
code for its ``_status.code``.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import queue
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from kestrel.config import FetchSettings

__all__ = ["FetchPolicy", "FetchRefused", "check_address", "fetch_image_bytes"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048
_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "Kestrel-fetch/1 (+image classification)"


class FetchRefused(Exception):
    """The URL was not fetched; ``detail`` says why, ``status`` is the code for the record's _status."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


@dataclass(frozen=True)
class FetchPolicy:
    max_bytes: int = 10 * 1024 * 1024
    timeout_seconds: float = 10.0  # total budget, connect + read, across redirects
    max_redirects: int = 3
    # Hosts (exact text of the URL's host, case-insensitive) that may resolve to non-public
    # addresses: explicit exceptions for local development and tests, e.g. {"localhost"}.
    allowed_hosts: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: FetchSettings) -> FetchPolicy:
        """The policy for KESTREL_FETCH_* (read by kestrel.config); unset variables keep the defaults."""
        return cls(
            max_bytes=settings.max_bytes,
            timeout_seconds=settings.timeout_seconds,
            allowed_hosts=settings.allowed_hosts,
        )

    @classmethod
    def from_env(cls) -> FetchPolicy:
        return cls.from_settings(FetchSettings.from_env())


def _normalize_allowed(host: str) -> str:
    # Same normalisation as a URL's host gets below, so "[::1]", "LocalHost." and "::1" all match.
    return host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")


# ---------------------------------------------------------------------------------------------
# Address classification


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


# ---------------------------------------------------------------------------------------------
# URL parsing


@dataclass(frozen=True)
class _Target:
    url: str
    scheme: str
    host: str  # ASCII, lower case, no brackets, no trailing dot; canonical form for addresses
    written_host: str  # the host as the URL spells it (same normalisation): what allowed_hosts match
    ip: IPAddress | None  # set when the host is an address literal
    port: int
    host_header: str
    request_target: str  # path + query, percent-encoded


_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_HEX_OR_DEC = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")
# Printable ASCII that may stay as it is in a request target; everything else is percent-encoded.
_SAFE_IN_TARGET = "!#$%&'()*+,/:;=?@[]~"


def _refuse_url(message: str) -> FetchRefused:
    return FetchRefused(message, 400)


def _parse_ipv4_number(host: str) -> ipaddress.IPv4Address | None:
    """Decode a host that a URL parser (WHATWG) or inet_aton would read as IPv4: 127.1, 0x7f.1,
    2130706433, 017700000001, ... Returns None when the host is a name, refuses a malformed number."""
    labels = host.split(".")
    if not _HEX_OR_DEC.fullmatch(labels[-1]):
        return None  # a name ("example.com"), not a number
    if len(labels) > 4 or not all(_HEX_OR_DEC.fullmatch(label) for label in labels):
        raise _refuse_url(f"the URL's host {host!r} is neither a valid name nor a valid IPv4 address")
    numbers = []
    for label in labels:
        if label[:2].lower() == "0x":
            numbers.append(int(label[2:] or "0", 16))
        elif len(label) > 1 and label.startswith("0"):
            if not set(label) <= set("01234567"):
                raise _refuse_url(f"the URL's host {host!r} is not a valid IPv4 address")
            numbers.append(int(label, 8))
        else:
            numbers.append(int(label))
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise _refuse_url(f"the URL's host {host!r} is not a valid IPv4 address")
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _parse_url(url: str) -> _Target:
    if len(url) > MAX_URL_LENGTH:
        raise _refuse_url(f"the URL is longer than {MAX_URL_LENGTH} characters")
    # Control characters and spaces could smuggle headers or be read differently by other parsers.
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise _refuse_url("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _refuse_url(f"the URL is malformed ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        has = f"the scheme {scheme!r}" if scheme else "no scheme"
        raise _refuse_url(f"the URL has {has}; only http and https URLs are fetched")
    if "@" in parts.netloc:
        raise _refuse_url("the URL contains a user name or password (user:pass@host); they are not allowed")
    if port == 0:
        raise _refuse_url("the URL's port 0 is not valid")
    raw_host = parts.hostname or ""
    host = raw_host[:-1] if raw_host.endswith(".") else raw_host  # "example.com." is a full name
    if not host:
        raise _refuse_url("the URL has no host")
    ip: IPAddress | None = None
    if parts.netloc.startswith("[") or ":" in host:
        if "%" in host:
            raise _refuse_url("the URL's IPv6 host has a zone identifier (%...); it is not allowed")
        try:
            ip = ipaddress.IPv6Address(host)
        except ValueError:
            raise _refuse_url(f"the URL's host [{host}] is not a valid IPv6 address") from None
    else:
        if not host.isascii():
            try:  # IDNA also folds look-alikes, e.g. full-width digits, before the checks below.
                host = host.encode("idna").decode("ascii").lower()
            except UnicodeError:
                raise _refuse_url(f"the URL's host {raw_host!r} is not a valid name") from None
        ip = _parse_ipv4_number(host)
        if ip is None and (len(host) > 253 or not all(_LABEL.fullmatch(x) for x in host.split("."))):
            raise _refuse_url(f"the URL's host {raw_host!r} is not a valid name")
    written_host = host
    if ip is not None:
        host = str(ip)
    default_port = 443 if scheme == "https" else 80
    effective_port = port if port is not None else default_port
    shown_host = f"[{host}]" if isinstance(ip, ipaddress.IPv6Address) else host
    host_header = shown_host if effective_port == default_port else f"{shown_host}:{effective_port}"
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return _Target(
        url=url,
        scheme=scheme,
        host=host,
        written_host=written_host,
        ip=ip,
        port=effective_port,
        host_header=host_header,
        request_target=quote(target, safe=_SAFE_IN_TARGET),
    )


# ---------------------------------------------------------------------------------------------
# Resolution


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left; raises TimeoutError once none are."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("fetch deadline passed")
        return left


def _getaddrinfo_within(host: str, port: int, deadline: _Deadline) -> list[Any]:
    """getaddrinfo has no timeout of its own, so it runs in a daemon thread we stop waiting for."""
    answer: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()

    def lookup() -> None:
        try:
            answer.put((True, socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))
        except Exception as exc:  # noqa: BLE001 - handed over to the waiting caller, which decides
            answer.put((False, exc))

    threading.Thread(target=lookup, name=f"fetch-resolve-{host}", daemon=True).start()
    try:
        ok, value = answer.get(timeout=deadline.remaining())
    except queue.Empty:
        raise TimeoutError("resolving took too long") from None
    if not ok:
        raise value
    return list(value)


def _resolve(target: _Target, policy: FetchPolicy, deadline: _Deadline) -> list[IPAddress]:
    """The addresses to connect to, each one checked (all of them, unless the host is allowed)."""
    if target.ip is not None:
        addresses: list[IPAddress] = [target.ip]
    else:
        try:
            infos = _getaddrinfo_within(target.host, target.port, deadline)
        except (socket.gaierror, UnicodeError):
            raise FetchRefused(f"cannot resolve host {target.host!r}", 400) from None
        addresses = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            try:
                address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            except ValueError:
                continue  # not an IP family we could connect to anyway
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise FetchRefused(f"cannot resolve host {target.host!r}", 400)
    # Exact text: allowing "127.0.0.1" does not allow its other spellings ("127.1", "2130706433").
    if target.written_host in {_normalize_allowed(h) for h in policy.allowed_hosts}:
        return addresses
    for address in addresses:
        reason = check_address(address)
        if reason is not None:
            where = "is" if target.ip is not None else "resolves to"
            raise FetchRefused(
                f"the URL's host {where} {_a_reason_address(reason)} ({address}); only public addresses are fetched",
                400,
            )
    return addresses


def _a_reason_address(reason: str) -> str:
    """ "private" -> "a private address", "shared address space (CGNAT)" -> "an address in the ..."."""
    if reason.startswith("shared"):
        return f"an address in the {reason}"
    article = "an" if reason[0] in "aeiouIAEIOU" else "a"
    return f"{article} {reason}" if "address" in reason else f"{article} {reason} address"


# ---------------------------------------------------------------------------------------------
# Connection: sockets whose every wait is bounded by the time left on the deadline


def _arm(sock: socket.socket, deadline: _Deadline | None) -> None:
    if deadline is not None:
        sock.settimeout(deadline.remaining())


class _DeadlineSocket(socket.socket):
    """A TCP socket that gives each receive/send only the time left on the call's deadline, so a
    trickling server (one byte just before each timeout) still cannot outlast it."""

    deadline: _Deadline | None = None

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        _arm(self, self.deadline)
        return super().recv_into(buffer, nbytes, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        _arm(self, self.deadline)
        super().sendall(data, flags)


class _DeadlineSSLSocket(ssl.SSLSocket):
    """The TLS twin of _DeadlineSocket (an SSL read/handshake honours the timeout as a whole)."""

    deadline: _Deadline | None = None

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        _arm(self, self.deadline)
        return super().recv_into(buffer, nbytes, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        _arm(self, self.deadline)
        super().sendall(data, flags)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """System trust store, certificate and host name verification on (tests swap this out)."""
    return ssl.create_default_context()


def _connect(target: _Target, addresses: list[IPAddress], deadline: _Deadline) -> socket.socket:
    """A connected (and for https, verified) socket to the first checked address that answers."""
    last_error: OSError | None = None
    for address in addresses:
        ip: IPAddress = address
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            ip = address.ipv4_mapped  # checked as its IPv4 address, so reach it as one
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        sock = _DeadlineSocket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(deadline.remaining())
            sock.connect((str(ip), target.port))
        except TimeoutError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        sock.deadline = deadline
        if target.scheme == "http":
            return sock
        return _start_tls(sock, target, deadline)
    assert last_error is not None
    raise last_error


def _start_tls(sock: socket.socket, target: _Target, deadline: _Deadline) -> socket.socket:
    context = _tls_context()
    context.sslsocket_class = _DeadlineSSLSocket
    try:
        # server_hostname gives SNI (skipped by ssl for address literals) and is what the
        # certificate is checked against, although the socket is connected to the checked IP.
        tls = context.wrap_socket(sock, server_hostname=target.host, do_handshake_on_connect=False)
    except BaseException:
        sock.close()
        raise
    try:
        assert isinstance(tls, _DeadlineSSLSocket)
        tls.deadline = deadline
        tls.settimeout(deadline.remaining())
        tls.do_handshake()
    except BaseException:
        tls.close()
        raise
    return tls


# ---------------------------------------------------------------------------------------------
# One request, and the redirect loop around it


@dataclass
class _Answer:
    status: int
    location: str | None
    body: bytes


def _request(target: _Target, addresses: list[IPAddress], policy: FetchPolicy, deadline: _Deadline) -> _Answer:
    sock = _connect(target, addresses, deadline)
    conn = http.client.HTTPConnection(target.host, target.port)
    conn.sock = sock  # already connected to the checked address: http.client must not connect again
    try:
        conn.putrequest("GET", target.request_target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", target.host_header)
        conn.putheader("User-Agent", _USER_AGENT)
        conn.putheader("Accept", "image/*, */*;q=0.5")
        conn.putheader("Accept-Encoding", "identity")  # no decompression, so no zip bombs
        conn.putheader("Connection", "close")
        conn.endheaders()
        response = conn.getresponse()
        if response.status in _REDIRECTS:
            return _Answer(response.status, response.getheader("Location"), b"")
        if not 200 <= response.status < 300:
            return _Answer(response.status, None, b"")
        return _Answer(response.status, None, _read_body(response, policy.max_bytes))
    finally:
        conn.close()


def _read_body(response: http.client.HTTPResponse, max_bytes: int) -> bytes:
    declared: int | None = None
    if not response.chunked and response.length is not None:
        declared = response.length
        if declared > max_bytes:
            raise FetchRefused(f"the image is {declared} bytes, more than the {max_bytes} bytes allowed", 413)
    body = bytearray()
    while True:
        # Never ask for more than one byte past the cap: that byte is enough to know it is too big.
        chunk = response.read(min(_CHUNK, max_bytes + 1 - len(body)))
        if not chunk:
            break
        body += chunk
        if len(body) > max_bytes:
            raise FetchRefused(f"the image is more than the {max_bytes} bytes allowed", 413)
    if declared is not None and len(body) < declared:
        raise FetchRefused(f"the server closed the connection after {len(body)} of {declared} bytes", 502)
    return bytes(body)


def _refusal_for_status(status: int) -> FetchRefused:
    if status == 404:
        return FetchRefused("the server answered 404 (not found)", 404)
    if 500 <= status < 600:
        return FetchRefused(f"the server answered {status}", 502)
    if 300 <= status < 500:
        return FetchRefused(f"the server answered {status}", 400)
    return FetchRefused(f"the server answered with an unexpected status {status}", 502)


def _hop(current: str, policy: FetchPolicy, deadline: _Deadline) -> _Answer:
    """One request, with network-level failures translated to FetchRefused."""
    target = _parse_url(current)
    try:
        addresses = _resolve(target, policy, deadline)
        return _request(target, addresses, policy, deadline)
    except FetchRefused:
        raise
    except TimeoutError:  # before ConnectionError/OSError: socket.timeout is a TimeoutError
        raise FetchRefused(f"the server did not send the image within {deadline.seconds:g} seconds", 504) from None
    except ConnectionRefusedError:
        raise FetchRefused(f"the server {target.host_header} refused the connection", 502) from None
    except ssl.SSLCertVerificationError as exc:
        raise FetchRefused(
            f"the server's TLS certificate is not valid for {target.host} ({exc.verify_message})", 502
        ) from None
    except ssl.SSLError as exc:
        raise FetchRefused(f"the TLS connection to {target.host} failed ({exc.reason})", 502) from None
    except http.client.HTTPException as exc:  # malformed status line or headers, early close
        raise FetchRefused(f"the server sent an invalid HTTP response ({type(exc).__name__})", 502) from None
    except OSError as exc:  # unreachable network, reset connection, ...
        raise FetchRefused(
            f"cannot connect to {target.host_header} ({exc.strerror or type(exc).__name__})", 502
        ) from None


def fetch_image_bytes(url: str, policy: FetchPolicy) -> bytes:
    """The body of ``url`` (following up to ``policy.max_redirects`` redirects), or FetchRefused."""
    deadline = _Deadline(policy.timeout_seconds)
    current = url
    for hop in range(policy.max_redirects + 1):
        try:
            answer = _hop(current, policy, deadline)
            if answer.status not in _REDIRECTS:
                if 200 <= answer.status < 300:
                    return answer.body
                raise _refusal_for_status(answer.status)
            if not answer.location:
                raise FetchRefused(f"the server answered {answer.status} without a Location", 502)
        except FetchRefused as refused:
            if hop:  # say where the redirects led: the reason may name a URL the user never gave
                refused.detail = f"{refused.detail} (after a redirect to {current[:200]})"
                refused.args = (refused.detail,)
            raise
        current = urljoin(current, answer.location.strip())
    raise FetchRefused(f"the URL redirects more than {policy.max_redirects} times", 400)
