"""The one guarded HTTP client for every request to a user-supplied address (sources, setup tests).

What it guarantees, whatever the caller does:
- each host is resolved once per session and every address it resolves to must be public:
  loopback (unless `allow_loopback`), private (RFC 1918, CGNAT, ULA), link-local (169.254.0.0/16,
  the cloud metadata address), multicast, unspecified, reserved and documentation ranges are
  refused, as are IPv6 forms that embed such an IPv4 address (mapped, 6to4, Teredo, NAT64);
- the deployment's own endpoints (`SLUICE_OWN_ENDPOINTS`: the local stack's moto server and API)
  are refused even where loopback is allowed;
- the connection goes to the address that was checked (DNS rebinding cannot swap it), while the
  Host header, TLS SNI and certificate hostname check still use the hostname;
- redirects are followed by hand (at most 5) and each target is checked the same way; credentials
  are dropped when a redirect leaves the origin, and (with `credential_origin`) are never sent to
  any origin but that one;
- every request has connect and read timeouts and a total time bound, and bodies are capped
  (50 MiB by default) after decompression;
- a connection whose networking method is PrivateLink may also reach the operator's private networks
  (`SLUICE_PRIVATE_LINK_CIDRS`, never the metadata range or loopback);
- proxies and netrc from the environment are ignored; a connection whose networking method is
  ProxyAgent has every TCP connection (requests, probes) tunnelled through its proxy agent with HTTP
  CONNECT to the checked address, so the same refusals hold through the proxy.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import parse_header_links
from urllib3.connectionpool import HTTPConnectionPool

from sluice import network_path
from sluice.certificates import certificate_hash, fingerprint_of
from sluice.settings import get_settings
from sluice.sources.base import SourceError

MAX_BYTES = 50 * 1024 * 1024
MAX_REDIRECTS = 5
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
# Wall-clock bound for one request, body included (a read timeout alone allows a slow drip forever).
TOTAL_TIMEOUT = 300.0
_CHUNK = 256 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Headers that carry credentials: never sent on to another origin by a redirect.
_CREDENTIAL_HEADERS = ("Authorization", "Proxy-Authorization", "Cookie")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Explicit lists, because `is_global` / `is_private` changed between Python 3.11 and 3.13.
_REFUSED_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), why)
    for net, why in (
        ("0.0.0.0/8", 'an unspecified ("this network") address'),
        ("10.0.0.0/8", "a private network address"),
        ("100.64.0.0/10", "a carrier-grade NAT (shared) address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address (this range holds the cloud metadata service)"),
        ("172.16.0.0/12", "a private network address"),
        ("192.0.0.0/24", "an IETF protocol assignment address"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.168.0.0/16", "a private network address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
    )
)
_REFUSED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), why)
    for net, why in (
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("100::/64", "a discard-only address"),
        ("2001:db8::/32", "a documentation address"),
        ("fc00::/7", "a private (unique local) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class OutboundError(SourceError):
    """A request to a user-supplied address could not be made or completed."""


class RefusedAddress(OutboundError):
    """The address is not on the public internet (or is the cloud metadata service)."""


class HostNotFound(OutboundError):
    """The hostname does not resolve."""


class ResponseTooLarge(OutboundError):
    """The response body is larger than the session allows."""


class TooManyRedirects(OutboundError):
    """The server redirected more often than allowed (or in a loop)."""


class RequestTimedOut(OutboundError):
    """The whole request (body included) took longer than its time bound."""


class ConnectFailed(OutboundError):
    """TCP or TLS could not be established."""


class CertificateNotTrusted(ConnectFailed):
    """The server's TLS certificate does not verify; `fingerprint` is its SHA-256 (hex) and
    `certificate` its DER, when the handshake got that far."""

    def __init__(self, message: str, fingerprint: str | None, certificate: bytes | None = None) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint
        self.certificate = certificate


def why_refused(address: str | IPAddress, *, allow_loopback: bool | None = None) -> str | None:
    """Why an address may not be reached (None when it may)."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if allow_loopback is None:
        allow_loopback = get_settings().allow_loopback
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "a scoped (link-local) address"
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            # The embedded IPv4 address is what is really reached; loopback stays refused here
            # because the kernel reaches it through a path the loopback allowance never meant.
            inner = why_refused(embedded, allow_loopback=False)
            return f"{inner} (inside the IPv6 address {ip})" if inner else None
        table: Iterable[tuple[Any, str]] = _REFUSED_V6
    else:
        table = _REFUSED_V4
    for network, why in table:
        if ip in network:
            if allow_loopback and ip.is_loopback:
                return None
            return why
    if not ip.is_global:
        return "not a public internet address"
    return None


def resolve(host: str, port: int) -> str:
    """The one address a host is reached at, checked; raises RefusedAddress or HostNotFound. Through an
    SSH tunnel the bastion resolves it (see `_through_bastion`)."""
    if network_path.current().tunnel is not None:
        return _through_bastion(host, port)
    return resolve_public(host, port)


# Refused even at the far end of an SSH tunnel: the bastion's own metadata service and credentials.
_REFUSED_THROUGH_BASTION = frozenset(
    {"an unspecified address", 'an unspecified ("this network") address', "a link-local address",
     "a link-local address (this range holds the cloud metadata service)", "a scoped (link-local) address",
     "a multicast address", "a reserved address"}
)  # fmt: skip


def _through_bastion(host: str, port: int) -> str:
    """The name or address the bastion is asked to reach. Private and loopback addresses are what a
    bastion is for (the database beside it); link-local (the metadata service), unspecified, multicast
    and reserved addresses stay refused, and so do this deployment's own endpoints. A name is resolved
    by the bastion, in its network."""
    literal = host.strip("[]")
    try:
        ip = ipaddress.ip_address(literal)
    except ValueError:
        return host
    why = why_refused(ip, allow_loopback=True)
    if why in _REFUSED_THROUGH_BASTION or (why and why.startswith(tuple(_REFUSED_THROUGH_BASTION))):
        raise RefusedAddress(f"Refused to connect to '{host}' through the SSH tunnel: it is {why}")
    if is_own_endpoint(literal, port, get_settings().own_endpoints):
        raise RefusedAddress(
            f"Refused to connect to '{host}:{port}': it is one of this Sluice deployment's own endpoints"
        )
    return literal


def resolve_public(host: str, port: int) -> str:
    """`resolve` for a direct connection (and for a proxy or a bastion themselves)."""
    literal = host.strip("[]")
    try:
        infos = socket.getaddrinfo(literal, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise HostNotFound(f"The host '{host}' could not be resolved (DNS): check the spelling") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    # IPv4 first: Lambda functions (outside dual-stack VPCs) have no IPv6 route out.
    addresses.sort(key=lambda a: ":" in a)
    if not addresses:
        raise HostNotFound(f"The host '{host}' has no address")
    settings = get_settings()
    allow_loopback = settings.allow_loopback
    private_link = settings.private_link_cidrs if network_path.current().private_link else ()
    # Every address must pass: a name that resolves to a public and a private address is refused,
    # so that no resolver ordering can send us inside.
    for address in addresses:
        why = why_refused(address, allow_loopback=allow_loopback)
        if why and _in_private_link(address, private_link):
            why = None
        if why:
            shown = host if host == address else f"{host}' ({address})"
            raise RefusedAddress(
                f"Refused to connect to '{shown}': it is {why}. Sluice only connects to public "
                "internet addresses; expose the API on a public address"
            )
        if is_own_endpoint(address, port, settings.own_endpoints):
            raise RefusedAddress(
                f"Refused to connect to '{host}:{port}': it is one of this Sluice deployment's own "
                "endpoints, which connections may never reach"
            )
    return addresses[0]


def _in_private_link(address: str, cidrs: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Whether a refused address is in one of the operator's PrivateLink networks. The settings never
    hold the metadata range or loopback; the check here refuses them again, whatever they hold."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.is_link_local or ip.is_loopback or ip.is_multicast or ip.is_unspecified:
        return False
    return any(ip.version == net.version and ip in net for net in cidrs)


_ANY_ADDRESS = frozenset({"0.0.0.0", "::", "localhost"})


def _addresses_of(host: str, port: int) -> set[IPAddress]:
    try:
        return {ipaddress.ip_address(host)}
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return set()
    return {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}


def is_own_endpoint(address: str, port: int, own: Iterable[tuple[str, int]]) -> bool:
    """Whether (address, port) reaches one of `own`. An own endpoint on a loopback (or unspecified)
    host is every loopback address at that port: 127.0.0.2 and ::1 reach a server on 0.0.0.0 too."""
    ip = ipaddress.ip_address(address)
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    loopback = ip.is_loopback or (mapped is not None and mapped.is_loopback)
    for own_host, own_port in own:
        if own_port != port:
            continue
        targets = _addresses_of(own_host, own_port)
        on_this_machine = own_host in _ANY_ADDRESS or any(t.is_loopback or t.is_unspecified for t in targets)
        if (loopback and on_this_machine) or ip in targets:
            return True
    return False


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # a port out of range: no origin to match
        port = -1
    return scheme, (parts.hostname or "").lower(), port or _default_port(scheme)


def same_origin(url: str, other: str) -> bool:
    """Whether two URLs share scheme, host and port (the default port counts as given)."""
    return _origin(url) == _origin(other)


class _PinnedAdapter(HTTPAdapter):
    """Connects to the address `resolve` checked, keeping the hostname for Host, SNI and verification."""

    def __init__(self, pins: dict[tuple[str, int], str], fingerprint: str | None) -> None:
        self._pins = pins
        self._fingerprint = fingerprint
        # The network path this session was opened on (see sluice.network_path).
        self._path = network_path.current()
        # Per https host: the approved certificate it presented (None: it verifies by the system store).
        self._approved: dict[tuple[str, int], str | None] = {}
        super().__init__(pool_connections=4, pool_maxsize=4, max_retries=0)

    @property
    def connection_id(self) -> str:
        return self._path.connection_id or "{id}"

    def approved_fingerprint(self, host: str, port: int) -> str | None:
        """For a connection with approved certificates: the one this host presents, when its certificate
        does not verify by the system store; CertificateNotTrusted when it presents another."""
        key = (host, port)
        if key not in self._approved:
            with network_path.using(self._path):
                found = probe(f"https://{host}:{port}/", trust_certificates=False)
            self._approved[key] = None if found.verified else found.fingerprint
        return self._approved[key]

    def address_for(self, host: str, port: int) -> str:
        key = (host, port)
        if key not in self._pins:
            self._pins[key] = resolve(host, port)
        return self._pins[key]

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        # requests sets chain verification on the pool after it is made: a pinned pool must keep none.
        if getattr(conn, "assert_fingerprint", None):
            verify = False
        super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str | None,
        proxies: Mapping[str, str] | None = None,
        cert: tuple[str, str] | str | None = None,
    ) -> HTTPConnectionPool:
        scheme, host, port = _origin(request.url or "")
        if scheme not in ("http", "https") or not host:
            raise OutboundError(f"Only http and https URLs can be fetched, not '{scheme}'")
        address = self.address_for(host, port)
        fingerprint = self._fingerprint
        if scheme == "https" and not fingerprint and self._path.approved_certificates:
            fingerprint = self.approved_fingerprint(host, port)
        if fingerprint:
            verify = False  # the fingerprint check below replaces chain verification
        host_params, typed_kwargs = self.build_connection_pool_key_attributes(
            request, True if verify is None else verify, cert
        )
        pool_kwargs: dict[str, Any] = dict(typed_kwargs)
        host_params["host"] = address
        if scheme == "https":
            pool_kwargs["server_hostname"] = host
            if fingerprint:
                # Pinned: urllib3 compares the certificate of every connection with this fingerprint.
                pool_kwargs["assert_fingerprint"] = fingerprint.replace(":", "")
            else:
                pool_kwargs["assert_hostname"] = host
        pool: HTTPConnectionPool = self.poolmanager.connection_from_host(
            **host_params, pool_kwargs=pool_kwargs
        )
        through = self._path.proxy is not None or self._path.tunnel is not None
        if through and not getattr(pool.ConnectionCls, "on_network_path", False):
            pool.ConnectionCls = _on_path(pool.ConnectionCls, self._path, host)
        return pool


def _on_path(base: type, path: network_path.NetworkPath, host: str) -> type:
    """urllib3's connection class `base`, opening its TCP connection on `path` (proxy agent or bastion)."""

    class OnPath(base):  # type: ignore[misc]
        on_network_path = True

        def _new_conn(self) -> socket.socket:
            timeout = self.timeout if isinstance(self.timeout, int | float) else CONNECT_TIMEOUT
            with network_path.using(path):
                return connect(host, self._dns_host, self.port, timeout)

    return OnPath


@dataclass(frozen=True)
class Reply:
    """A fully read response."""

    status: int
    url: str
    headers: CaseInsensitiveDict[str]
    content: bytes
    elapsed: float = 0.0
    history: tuple[str, ...] = field(default=())

    def text(self, limit: int | None = None) -> str:
        body = self.content if limit is None else self.content[:limit]
        return body.decode("utf-8", errors="replace")

    def next_link(self) -> str | None:
        """The RFC 5988 `Link: <...>; rel="next"` target, made absolute."""
        header = self.headers.get("Link")
        if not header:
            return None
        for link in parse_header_links(header):
            rels = link.get("rel", "").lower().split()
            if "next" in rels and link.get("url"):
                return urljoin(self.url, link["url"])
        return None


class GuardedSession:
    """A requests session that only talks to public addresses (see the module docstring)."""

    def __init__(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        sensitive_headers: Iterable[str] = (),
        timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
        total_timeout: float = TOTAL_TIMEOUT,
        max_bytes: int = MAX_BYTES,
        max_redirects: int = MAX_REDIRECTS,
        trust_certificates: bool = False,
        trusted_fingerprint: str | None = None,
        ca_bundle: str | None = None,
        credential_origin: str | None = None,
    ) -> None:
        self._pins: dict[tuple[str, int], str] = {}
        self._session = requests.Session()
        self._session.trust_env = False  # no proxies or netrc from the environment
        adapter = _PinnedAdapter(
            self._pins, trusted_fingerprint.replace(":", "") if trusted_fingerprint else None
        )
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._adapter = adapter
        self._session.headers.update({"Accept": "application/json", "User-Agent": "Sluice/1 (+rest_api)"})
        if headers:
            self._session.headers.update(headers)
        self._auth = auth
        # Credentials go to this URL's origin only (None: to the origin of each request's URL).
        self._credential_origin = credential_origin
        self._sensitive = {h.lower() for h in (*_CREDENTIAL_HEADERS, *sensitive_headers)}
        self.timeout = timeout
        self.total_timeout = total_timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        # A CA bundle file (a private CA) or the system trust store; trust_certificates skips checks.
        # A fingerprint replaces chain checks (the adapter has urllib3 compare it on every connection).
        trusted = trust_certificates or bool(trusted_fingerprint)
        self._verify: bool | str = False if trusted else (ca_bundle or True)

    def __enter__(self) -> GuardedSession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def address_for(self, url: str) -> str:
        """Resolve and check a URL's host now (the session keeps using this address)."""
        _, host, port = _origin(url)
        return self._adapter.address_for(host, port)

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> Reply:
        return self.request("GET", url, params=params, headers=headers, timeout=timeout)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> Reply:
        timeout = timeout or self.timeout
        started = time.monotonic()
        bound = started + self.total_timeout
        origin = _origin(self._credential_origin or url)
        extra = dict(headers or {})
        left_origin = _origin(url) != origin
        history: list[str] = []
        prepared = self._prepare(method, url, params, extra, data, left_origin)
        while True:
            response = self._send(prepared, timeout)
            try:
                if response.status_code in _REDIRECTS and "Location" in response.headers:
                    if len(history) >= self.max_redirects:
                        raise TooManyRedirects(
                            f"{_redacted(url)} redirected more than {self.max_redirects} times; "
                            "use the final URL"
                        )
                    target = urljoin(prepared.url or url, response.headers["Location"])
                    history.append(prepared.url or url)
                    if response.status_code == 303 or (
                        response.status_code in (301, 302) and method not in ("GET", "HEAD")
                    ):
                        method, data = "GET", None
                    # Leaving the origin drops every credential for the rest of the chain, as
                    # browsers and requests do.
                    left_origin = left_origin or _origin(target) != origin
                    prepared = self._prepare(method, target, None, extra, data, left_origin)
                    continue
                content = self._read(response, url, bound)
            finally:
                response.close()
            return Reply(
                status=response.status_code,
                url=prepared.url or url,
                headers=response.headers,
                content=content,
                elapsed=time.monotonic() - started,
                history=tuple(history),
            )

    def _prepare(
        self,
        method: str,
        url: str,
        params: Mapping[str, str | int] | None,
        headers: dict[str, str],
        data: bytes | None,
        strip_credentials: bool,
    ) -> requests.PreparedRequest:
        scheme, host, _ = _origin(url)
        if scheme not in ("http", "https") or not host:
            raise OutboundError(f"Only http and https URLs can be fetched, not '{_redacted(url)}'")
        if not strip_credentials:
            request = requests.Request(
                method, url, params=params, headers=headers, data=data, auth=self._auth
            )
            return self._session.prepare_request(request)
        merged = {**self._session.headers, **headers}
        kept = {k: v for k, v in merged.items() if k.lower() not in self._sensitive}
        return requests.Request(method, url, params=params, headers=kept, data=data).prepare()

    def _send(self, prepared: requests.PreparedRequest, timeout: tuple[float, float]) -> requests.Response:
        _, host, port = _origin(prepared.url or "")
        # The pool connects to an address, so the Host header must be set from the hostname here.
        default = port == _default_port(_origin(prepared.url or "")[0])
        prepared.headers["Host"] = host if default else f"{host}:{port}"
        if ":" in host:
            prepared.headers["Host"] = f"[{host}]" if default else f"[{host}]:{port}"
        try:
            return self._session.send(
                prepared, stream=True, timeout=timeout, allow_redirects=False, verify=self._verify
            )
        except requests.exceptions.SSLError as exc:
            raise CertificateNotTrusted(
                f"TLS with {host} failed: {_ssl_reason(exc)}. If the server uses a self-signed or private "
                f"certificate, approve it (POST /v1/connections/{self._adapter.connection_id}/certificates) "
                "or run the setup tests with trust_certificates",
                None,
            ) from exc

    def _read(self, response: requests.Response, url: str, bound: float) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise ResponseTooLarge(
                f"The response from {_redacted(url)} is {int(declared):,} bytes, over the "
                f"{self.max_bytes:,} byte limit; use a smaller page size"
            )
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > self.max_bytes:
                raise ResponseTooLarge(
                    f"The response from {_redacted(url)} is over the {self.max_bytes:,} byte limit; "
                    "use a smaller page size"
                )
            if time.monotonic() > bound:
                raise RequestTimedOut(f"The response from {_redacted(url)} took too long to arrive")
            chunks.append(chunk)
        return b"".join(chunks)


def _redacted(url: str) -> str:
    """A URL without its query (which may hold a key) for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _ssl_reason(exc: BaseException) -> str:
    """The most specific TLS reason in an exception chain (requests wraps urllib3 wraps ssl)."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return str(current.verify_message or current.reason or "the certificate does not verify")
        if isinstance(current, ssl.SSLError) and current.reason:
            return str(current.reason)
        pending.extend(
            a for a in (current.__cause__, current.__context__, *current.args) if isinstance(a, BaseException)
        )
    return "the certificate does not verify"


# ---- probing TCP and TLS (setup tests) -------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """What connecting to a URL's host established."""

    host: str
    address: str
    port: int
    tls: bool
    # SHA-256 of the server certificate (DER), upper-case hex pairs joined by ':' (as browsers show it).
    fingerprint: str | None = None
    # The certificate verified against the system trust store (None without TLS).
    verified: bool | None = None
    tls_version: str | None = None
    # The server certificate (DER), and whether it is one the connection approved.
    certificate: bytes | None = None
    approved: bool = False


def probe(url: str, *, trust_certificates: bool = False, timeout: float = CONNECT_TIMEOUT) -> Probe:
    """Open TCP (and TLS for https) to a URL's host at its checked address, then close.

    A certificate that does not verify is accepted when the current network path approved it, or with
    `trust_certificates` (or a path that trusts any, which then records it as seen). Otherwise raises
    CertificateNotTrusted (with the certificate and its fingerprint); also RefusedAddress,
    HostNotFound, ConnectFailed.
    """
    scheme, host, port = _origin(url)
    address = resolve(host, port)
    if scheme != "https":
        with connect(host, address, port, timeout):
            return Probe(host, address, port, tls=False)
    try:
        verified = ssl.create_default_context()
        with (
            connect(host, address, port, timeout) as sock,
            verified.wrap_socket(sock, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            return Probe(host, address, port, True, _fingerprint(der), True, tls.version(), der)
    except ssl.SSLCertVerificationError as exc:
        reason = exc.verify_message or "the certificate does not verify"
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        with (
            connect(host, address, port, timeout) as sock,
            unverified.wrap_socket(sock, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            version = tls.version()
        found = _fingerprint(der)
        path = network_path.current()
        if found is not None and found in path.approved_certificates:
            return Probe(host, address, port, True, found, False, version, der, approved=True)
        if der and (trust_certificates or path.trust_any_certificate):
            path.saw(der)
            return Probe(host, address, port, True, found, False, version, der)
        raise CertificateNotTrusted(_not_trusted_message(host, reason, der, path), found, der) from exc
    except ssl.SSLError as exc:
        raise ConnectFailed(
            f"TLS handshake with {host}:{port} failed ({exc.reason or exc}); is it an https port?"
        ) from exc


def connect(host: str, address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to `address` (already checked by `resolve`) on the current network path:
    directly, or tunnelled through the connection's proxy agent."""
    path = network_path.current()
    if path.tunnel is not None:
        from sluice.ssh_tunnel import open_channel

        tunnel = path.tunnel
        where = f"the bastion {tunnel.host}:{tunnel.port}"
        bastion = _connect(where, resolve_public(tunnel.host, tunnel.port), tunnel.port, timeout)
        return open_channel(tunnel, bastion, host, address, port, timeout)
    if path.proxy is not None:
        return open_tunnel(path.proxy, host, address, port, timeout)
    return _connect(host, address, port, timeout)


class Forward:
    """Where a library that opens its own sockets (libpq) connects to reach one checked address on the
    current network path: the address itself when direct; else a loopback listener for one connection,
    forwarded through the proxy agent or bastion. `error` is why the forwarding failed (libpq would
    only see a closed connection)."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        self.error: Exception | None = None
        path = network_path.current()
        if path.proxy is None and path.tunnel is None:
            self.address, self.port = address, port
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(timeout)
        self.address, self.port = "127.0.0.1", int(listener.getsockname()[1])

        def serve() -> None:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            finally:
                listener.close()
            try:
                with network_path.using(path):
                    upstream = connect(host, address, port, timeout)
            except Exception as exc:  # kept for the caller's message
                self.error = exc
                client.close()
                return
            client.settimeout(None)
            upstream.settimeout(None)
            _splice(client, upstream)

        threading.Thread(target=serve, daemon=True, name="sluice-forward").start()


def _splice(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""

    def copy(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    other = threading.Thread(target=copy, args=(b, a), daemon=True)
    other.start()
    copy(a, b)
    other.join()
    a.close()
    b.close()


# The longest proxy answer to CONNECT read before giving up on it.
_MAX_PROXY_HEAD = 16 * 1024


def open_tunnel(
    proxy: network_path.Proxy, host: str, address: str, port: int, timeout: float
) -> socket.socket:
    """A TCP connection to (address, port) through an HTTP CONNECT proxy. The proxy itself must pass
    the same checks as any address (public, not this deployment's own endpoints); the target was
    checked by the caller, so a proxy can't be used to reach what a direct connection may not."""
    where = f"the proxy agent {proxy.agent_id} ({proxy.host}:{proxy.port})"
    sock = _connect(where, resolve_public(proxy.host, proxy.port), proxy.port, timeout)
    target = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    try:
        sock.sendall(
            f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
            f"Proxy-Authorization: {proxy.authorization}\r\n\r\n".encode("latin-1")
        )
        head = _proxy_answer(sock, where)
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1", errors="replace")
        parts = status_line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if status == 407:
            raise ConnectFailed(
                f"{where} refused Sluice's credentials (HTTP 407): configure the proxy to accept the agent "
                "id and auth token returned when the agent was created"
            )
        if not 200 <= status < 300:
            raise ConnectFailed(f"{where} could not open a tunnel to {host}:{port} ({status_line[:120]!r})")
    except TimeoutError as exc:
        sock.close()
        raise ConnectFailed(f"{where} did not answer CONNECT within {timeout:.0f}s") from exc
    except BaseException:
        sock.close()
        raise
    return sock


def _proxy_answer(sock: socket.socket, where: str) -> bytes:
    """The proxy's answer head, read byte by byte: what follows it belongs to the tunnel (an SSH server
    speaks first)."""
    head = bytearray()
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise ConnectFailed(f"{where} closed the connection instead of answering CONNECT")
        head += byte
        if len(head) > _MAX_PROXY_HEAD:
            raise ConnectFailed(f"{where} sent an answer to CONNECT longer than {_MAX_PROXY_HEAD} bytes")
    return bytes(head)


def _connect(host: str, address: str, port: int, timeout: float) -> socket.socket:
    try:
        return socket.create_connection((address, port), timeout=timeout)
    except TimeoutError as exc:
        raise ConnectFailed(
            f"Connecting to {host}:{port} timed out after {timeout:.0f}s: check the port and that the "
            "server's firewall accepts connections from this AWS region"
        ) from exc
    except ConnectionRefusedError as exc:
        raise ConnectFailed(f"{host}:{port} refused the connection: check the base URL's port") from exc
    except OSError as exc:
        raise ConnectFailed(f"Could not connect to {host}:{port} ({exc.strerror or exc})") from exc


def _fingerprint(der: bytes | None) -> str | None:
    return fingerprint_of(der) if der else None


def _not_trusted_message(host: str, reason: str, der: bytes | None, path: network_path.NetworkPath) -> str:
    """Which certificate to approve, and how."""
    if not der:
        return f"The TLS certificate of {host} is not trusted ({reason})"
    which = f"certificate {certificate_hash(der)} (SHA-256 {fingerprint_of(der)})"
    how = (
        f"approve it with POST /v1/connections/{path.connection_id or '{id}'}/certificates (hash "
        f"{certificate_hash(der)}, encoded_cert: the certificate's DER in base64, as the setup tests "
        "show it) or run the setup tests again with trust_certificates"
    )
    if path.approved_certificates:
        return (
            f"The TLS certificate of {host} changed: it now presents {which}, which is not one this "
            f"connection approved ({reason}). If you trust the new certificate, {how}"
        )
    return (
        f"The TLS certificate of {host} is not trusted ({reason}). If this server uses a self-signed or "
        f"private certificate you trust, {how}; it presents {which}"
    )
