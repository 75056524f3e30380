"""SSH tunnels (`networking_method: SshTunnel`): each TCP connection of a source is a direct-tcpip
channel through the connection's bastion, handed to the caller as a real socket (TLS and libraries
that want a socket work on it unchanged).

The bastion is reached like any address (public only, never the stack's own endpoints) and logged into
as `tunnel_user` with the group's key. Its host key must be one the connection approved (by hash, see
`sluice.certificates.host_key_hash`); setup tests run with trust_fingerprints accept and record it. One
SSH connection per bastion serves every channel of a network path, and closes with it.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
from typing import Any

from sluice.certificates import host_key_hash
from sluice.network_path import SshTunnel
from sluice.sources.base import SourceError


class TunnelFailed(SourceError):
    """The bastion could not be reached, logged into, or could not reach the source."""


class HostKeyNotTrusted(TunnelFailed):
    """The bastion presented a host key the connection did not approve."""

    def __init__(self, message: str, public_key: str, hash_: str) -> None:
        super().__init__(message)
        self.public_key = public_key
        self.hash = hash_


_LOCK = threading.Lock()


def open_channel(
    tunnel: SshTunnel, bastion: socket.socket, host: str, dest: str, port: int, timeout: float
) -> socket.socket:
    """A socket whose other end is a channel from the bastion to (dest, port). `bastion` is a fresh TCP
    connection to the bastion, used (and kept) when this path has no SSH connection to it yet."""
    transport = _transport(tunnel, bastion, timeout)
    try:
        channel = transport.open_channel("direct-tcpip", (dest, port), ("127.0.0.1", 0), timeout=timeout)
    except Exception as exc:  # paramiko.ChannelException, SSHException, EOFError
        raise TunnelFailed(
            f"The bastion {tunnel.host} could not open a connection to {host}:{port} "
            f"({getattr(exc, 'text', None) or exc}): check that it can reach the source"
        ) from exc
    ours, theirs = socket.socketpair()
    _pump(theirs, channel)
    ours.settimeout(timeout)
    return ours


def close(tunnel: SshTunnel) -> None:
    with _LOCK:
        transports = list(_transports(tunnel).values())
        _transports(tunnel).clear()
    for transport in transports:
        with contextlib.suppress(Exception):
            transport.close()


def _transports(tunnel: SshTunnel) -> dict[str, Any]:
    # Kept on the tunnel object: one SSH connection per path, gone with the path.
    found: dict[str, Any] = tunnel.__dict__.setdefault("_transports", {})
    return found


def _transport(tunnel: SshTunnel, bastion: socket.socket, timeout: float) -> Any:
    with _LOCK:
        existing = _transports(tunnel).get("bastion")
        if existing is not None and existing.is_active():
            bastion.close()
            return existing
        transport = _logged_in(tunnel, bastion, timeout)
        _transports(tunnel)["bastion"] = transport
        return transport


def _logged_in(tunnel: SshTunnel, bastion: socket.socket, timeout: float) -> Any:
    import paramiko

    where = f"the bastion {tunnel.host}:{tunnel.port}"
    transport = paramiko.Transport(bastion)
    try:
        transport.start_client(timeout=timeout)
    except (paramiko.SSHException, EOFError, OSError) as exc:
        transport.close()
        raise TunnelFailed(f"SSH with {where} failed ({exc}): is it an SSH port?") from exc
    try:
        key = transport.get_remote_server_key()
        line = f"{key.get_name()} {key.get_base64()}"
        digest = host_key_hash(key.asbytes())
        if digest not in tunnel.approved_host_keys:
            if not tunnel.trust_any_host_key:
                raise HostKeyNotTrusted(_untrusted_message(tunnel, where, digest), line, digest)
            if line not in tunnel.seen_host_keys:
                tunnel.seen_host_keys.append(line)
        pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(tunnel.private_key))
        try:
            transport.auth_publickey(tunnel.user, pkey)
        except paramiko.AuthenticationException as exc:
            raise TunnelFailed(
                f"{where} refused the login of '{tunnel.user}' with the group's key: add the key from "
                f"GET /v1/groups/{tunnel.group_id or '{group_id}'}/public-key to that user's "
                "~/.ssh/authorized_keys"
            ) from exc
    except BaseException:
        transport.close()
        raise
    return transport


def _untrusted_message(tunnel: SshTunnel, where: str, digest: str) -> str:
    from sluice.network_path import current

    how = (
        f"approve it with POST /v1/connections/{current().connection_id or '{id}'}/fingerprints (hash "
        "and public_key are in the setup test's details) or run the setup tests with trust_fingerprints"
    )
    if tunnel.approved_host_keys:
        return (
            f"The host key of {where} changed: it now presents {digest}, which is not one this connection "
            f"approved. If the bastion's key really changed, {how}"
        )
    return f"The host key of {where} ({digest}) is not approved yet: {how}"


def _pump(sock: socket.socket, channel: Any) -> None:
    """Copy bytes both ways between a socket and a channel until either side closes."""

    def up() -> None:
        try:
            while data := sock.recv(65536):
                channel.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(Exception):
                channel.shutdown_write()

    def down() -> None:
        try:
            while data := channel.recv(65536):
                sock.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)

    def both() -> None:
        other = threading.Thread(target=down, daemon=True, name="ssh-tunnel-down")
        other.start()
        up()
        other.join()
        with contextlib.suppress(Exception):
            channel.close()
        sock.close()

    threading.Thread(target=both, daemon=True, name="ssh-tunnel").start()
