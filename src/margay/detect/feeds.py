"""Pulling GlobalThreatFeeds over HTTP(S): headers from files or the environment, an SSRF guard, and a status
that keeps the last good set when a pull fails."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

import httpcore
import httpx

from .formats import Entries, FeedError, parse_body
from .resources import Header, ThreatFeed

MAX_BODY = 64 * 1024 * 1024
MAX_ERRORS = 10
MAX_REDIRECTS = 3
# Refused by default: a feed URL must not reach the node itself, its link-local neighbours (cloud metadata
# lives at 169.254.169.254 / fd00:ec2::254) or unspecified addresses.
BLOCKED = tuple(ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "::/128", "fd00:ec2::254/128",
    "100.100.100.200/32"))
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class FeedStatus:
    """What `status` shows for a feed, and the set matching uses (the last good one)."""

    entries: tuple[str, ...] = ()
    last_successful_sync: datetime | None = None
    last_successful_search: datetime | None = None
    last_attempt: datetime | None = None
    error_conditions: list[dict[str, str]] = field(default_factory=list)
    skipped: int = 0
    cursor: dict[str, int] = field(default_factory=dict)  # log type -> store position searched up to

    def error(self, kind: str, message: str) -> None:
        self.error_conditions = [*self.error_conditions, {"type": kind, "message": message}][-MAX_ERRORS:]

    def as_status(self) -> dict[str, Any]:
        return {"lastSuccessfulSync": _iso(self.last_successful_sync),
                "lastSuccessfulSearch": _iso(self.last_successful_search),
                "errorConditions": list(self.error_conditions), "entries": len(self.entries),
                "skippedEntries": self.skipped}


def _iso(when: datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None


class Refused(FeedError):
    """The guard refused a host (FeedPuller.fetch names the URL); `short` says why without naming it."""

    def __init__(self, message: str, short: str) -> None:
        super().__init__(message)
        self.short = short


def _http_error(exc: httpx.HTTPError, hop: int) -> str:
    """What went wrong, without the peer's words: h11's protocol errors quote the bytes the server sent (a
    status or header line of whatever answered), so only the socket's own errors keep their message, and only
    on the way to the configured URL (after a redirect, a TLS error names the Location's host)."""
    if isinstance(exc, httpx.NetworkError):  # connect/read/write/close: the OS's or the TLS library's words
        return f"{type(exc).__name__}: {exc}" if not hop else f"{type(exc).__name__} after redirect {hop}"
    if isinstance(exc, httpx.ProtocolError):
        return f"{type(exc).__name__}: the answer is not valid HTTP"
    if isinstance(exc, httpx.DecodingError):
        return f"{type(exc).__name__}: the body could not be decoded as its Content-Encoding says"
    return type(exc).__name__


def guard_url(url: str, allowed: Iterable[Network] = ()) -> None:
    """Refuse a URL whose host resolves to a blocked address (loopback, link-local, metadata) unless an
    operator-allowed network holds it. FeedPuller does not call this: it checks at connect time (_GuardedBackend)."""
    parts = _split(url)
    try:
        resolve_guarded(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80), list(allowed))
    except Refused as exc:
        raise FeedError(f"url {url!r}: {exc}") from None


def _split(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FeedError(f"url {url!r}: expected http:// or https:// with a host")
    return parts


def resolve_guarded(host: str, port: int, allowed: list[Network]) -> list[str]:
    """`host`'s addresses from one lookup, refused whole if any is blocked and no allowed network holds it: the
    caller connects to these, never to a second lookup's answer (DNS rebinding)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Refused(f"cannot resolve {host}: {exc}", "does not resolve") from None
    out: list[str] = []
    for info in infos:
        text = str(info[4][0])
        found = ipaddress.ip_address(text.split("%")[0])
        for addr in _as_v4(found):
            if any(addr in net for net in allowed):
                continue
            if any(addr.version == net.version and addr in net for net in BLOCKED):
                raise Refused(f"{host} is {found}, a loopback, link-local or metadata address; refused "
                              "(allow it with --feeds-allow-networks if you mean it)",
                              "is a loopback, link-local or metadata address; refused (allow it with "
                              "--feeds-allow-networks if you mean it)")
        if text not in out:
            out.append(text)
    return out


class _GuardedBackend(httpcore.SyncBackend):
    """httpcore's sockets, each connected to an address `resolve_guarded` passed (an IP literal, so there is no
    second lookup); every connection goes through here, the first request's and each redirect's."""

    def __init__(self, allowed: list[Network]) -> None:
        self.allowed = allowed

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        failed: Exception | None = None
        for address in resolve_guarded(host, port, self.allowed):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failed = exc  # the next address, as socket.create_connection would
        assert failed is not None  # getaddrinfo answers at least one address or raises
        raise failed


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over _GuardedBackend. TLS is untouched: the handshake sends the URL's host as SNI and
    checks the certificate against it, whichever checked address the socket reached. No proxy: a proxy would
    resolve the name itself, out of the guard's sight."""

    def __init__(self, verify: ssl.SSLContext | bool, allowed: list[Network]) -> None:
        context = httpx.create_ssl_context(verify=verify)  # SSL_CERT_FILE / SSL_CERT_DIR honoured, as by httpx
        super().__init__(verify=context)
        self._pool = httpcore.ConnectionPool(ssl_context=context, network_backend=_GuardedBackend(allowed))


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052's well-known prefix: the last 32 bits are an IPv4 address


def _as_v4(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """An address and the IPv4 address an IPv6 one carries (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`,
    6to4 `2002:aabb:ccdd::`, NAT64 `64:ff9b::aabb:ccdd`): each is checked, so `::127.0.0.1` is loopback too."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return [addr]
    out: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [addr]
    if addr.ipv4_mapped:
        out.append(addr.ipv4_mapped)
    if addr.sixtofour:
        out.append(addr.sixtofour)
    n = int(addr)
    if (n >> 32 == 0 and n > 1) or addr in _NAT64:  # IPv4-compatible (not :: or ::1), or NAT64
        out.append(ipaddress.IPv4Address(n & 0xFFFFFFFF))
    return out


_ENV_SAFE = re.compile(r"[^A-Za-z0-9]")


def header_value(feed: str, h: Header, secrets_dir: Path | None) -> str | None:
    """A header's value: inline, or a secretKeyRef/configMapKeyRef read from `<secrets_dir>/<name>/<key>`
    or the environment variable `MARGAY_FEED_<NAME>_<KEY>` (upper case, other characters as `_`)."""
    if h.ref is None:
        return h.value or ""
    kind, name, key, optional = h.ref
    if secrets_dir is not None and name and "/" not in name and "/" not in key and ".." not in (name, key):
        path = secrets_dir / name / key
        if path.is_file():
            return path.read_text().strip()
    env = "MARGAY_FEED_" + _ENV_SAFE.sub("_", f"{name}_{key}").upper()
    if env in os.environ:
        return os.environ[env]
    if optional:
        return None
    raise FeedError(f"header {h.name}: {kind} {name}/{key} not found (put it in "
                    f"{secrets_dir or '<secrets dir>'}/{name}/{key} or set {env})")


class FeedPuller:
    """One HTTP GET of a feed: guarded at connect time, bounded, redirects followed by hand.

    Environment proxies (HTTP_PROXY, HTTPS_PROXY) are not used: the proxy would resolve the feed's host itself,
    past the guard."""

    def __init__(self, *, timeout: float = 30.0, allowed: Iterable[Network] = (), secrets_dir: Path | None = None,
                 verify: ssl.SSLContext | bool = True) -> None:
        self.timeout = timeout
        self.allowed = list(allowed)
        self.secrets_dir = secrets_dir
        self.verify = verify

    def fetch(self, feed: ThreatFeed) -> Entries:
        assert feed.url is not None
        headers = {}
        for h in feed.headers:
            value = header_value(feed.name, h, self.secrets_dir)
            if value is not None:
                headers[h.name] = value
        url = feed.url
        # A transport of our own: every connection (each hop's) is guarded; httpx then reads no proxy from the
        # environment either.
        transport = _GuardedTransport(self.verify, self.allowed)
        with httpx.Client(timeout=self.timeout, follow_redirects=False, transport=transport) as client:
            for hop in range(MAX_REDIRECTS + 1):
                if hop:  # a Location header is the server's words: named by its number, never said back
                    try:
                        _split(url)
                    except FeedError:
                        raise FeedError(f"GET {feed.url}: redirect {hop} is not an http:// or https:// URL "
                                        "with a host") from None
                else:
                    _split(url)
                try:
                    with client.stream("GET", url, headers=headers) as resp:
                        if resp.is_redirect and "location" in resp.headers:
                            url = urljoin(url, resp.headers["location"])
                            continue
                        if resp.status_code != 200:
                            raise FeedError(f"GET {feed.url}: HTTP {resp.status_code}")
                        body = bytearray()
                        for chunk in resp.iter_bytes():
                            body += chunk
                            if len(body) > MAX_BODY:
                                raise FeedError(f"GET {feed.url}: body larger than {MAX_BODY} bytes")
                except Refused as exc:
                    if hop:
                        raise FeedError(f"GET {feed.url}: redirect {hop} leads to a host that "
                                        f"{exc.short}") from None
                    raise FeedError(f"url {url!r}: {exc}") from None
                except httpx.TimeoutException:
                    raise FeedError(f"GET {feed.url}: timed out after {self.timeout:g}s") from None
                except httpx.HTTPError as exc:
                    raise FeedError(f"GET {feed.url}: {_http_error(exc, hop)}") from None
                return parse_body(bytes(body), feed.format, feed.content)
        raise FeedError(f"GET {feed.url}: more than {MAX_REDIRECTS} redirects")

    def sync(self, feed: ThreatFeed, status: FeedStatus, now: datetime) -> bool:
        """Pull once; on success replace the set, on failure record an error condition and keep the old set."""
        status.last_attempt = now
        try:
            entries = self.fetch(feed)
        except FeedError as exc:
            status.error("PullFailed", str(exc))
            return False
        status.entries, status.skipped = entries.values, entries.skipped
        status.last_successful_sync = now
        status.error_conditions = [e for e in status.error_conditions if e["type"] != "PullFailed"]
        return True
