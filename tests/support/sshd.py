"""A real OpenSSH server (Debian's openssh-server) for SSH tunnel tests: started on a loopback port with
its own config, host key and authorized_keys, logging at DEBUG1 so that the tunnels it opened can be
read back (`server_request_direct_tcpip ... target <host> port <port>`)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")
STARTUP_SECONDS = 20.0


def require_sshd() -> None:
    if not SSHD.exists() or shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-server is not installed (make sshd)")
    if os.geteuid() != 0:
        pytest.skip("sshd needs root here (privilege separation)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def new_host_key(directory: Path, name: str) -> Path:
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def host_key_line(key: Path) -> str:
    """The host key's public half as `<type> <base64>` (no comment), as the fingerprints API keeps it."""
    kind, blob = Path(f"{key}.pub").read_text().split()[:2]
    return f"{kind} {blob}"


class Sshd:
    def __init__(self, directory: Path, authorized_key: str, host_key: Path, port: int | None = None) -> None:
        self.directory = directory
        self.host_key = host_key
        self.port = port or free_port()
        self.log = directory / f"sshd-{self.port}.log"
        (directory / "authorized_keys").write_text(authorized_key + "\n")
        self.config = directory / "sshd_config"
        self.config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    f"PidFile {directory}/sshd.pid",
                    f"AuthorizedKeysFile {directory}/authorized_keys",
                    "StrictModes no",
                    "UsePAM no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "PermitRootLogin prohibit-password",
                    "AllowTcpForwarding yes",
                    "LogLevel DEBUG1",
                    "",
                ]
            )
        )
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Sshd:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        self._process = subprocess.Popen(
            [str(SSHD), "-D", "-f", str(self.config), "-E", str(self.log)],
            stdin=subprocess.DEVNULL,
        )
        self._wait_for_banner()
        return self

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def _wait_for_banner(self) -> None:
        """Until sshd greets with its SSH banner (its own signal that it accepts connections)."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text() if self.log.exists() else ''}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                    if sock.recv(64).startswith(b"SSH-2.0"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not start")

    def tunnels(self) -> list[tuple[str, int]]:
        """The (host, port) of every direct-tcpip channel sshd opened, from its log."""
        text = self.log.read_text() if self.log.exists() else ""
        found = re.findall(
            r"server_request_direct_tcpip: originator \S+ port \d+, target (\S+) port (\d+)", text
        )
        return [(host, int(port)) for host, port in found]
