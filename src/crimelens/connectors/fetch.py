"""A safe HTTPS fetcher for open-data portals (SEC-14).

Every request, and every redirect hop, goes through the same checks:

* the scheme is ``https`` (``http``, ``file``, ``ftp``, ``data`` ... are refused) and the URL
  carries no user name or password;
* the host is on the user's allow-list (an exact host, or ``*.suffix`` for its subdomains);
* the host is resolved and refused if *any* address is not globally routable (private,
  loopback, link-local including the 169.254.169.254 metadata service, shared, reserved,
  multicast, unspecified, and IPv4 addresses embedded in IPv6);
* the connection goes to the checked address itself (DNS is not asked again, so a rebinding
  answer cannot swap it) while TLS verifies the certificate for the original host name;
* redirects are followed by hand, at most ``max_redirects``, each hop checked again; headers
  the caller added (an API token) are dropped when a redirect leaves the original host;
* the body is streamed and abandoned past ``max_bytes``; one deadline covers connecting,
  waiting and reading, enforced by a watchdog that shuts the socket down.

Not covered: what the allowed host itself serves (content is data, validated by the ingest),
and hosts reached through a proxy (none is used: proxy environment variables are ignored).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import urllib3
from urllib3.connection import HTTPSConnection
from urllib3.util.ssl_match_hostname import CertificateError

from crimelens import __version__
from crimelens.exceptions import CrimelensError

log = logging.getLogger(__name__)

USER_AGENT = f"crimelens/{__version__} (+https://github.com/crimelens/crimelens; open-data connector)"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SECRET_PARAMS = ("token", "key", "secret", "password", "sig", "auth")

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchError(CrimelensError, OSError):
    """A fetch failed: connection, TLS, HTTP status, size or time limit."""


class URLRefused(FetchError, PermissionError):
    """A URL was refused by the SEC-14 policy before any connection was made."""


@dataclass(frozen=True, slots=True)
class Response:
    """A fetched response: final URL (after redirects), status, headers and the whole body."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON; :class:`FetchError` when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise FetchError(f"{redact_url(self.url)}: response is not JSON ({exc})") from exc


def redact_url(url: str) -> str:
    """``url`` with the values of token-like query parameters replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = [(k, "***" if any(s in k.lower() for s in _SECRET_PARAMS) else v)
             for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(pairs, safe="$:,*'()=<> ")))


def host_allowed(host: str, allow_hosts: Collection[str]) -> bool:
    """True when ``host`` equals an entry, or is a subdomain of a ``*.suffix`` entry."""
    host = host.lower().rstrip(".")
    for entry in allow_hosts:
        entry = entry.strip().lower().rstrip(".")
        if not entry:
            continue
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and len(host) > len(entry) - 1:
                return True
        elif host == entry:
            return True
    return False


def public_address(addr: IPAddress) -> bool:
    """True when ``addr`` is globally routable unicast (and so may be fetched from)."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:  # ::ffff:a.b.c.d is the IPv4 address a.b.c.d
            return public_address(addr.ipv4_mapped)
        embedded = addr.sixtofour or (addr.teredo[1] if addr.teredo else None)
        if embedded is not None and not public_address(embedded):
            return False
        if addr in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64: check the IPv4 inside
            return public_address(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    return bool(addr.is_global) and not (
        addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_multicast
        or addr.is_reserved or addr.is_unspecified
    )


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 first), via the system resolver."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(f"{host}: cannot resolve host name ({exc.strerror})") from exc
    addrs = list(dict.fromkeys(str(info[4][0]) for info in infos))
    return sorted(addrs, key=lambda a: ":" in a)


@dataclass
class Fetcher:
    """GET (or POST a form) over HTTPS under the SEC-14 policy; see the module docstring.

    Parameters
    ----------
    allow_hosts
        Host names that may be fetched: ``data.police.uk`` or ``*.arcgis.com``. Empty allows none.
    max_bytes
        Largest body accepted (after decompression).
    timeout_s
        Deadline for one request: connecting, waiting and reading, redirects included.
    ca_file
        PEM file of trusted certificates instead of the system's.
    allow_private
        **Tests only**: ``True`` exempts every address from the global-address rule, a set
        exempts exactly those addresses. Never set from settings or the command line.
    resolver
        Host name to addresses (``system_resolver``).
    """

    allow_hosts: Collection[str]
    max_bytes: int = 100 * 1024 * 1024
    timeout_s: float = 120.0
    ca_file: str | None = None
    allow_private: bool | Collection[str] = False
    max_redirects: int = 5
    user_agent: str = USER_AGENT
    resolver: Resolver = system_resolver
    _ctx: ssl.SSLContext | None = field(default=None, init=False, repr=False)

    # -- policy ---------------------------------------------------------------------------------
    def check_url(self, url: str) -> tuple[str, int, list[str]]:
        """Apply scheme, allow-list and address rules; return ``(host, port, addresses)``.

        Raises
        ------
        URLRefused
            With the reason, before any connection is made.
        """
        shown = redact_url(url)
        try:
            parts = urlsplit(url)
            port = parts.port or 443
        except ValueError as exc:
            raise URLRefused(f"{shown}: malformed URL ({exc})") from exc
        if parts.scheme.lower() != "https":
            given = f"{parts.scheme}:" if parts.scheme else "a relative URL"
            raise URLRefused(f"{shown}: only https:// URLs may be fetched, not {given}")
        if parts.username is not None or parts.password is not None:
            raise URLRefused(f"{shown}: URLs with a user name or password are refused")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise URLRefused(f"{shown}: no host name")
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise URLRefused(f"{shown}: invalid host name") from exc
        if not host_allowed(host, self.allow_hosts):
            raise URLRefused(
                f"{host} is not on the fetch allow-list (add it with --allow-host or CRIMELENS_FETCH_ALLOW_HOSTS)"
            )
        try:
            addrs = [str(ipaddress.ip_address(host))]
        except ValueError:
            addrs = self.resolver(host, port)
        if not addrs:
            raise FetchError(f"{host}: host name resolves to no address")
        for a in addrs:
            ip = ipaddress.ip_address(a.split("%", 1)[0])
            if not public_address(ip) and not self._exempt(str(ip)):
                raise URLRefused(f"{host} resolves to {ip}, which is not a public address (private, loopback, "
                                 "link-local, metadata or reserved addresses are refused)")
        return host, port, addrs

    def _exempt(self, addr: str) -> bool:
        if isinstance(self.allow_private, bool):
            return self.allow_private
        return addr in self.allow_private

    # -- requests -------------------------------------------------------------------------------
    def get(self, url: str, params: Mapping[str, str] | None = None,
            headers: Mapping[str, str] | None = None) -> Response:
        """GET ``url`` (with ``params`` added to its query), following checked redirects."""
        return self.request("GET", url, params=params, headers=headers)

    def get_json(self, url: str, params: Mapping[str, str] | None = None,
                 headers: Mapping[str, str] | None = None) -> Any:
        """GET ``url`` and parse the body as JSON."""
        return self.request("GET", url, params=params, headers=headers,
                            accept="application/json").json()

    def request(self, method: str, url: str, *, params: Mapping[str, str] | None = None,
                form: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
                accept: str = "*/*") -> Response:
        """Send one request under the policy; a non-2xx final status raises :class:`FetchError`.

        ``form`` sends an ``application/x-www-form-urlencoded`` body (POST). A 301/302/303
        redirect continues as a GET without body; 307/308 repeat the method and body.
        """
        if params:
            parts = urlsplit(url)
            query = "&".join(q for q in (parts.query, urlencode(dict(params))) if q)
            url = urlunsplit(parts._replace(query=query))
        deadline = time.monotonic() + self.timeout_s
        origin = urlsplit(url).hostname
        extra = dict(headers or {})
        body = urlencode(dict(form)).encode("ascii") if form is not None else None
        for _hop in range(self.max_redirects + 1):
            host, port, addrs = self.check_url(url)
            if host != (origin or "").lower():
                extra = {}  # never carry the caller's headers (tokens) to another host
            resp = self._once(method, url, host, port, addrs, extra, body, accept, deadline)
            if resp.status in REDIRECTS and "location" in resp.headers:
                url = urljoin(url, resp.headers["location"])
                log.debug("redirect %s -> %s", resp.status, redact_url(url))
                if resp.status in (301, 302, 303):
                    method, body = "GET", None
                continue
            if not 200 <= resp.status < 300:
                snippet = resp.body[:200].decode("utf-8", "replace").strip().splitlines()
                raise FetchError(f"{redact_url(url)}: HTTP {resp.status}"
                                 + (f" ({snippet[0][:120]})" if snippet else ""))
            return resp
        raise FetchError(f"{redact_url(url)}: more than {self.max_redirects} redirects")

    def _context(self) -> ssl.SSLContext:
        if self._ctx is None:
            ctx = ssl.create_default_context(cafile=self.ca_file)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            self._ctx = ctx
        return self._ctx

    def _once(self, method: str, url: str, host: str, port: int, addrs: list[str], headers: dict[str, str],
              body: bytes | None, accept: str, deadline: float) -> Response:
        """One request to the first reachable checked address, under the overall deadline."""
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        name = f"[{host}]" if ":" in host else host
        hdrs = {"Host": name if port == 443 else f"{name}:{port}", "User-Agent": self.user_agent,
                "Accept": accept, "Accept-Encoding": "gzip, deflate", **headers}
        if body is not None:
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        shown = redact_url(url)
        last: Exception | None = None
        for addr in addrs:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            conn = HTTPSConnection(addr, port, timeout=remaining, server_hostname=host, assert_hostname=host,
                                   ssl_context=self._context())
            expired = threading.Event()
            sockets: list[socket.socket] = []

            def kill(ev: threading.Event = expired, held: list[socket.socket] = sockets) -> None:
                ev.set()
                for sock in held:  # wakes a blocked read at once, however slowly the server drips
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

            watchdog = threading.Timer(remaining, kill)
            watchdog.daemon = True
            watchdog.start()
            try:
                try:
                    conn.connect()
                except (OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
                    if isinstance(exc, ssl.SSLError | CertificateError) or "certificate" in str(exc).lower():
                        raise FetchError(f"{shown}: TLS verification failed ({exc})") from exc
                    last = exc
                    continue
                if conn.sock is not None:
                    sockets.append(conn.sock)
                if expired.is_set():
                    raise FetchError(f"{shown}: timed out after {self.timeout_s:g} s")
                return self._exchange(conn, method, target, hdrs, body, shown, url, expired)
            except (OSError, urllib3.exceptions.HTTPError) as exc:
                if isinstance(exc, FetchError):
                    raise
                if expired.is_set():
                    raise FetchError(f"{shown}: timed out after {self.timeout_s:g} s") from exc
                raise FetchError(f"{shown}: {type(exc).__name__}: {exc}") from exc
            finally:
                watchdog.cancel()
                conn.close()
        if last is None:
            raise FetchError(f"{shown}: timed out after {self.timeout_s:g} s")
        raise FetchError(f"{shown}: cannot connect ({last})") from last

    def _exchange(self, conn: HTTPSConnection, method: str, target: str, hdrs: dict[str, str],
                  body: bytes | None, shown: str, url: str, expired: threading.Event) -> Response:
        """Send the request on a connected socket and read a capped body."""
        conn.request(method, target, body=body, headers=hdrs, preload_content=False)
        resp = conn.getresponse()
        try:
            return self._read(resp, shown, url, expired)
        finally:
            resp.release_conn()
            resp.close()

    def _read(self, resp: urllib3.BaseHTTPResponse, shown: str, url: str, expired: threading.Event) -> Response:
        """Read the body of ``resp`` up to ``max_bytes``."""
        headers = {k.lower(): v for k, v in resp.headers.items()}
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            raise FetchError(f"{shown}: response of {int(length):,} bytes exceeds the "
                             f"{self.max_bytes:,}-byte limit")
        chunks: list[bytes] = []
        size = 0
        for chunk in resp.stream(65536, decode_content=True):
            size += len(chunk)
            if size > self.max_bytes:
                raise FetchError(f"{shown}: response exceeds the {self.max_bytes:,}-byte limit")
            chunks.append(chunk)
        if expired.is_set():
            raise FetchError(f"{shown}: timed out after {self.timeout_s:g} s")
        return Response(url=url, status=resp.status, headers=headers, body=b"".join(chunks))
