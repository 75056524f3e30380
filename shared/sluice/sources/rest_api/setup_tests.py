"""Setup tests of a `rest_api` connection: resolve, connect (TLS), authenticate, fetch each table."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from sluice.certificates import certificate_details
from sluice.connections.model import SetupTestResult
from sluice.sources.base import SetupTestOptions, SourceError
from sluice.sources.rest_api.client import READ_TIMEOUT, Client, session_for
from sluice.sources.rest_api.config import RestApiConfig, RestApiTable
from sluice.sources.rest_api.extract import page_request, parse_config, records_of

if TYPE_CHECKING:
    from sluice.outbound import Reply


def setup_tests(config: dict[str, Any], options: SetupTestOptions) -> list[SetupTestResult]:
    return _SetupRun(parse_config(config), options).run()


def _is_address(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class _Fatal(Exception):
    """A setup test failed in a way that makes the later ones meaningless."""


class _SetupRun:
    def __init__(self, config: RestApiConfig, options: SetupTestOptions) -> None:
        self.config = config
        self.options = options
        self.deadline = time.monotonic() + options.timeout
        self.results: list[SetupTestResult] = []
        self.titles = [
            "Resolving host",
            "Connecting",
            "Authenticating",
            *[f"Fetching {t.name}" for t in config.tables],
        ]

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def add(
        self, status: Literal["PASSED", "WARNING", "FAILED", "SKIPPED"], message: str, details: Any = None
    ) -> None:
        self.results.append(
            SetupTestResult(
                title=self.titles[len(self.results)], status=status, message=message, details=details
            )
        )

    def fatal(self, message: str, details: Any = None) -> _Fatal:
        title = self.titles[len(self.results)]
        self.add("FAILED", message, details)
        return _Fatal(title)

    def run(self) -> list[SetupTestResult]:
        try:
            self._run()
        except _Fatal as failed:
            while len(self.results) < len(self.titles):
                self.add("SKIPPED", f"Skipped because '{failed}' failed")
        return self.results

    def _run(self) -> None:
        from sluice.network_path import current
        from sluice.outbound import CertificateNotTrusted, OutboundError, probe, resolve
        from sluice.ssh_tunnel import HostKeyNotTrusted

        base = self.config.base_url
        parts = urlsplit(base)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            address = resolve(host, port)
        except OutboundError as exc:
            raise self.fatal(str(exc)) from None
        path = current()
        if path.tunnel is not None and address == host and not _is_address(host):
            self.add("PASSED", f"{host} is resolved by the bastion {path.tunnel.host}", {"host": host})
        else:
            self.add("PASSED", f"{host} resolves to {address}", {"host": host, "address": address})
        # How the connection gets there, for the Connecting message.
        via = ""
        if path.tunnel is not None:
            via = f" through the bastion {path.tunnel.host}"
        elif path.proxy is not None:
            via = f" through the proxy agent {path.proxy.agent_id}"

        try:
            found = probe(base, trust_certificates=self.options.trust_certificates, timeout=self._budget(10))
        except CertificateNotTrusted as exc:
            raise self.fatal(str(exc), certificate_details(exc.certificate)) from None
        except HostKeyNotTrusted as exc:
            raise self.fatal(str(exc), {"hash": exc.hash, "public_key": exc.public_key}) from None
        except SourceError as exc:  # the tunnel or the proxy
            raise self.fatal(str(exc)) from None
        except OutboundError as exc:
            raise self.fatal(str(exc)) from None
        details = {"address": found.address, "port": found.port, "tls": found.tls}
        if found.tls:
            details |= {"tls_version": found.tls_version, **certificate_details(found.certificate)}
        if found.approved:
            self.add(
                "PASSED",
                f"Connected to {host}:{found.port} over TLS; its certificate is one this connection approved "
                f"(SHA-256 {found.fingerprint})",
                details,
            )
        elif found.tls and not found.verified:
            self.add(
                "WARNING",
                f"The TLS certificate of {host} is not signed by a trusted authority; it is trusted because "
                f"trust_certificates is set (SHA-256 {found.fingerprint})",
                details,
            )
        else:
            self.add(
                "PASSED",
                f"Connected to {host}:{found.port}{via}" + (" over TLS" if found.tls else ""),
                details,
            )

        options: dict[str, Any] = {"total_timeout": max(1.0, self.remaining())}
        if found.tls and not found.verified:
            options["trusted_fingerprint"] = found.fingerprint
        with session_for(self.config, **options) as session:
            client = Client(self.config, session)
            first = self._fetch(client, self.config.tables[0])
            if not isinstance(first, str) and first.status in (401, 403):
                raise self.fatal(
                    f"The API refused the credentials (HTTP {first.status}): {self.config.auth.hint()}",
                    {"status": first.status},
                )
            if isinstance(first, str):
                raise self.fatal(first)
            self.add(
                "PASSED",
                "The API accepted the request"
                if self.config.auth.type != "none"
                else "No credentials needed",
                {"status": first.status, "auth": self.config.auth.type},
            )
            for index, table in enumerate(self.config.tables):
                reply = first if index == 0 else self._fetch(client, table)
                self._check_table(client, table, reply)

    def _budget(self, cap: float) -> float:
        remaining = self.remaining()
        if remaining <= 0.2:
            raise self.fatal(f"The setup tests ran out of time (timeout {self.options.timeout:.0f}s)")
        return min(cap, remaining)

    def _fetch(self, client: Client, table: RestApiTable) -> Reply | str:
        """One page of a table, or why it could not be fetched."""
        import requests

        from sluice.outbound import OutboundError

        url, params = page_request(self.config, table, None, {})
        budget = self._budget(READ_TIMEOUT)
        try:
            return client.session.get(url, params=params, timeout=(min(10, budget), budget))
        except OutboundError as exc:
            return str(exc)
        except requests.RequestException as exc:
            return f"Could not fetch {table.path} from {client.host} ({type(exc).__name__})"

    def _check_table(self, client: Client, table: RestApiTable, reply: Reply | str) -> None:
        if isinstance(reply, str):
            self.add("FAILED", reply)
            return
        path = table.path
        if reply.status == 429:
            self.add(
                "WARNING", f"GET {path} was rate limited (HTTP 429); syncs wait and retry", {"status": 429}
            )
            return
        if reply.status == 404:
            self.add("FAILED", f"GET {path} answered HTTP 404: check the table's path", {"status": 404})
            return
        if reply.status >= 300:
            snippet = client.scrub(reply.text(200)).strip()
            self.add(
                "FAILED", f"GET {path} answered HTTP {reply.status}: {snippet}", {"status": reply.status}
            )
            return
        try:
            rows = records_of(client.json(reply, table.name), table)
        except SourceError as exc:
            self.add("FAILED", str(exc), {"status": reply.status})
            return
        fields = sorted(rows[0])[:50] if rows else []
        details = {"status": reply.status, "rows": len(rows), "fields": fields}
        if not rows:
            self.add(
                "WARNING",
                f"GET {path} returned no rows yet; the sync will load rows once there are some",
                details,
            )
            return
        missing = [k for k in table.primary_key if k not in rows[0]]
        if table.cursor_field and table.cursor_field not in rows[0]:
            missing.append(table.cursor_field)
        if missing:
            self.add(
                "WARNING",
                f"The rows of {path} have no field {', '.join(repr(m) for m in missing)}: check primary_key "
                "and cursor_field",
                details,
            )
            return
        self.add("PASSED", f"Read {len(rows)} rows from the first page of {path}", details)
