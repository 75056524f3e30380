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


class Site:
    """A network namespace of the test's own, reached from this one only at `bastion` (a veth pair on
    192.88.99.0/30, the retired 6to4 relay range: an address the outbound guard takes as public). What
    listens on the site's loopback is reachable through a bastion in the site, and no other way."""

    bastion = "192.88.99.2"

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.name = f"sluice-site-{tag}"
        self._outer, self._inner = f"slo{tag}", f"sli{tag}"

    def __enter__(self) -> Site:
        if os.geteuid() != 0 or shutil.which("ip") is None:
            pytest.skip("a network namespace needs root and iproute2")
        run = self.run
        try:
            subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"network namespaces are not available here ({exc.stderr.decode().strip()})")
        try:
            run("ip", "link", "add", self._outer, "type", "veth", "peer", "name", self._inner)
            run("ip", "link", "set", self._inner, "netns", self.name)
            run("ip", "addr", "add", "192.88.99.1/30", "dev", self._outer)
            run("ip", "link", "set", self._outer, "up")
            run(*self.inside("ip", "addr", "add", f"{self.bastion}/30", "dev", self._inner))
            run(*self.inside("ip", "link", "set", self._inner, "up"))
            run(*self.inside("ip", "link", "set", "lo", "up"))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", self._outer], check=False, capture_output=True)

    def inside(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *command]

    @staticmethod
    def run(*command: str) -> None:
        subprocess.run(list(command), check=True, capture_output=True)


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
    def __init__(
        self,
        directory: Path,
        authorized_key: str,
        host_key: Path,
        port: int | None = None,
        *,
        listen: str = "127.0.0.1",
        netns: str | None = None,
    ) -> None:
        self.directory = directory
        self.listen = listen
        # Run inside this network namespace (`ip netns exec`).
        self.prefix = ["ip", "netns", "exec", netns] if netns else []
        self.host_key = host_key
        self.port = port or free_port()
        self.log = directory / f"sshd-{self.port}.log"
        (directory / "authorized_keys").write_text(authorized_key + "\n")
        self.config = directory / "sshd_config"
        self.config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {listen}",
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
            [*self.prefix, str(SSHD), "-D", "-f", str(self.config), "-E", str(self.log)],
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
                with socket.create_connection((self.listen, self.port), timeout=2) as sock:
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
