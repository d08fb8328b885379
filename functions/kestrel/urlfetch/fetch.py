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
  trickles bytes cannot hold the caller past it;
- shares a request's budget between all its fetches (``fetch_image_bytes(..., budget=...)``): a
  classify of 10 URL records takes at most ``FetchPolicy.budget_seconds`` for all of them together,
  under API Gateway's 29 s; a fetch cut short by it is a 504, one that had no time left to start a 408.

The parts: ``addresses`` (which addresses are public), ``urls`` (taking a URL apart),
``connection`` (resolving and connecting within the deadline), ``deadline``; this module holds the
policy, one HTTP request and the redirect loop.

Every failure comes out as ``FetchRefused`` with a sentence for the record's ``_status.text`` and the
code for its ``_status.code``.
"""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass
from urllib.parse import urljoin

from kestrel.config import FetchSettings
from kestrel.urlfetch.addresses import IPAddress, check_address
from kestrel.urlfetch.connection import connect, resolve
from kestrel.urlfetch.deadline import Deadline
from kestrel.urlfetch.errors import FetchRefused
from kestrel.urlfetch.urls import MAX_URL_LENGTH, Target, parse_url

__all__ = ["MAX_URL_LENGTH", "Deadline", "FetchPolicy", "FetchRefused", "check_address", "fetch_image_bytes"]

_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "Kestrel-fetch/1 (+image classification)"


@dataclass(frozen=True)
class FetchPolicy:
    max_bytes: int = 10 * 1024 * 1024
    timeout_seconds: float = 10.0  # total budget of one URL, connect + read, across redirects
    max_redirects: int = 3
    # Hosts (exact text of the URL's host, case-insensitive) that may resolve to non-public
    # addresses: explicit exceptions for local development and tests, e.g. {"localhost"}.
    allowed_hosts: frozenset[str] = frozenset()
    # All the URLs of one request together: below API Gateway's 29 s, with time left to decode,
    # classify and answer.
    budget_seconds: float = 20.0

    @classmethod
    def from_settings(cls, settings: FetchSettings) -> FetchPolicy:
        """The policy for KESTREL_FETCH_* (read by kestrel.config); unset variables keep the defaults."""
        return cls(
            max_bytes=settings.max_bytes,
            timeout_seconds=settings.timeout_seconds,
            allowed_hosts=settings.allowed_hosts,
            budget_seconds=settings.budget_seconds,
        )

    @classmethod
    def from_env(cls) -> FetchPolicy:
        return cls.from_settings(FetchSettings.from_env())

    def request_budget(self) -> Deadline:
        """The deadline that every fetch of one request shares."""
        return Deadline(self.budget_seconds)


@dataclass
class _Answer:
    status: int
    location: str | None
    body: bytes


def _request(target: Target, addresses: list[IPAddress], policy: FetchPolicy, deadline: Deadline) -> _Answer:
    sock = connect(target, addresses, deadline)
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


def _timed_out(deadline: Deadline) -> FetchRefused:
    if deadline.cut_by is not None:
        return FetchRefused(
            f"the server did not send the image before this request's {deadline.cut_by.seconds:g} seconds "
            "for fetching all its URLs ran out",
            504,
        )
    return FetchRefused(f"the server did not send the image within {deadline.seconds:g} seconds", 504)


def _hop(current: str, policy: FetchPolicy, deadline: Deadline) -> _Answer:
    """One request, with network-level failures translated to FetchRefused."""
    target = parse_url(current)
    try:
        addresses = resolve(target, policy.allowed_hosts, deadline)
        return _request(target, addresses, policy, deadline)
    except FetchRefused:
        raise
    except TimeoutError:  # before ConnectionError/OSError: socket.timeout is a TimeoutError
        raise _timed_out(deadline) from None
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


def _deadline_for(policy: FetchPolicy, budget: Deadline | None) -> Deadline:
    if budget is not None and budget.left() <= 0:
        raise FetchRefused(
            f"not fetched: this request's {budget.seconds:g} seconds for fetching its URLs ran out "
            "before this record's turn; send fewer or faster URLs per request",
            408,
        )
    return Deadline(policy.timeout_seconds).within(budget)


def fetch_image_bytes(url: str, policy: FetchPolicy, budget: Deadline | None = None) -> bytes:
    """The body of ``url`` (following up to ``policy.max_redirects`` redirects), or FetchRefused.

    ``budget``: a deadline shared with the request's other fetches; this fetch ends by then too."""
    deadline = _deadline_for(policy, budget)
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
