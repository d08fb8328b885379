"""Reaching a checked address: resolution within the deadline (every address checked unless the
host is explicitly allowed), and sockets whose every wait is bounded by the time left, so a server
that trickles bytes cannot hold the caller past the deadline."""

from __future__ import annotations

import functools
import ipaddress
import queue
import socket
import ssl
import threading
from collections.abc import Iterable
from typing import Any

from kestrel.urlfetch.addresses import IPAddress, check_address
from kestrel.urlfetch.deadline import Deadline
from kestrel.urlfetch.errors import FetchRefused
from kestrel.urlfetch.urls import Target, normalize_allowed


def _getaddrinfo_within(host: str, port: int, deadline: Deadline) -> list[Any]:
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


def resolve(target: Target, allowed_hosts: Iterable[str], deadline: Deadline) -> list[IPAddress]:
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
    if target.written_host in {normalize_allowed(h) for h in allowed_hosts}:
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


def _arm(sock: socket.socket, deadline: Deadline | None) -> None:
    if deadline is not None:
        sock.settimeout(deadline.remaining())


class DeadlineSocket(socket.socket):
    """A TCP socket that gives each receive/send only the time left on the call's deadline, so a
    trickling server (one byte just before each timeout) still cannot outlast it."""

    deadline: Deadline | None = None

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        _arm(self, self.deadline)
        return super().recv_into(buffer, nbytes, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        _arm(self, self.deadline)
        super().sendall(data, flags)


class DeadlineSSLSocket(ssl.SSLSocket):
    """The TLS twin of DeadlineSocket (an SSL read/handshake honours the timeout as a whole)."""

    deadline: Deadline | None = None

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


def connect(target: Target, addresses: list[IPAddress], deadline: Deadline) -> socket.socket:
    """A connected (and for https, verified) socket to the first checked address that answers."""
    last_error: OSError | None = None
    for address in addresses:
        ip: IPAddress = address
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            ip = address.ipv4_mapped  # checked as its IPv4 address, so reach it as one
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        sock = DeadlineSocket(family, socket.SOCK_STREAM)
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


def _start_tls(sock: socket.socket, target: Target, deadline: Deadline) -> socket.socket:
    context = _tls_context()
    context.sslsocket_class = DeadlineSSLSocket
    try:
        # server_hostname gives SNI (skipped by ssl for address literals) and is what the
        # certificate is checked against, although the socket is connected to the checked IP.
        tls = context.wrap_socket(sock, server_hostname=target.host, do_handshake_on_connect=False)
    except BaseException:
        sock.close()
        raise
    try:
        assert isinstance(tls, DeadlineSSLSocket)
        tls.deadline = deadline
        tls.settimeout(deadline.remaining())
        tls.do_handshake()
    except BaseException:
        tls.close()
        raise
    return tls
