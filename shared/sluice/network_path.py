"""The network path of the source a connection is reading: the certificates it trusts beyond the
system store, what its setup tests saw, and the proxy agent or SSH bastion its traffic goes through.

The path is ambient (a context variable) rather than passed to every source: the guarded client in
`sluice.outbound` reads it on every connection it opens, so no source, built in or not, can forget to
pin the certificates its connection approved. The sync engine sets it around a source's extract
(`within`), the setup tests around a service's tests (`using`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Proxy:
    """A registered proxy agent: an HTTP CONNECT proxy that every connection of the source goes
    through, authenticated with `Proxy-Authorization` (agent id and auth token)."""

    agent_id: str
    host: str
    port: int
    authorization: str = field(repr=False)  # a secret: never in a repr, a message or a log line


@dataclass(frozen=True)
class SshTunnel:
    """A bastion every TCP connection of the source goes through (direct-tcpip channels), logged in as
    `user` with the group's key; its host key must be one the connection approved."""

    host: str
    port: int
    user: str
    private_key: str = field(repr=False)  # OpenSSH PEM: a secret
    group_id: str = ""  # whose key it is (for messages)
    # hashes (sluice.connections.trust.fingerprint_hash) of the approved host keys
    approved_host_keys: frozenset[str] = frozenset()
    # Setup tests run with trust_fingerprints: any host key is accepted (and recorded in `seen`).
    trust_any_host_key: bool = False
    # The host keys accepted on trust_fingerprints, as OpenSSH lines (setup tests approve these).
    seen_host_keys: list[str] = field(default_factory=list, compare=False)


@dataclass(frozen=True)
class NetworkPath:
    # The connection whose source this is (for messages that say where to approve a certificate).
    connection_id: str | None = None
    # SHA-256 fingerprints (sluice.outbound.fingerprint_of) of the certificates the connection approved:
    # a server whose certificate does not verify is accepted when it presents exactly one of these.
    approved_certificates: frozenset[str] = frozenset()
    # Setup tests run with trust_certificates: any certificate is accepted (and recorded in `seen`).
    trust_any_certificate: bool = False
    # networking_method ProxyAgent: the proxy every TCP connection of the source is tunnelled through.
    proxy: Proxy | None = None
    # networking_method SshTunnel: the bastion every TCP connection of the source is tunnelled through.
    tunnel: SshTunnel | None = None
    # networking_method PrivateLink: the operator's private CIDRs (settings) may be reached directly.
    private_link: bool = False
    # DER of every certificate that was accepted without verifying (setup tests approve these).
    seen_certificates: list[bytes] = field(default_factory=list)

    def saw(self, der: bytes) -> None:
        if der not in self.seen_certificates:
            self.seen_certificates.append(der)

    def close(self) -> None:
        """Close what the path holds open (the SSH connection to a bastion)."""
        if self.tunnel is not None:
            from sluice.ssh_tunnel import close

            close(self.tunnel)


DIRECT = NetworkPath()
_current: ContextVar[NetworkPath] = ContextVar("sluice_network_path", default=DIRECT)


def current() -> NetworkPath:
    return _current.get()


@contextmanager
def using(path: NetworkPath) -> Iterator[NetworkPath]:
    token = _current.set(path)
    try:
        yield path
    finally:
        _current.reset(token)


def within(path: NetworkPath, steps: Iterator[T]) -> Iterator[T]:
    """`steps` (a source's extract) with `path` current while each step runs, and only then: the
    engine's own work between steps (the destination, the table) is not on the source's path."""
    try:
        while True:
            token = _current.set(path)
            try:
                step = next(steps)
            except StopIteration:
                return
            finally:
                _current.reset(token)
            yield step
    finally:
        close = getattr(steps, "close", None)
        if close is not None:
            token = _current.set(path)
            try:
                close()
            finally:
                _current.reset(token)
        path.close()
