"""The guarded outbound session: which addresses it refuses, pinning, redirects, size and TLS."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local.sample_api import SampleApi
from sluice import outbound
from sluice.outbound import (
    CertificateNotTrusted,
    GuardedSession,
    OutboundError,
    RefusedAddress,
    ResponseTooLarge,
    TooManyRedirects,
    probe,
    why_refused,
)
from sluice.sources.base import SourceError
from tests.support.loopback import loopback_allowed, set_loopback
from tests.support.tls import ca_signed, self_signed


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from loopback_allowed(monkeypatch)


@pytest.fixture
def api() -> Iterator[SampleApi]:
    with SampleApi(rows=10) as server:
        yield server


REFUSED = [
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",  # CGNAT
    "169.254.169.254",  # the metadata service
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "ff02::1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:127.0.0.1",  # mapped loopback stays refused even when loopback is allowed
    "2002:a9fe:a9fe::1",  # 6to4 wrapping 169.254.169.254
    "64:ff9b::a9fe:a9fe",  # NAT64 wrapping 169.254.169.254
]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused_even_with_loopback_allowed(address: str) -> None:
    assert why_refused(address, allow_loopback=True)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.1.2.3", "::1"])
def test_loopback_is_refused_unless_allowed(address: str) -> None:
    assert why_refused(address, allow_loopback=False) == "a loopback address"
    assert why_refused(address, allow_loopback=True) is None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert why_refused(address, allow_loopback=False) is None


@given(st.integers(min_value=0, max_value=2**24 - 1), st.booleans())
def test_every_ten_slash_eight_address_is_refused_plain_or_mapped(offset: int, mapped: bool) -> None:
    v4 = ipaddress.IPv4Address(int(ipaddress.IPv4Address("10.0.0.0")) + offset)
    address = f"::ffff:{v4}" if mapped else str(v4)
    assert why_refused(address, allow_loopback=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00::1]/",
        "http://[::ffff:127.0.0.1]:9/",
    ],
)
def test_session_refuses_private_and_metadata_urls_before_connecting(url: str) -> None:
    with GuardedSession() as session, pytest.raises(RefusedAddress) as caught:
        session.get(url)
    assert isinstance(caught.value, SourceError)
    assert "public internet" in str(caught.value)


def test_loopback_url_is_refused_without_the_setting(monkeypatch: pytest.MonkeyPatch, api: SampleApi) -> None:
    set_loopback(monkeypatch, False)
    with GuardedSession() as session, pytest.raises(RefusedAddress, match="loopback"):
        session.get(api.url + "/health")


def test_a_name_resolving_to_any_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in ("8.8.8.8", "10.1.2.3")]

    monkeypatch.setattr(outbound.socket, "getaddrinfo", fake)
    with pytest.raises(RefusedAddress, match=r"10\.1\.2\.3"):
        outbound.resolve("mixed.example", 80)


def test_host_is_resolved_once_and_the_connection_stays_pinned(
    monkeypatch: pytest.MonkeyPatch, api: SampleApi
) -> None:
    # A rebinding resolver: the first answer is the real server, later answers point inside.
    calls: list[str] = []
    real = socket.getaddrinfo

    def rebinding(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":
            calls.append(host)
            address = "127.0.0.1" if len(calls) == 1 else "10.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(outbound.socket, "getaddrinfo", rebinding)
    with GuardedSession() as session:
        for _ in range(3):
            reply = session.get(f"http://rebind.test:{api.port}/headers")
            assert reply.status == 200
    assert calls == ["rebind.test"]
    # The server saw the hostname, not the pinned address.
    assert reply.headers and b'"Host": "rebind.test:' in reply.content


def test_redirect_to_a_private_address_is_refused(api: SampleApi) -> None:
    with GuardedSession() as session, pytest.raises(RefusedAddress):
        session.get(api.url + "/redirect", params={"to": "http://10.0.0.1/admin"})


def test_redirect_to_the_metadata_service_is_refused(api: SampleApi) -> None:
    with GuardedSession() as session, pytest.raises(RefusedAddress, match="link-local"):
        session.get(
            api.url + "/redirect", params={"to": "http://169.254.169.254/latest/meta-data/", "status": "307"}
        )


def test_redirects_are_followed_up_to_five(api: SampleApi) -> None:
    def chain(hops: int) -> str:
        url = api.url + "/health"
        for _ in range(hops):
            url = api.url + "/redirect?" + urlencode({"to": url})
        return url

    with GuardedSession() as session:
        reply = session.get(chain(5))
        assert reply.status == 200 and reply.content == b'{"ok":true}'
        assert len(reply.history) == 5
        with pytest.raises(TooManyRedirects):
            session.get(chain(6))


def test_a_redirect_to_another_origin_drops_credentials(api: SampleApi) -> None:
    with SampleApi(rows=1) as other:
        headers = {"Authorization": "Bearer s3cret", "X-Api-Key": "k3y", "X-Tenant": "acme"}
        with GuardedSession(headers=headers, sensitive_headers=["X-Api-Key"]) as session:
            same = session.get(api.url + "/redirect", params={"to": api.url + "/headers"})
            assert b"s3cret" in same.content and b"k3y" in same.content
            moved = session.get(api.url + "/redirect", params={"to": other.url + "/headers"})
    assert moved.status == 200
    assert b"s3cret" not in moved.content and b"k3y" not in moved.content
    assert b"acme" in moved.content


@pytest.mark.parametrize("chunked", ["0", "1"])
def test_bodies_over_the_cap_are_refused(api: SampleApi, chunked: str) -> None:
    with GuardedSession(max_bytes=100_000) as session:
        assert (
            len(session.get(api.url + "/bytes", params={"size": 100_000, "chunked": chunked}).content)
            == 100_000
        )
        with pytest.raises(ResponseTooLarge, match="byte limit"):
            session.get(api.url + "/bytes", params={"size": 300_000, "chunked": chunked})


def test_unsupported_schemes_are_refused() -> None:
    with GuardedSession() as session, pytest.raises(OutboundError, match="Only http and https"):
        session.get("ftp://example.com/file")
    with (
        SampleApi(rows=1) as api,
        GuardedSession() as session,
        pytest.raises(OutboundError, match="Only http"),
    ):
        session.get(api.url + "/redirect", params={"to": "file:///etc/passwd"})


def test_tls_to_a_pinned_address_still_checks_the_hostname(tmp_path: Path) -> None:
    cert = ca_signed(tmp_path, "localhost")
    with SampleApi(rows=1, certfile=cert.cert, keyfile=cert.key) as api:
        url = f"https://localhost:{api.port}/health"
        with GuardedSession(ca_bundle=cert.ca) as session:
            assert session.get(url).status == 200
        with GuardedSession() as session, pytest.raises(CertificateNotTrusted, match="trust_certificates"):
            session.get(url)  # the system store does not know our CA


def test_a_self_signed_server_is_trusted_only_by_its_fingerprint(tmp_path: Path) -> None:
    cert = self_signed(tmp_path)
    with SampleApi(rows=1, certfile=cert.cert, keyfile=cert.key) as api:
        url = f"https://localhost:{api.port}/health"
        with GuardedSession(trusted_fingerprint=cert.fingerprint) as session:
            assert session.get(url).status == 200
        wrong = "AB:" * 31 + "AB"
        with GuardedSession(trusted_fingerprint=wrong) as session, pytest.raises(CertificateNotTrusted):
            session.get(url)


def test_probe_reports_the_certificate_fingerprint(tmp_path: Path) -> None:
    cert = self_signed(tmp_path)
    with SampleApi(rows=1, certfile=cert.cert, keyfile=cert.key) as api:
        url = f"https://localhost:{api.port}"
        with pytest.raises(CertificateNotTrusted, match="trust_certificates") as caught:
            probe(url)
        assert caught.value.fingerprint == cert.fingerprint
        found = probe(url, trust_certificates=True)
    assert (found.tls, found.verified, found.fingerprint) == (True, False, cert.fingerprint)
