"""Test certificates made at test time: a self-signed one, and a private CA with a leaf it signed."""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class CertFiles:
    cert: str
    key: str
    # SHA-256 of the certificate (DER), as sluice.outbound.fingerprint_of formats it.
    fingerprint: str
    ca: str | None = None

    @property
    def der(self) -> bytes:
        return ssl.PEM_cert_to_DER_cert(Path(self.cert).read_text())

    @property
    def encoded(self) -> str:
        """The certificate as the certificates API's `encoded_cert` takes it (DER in base64)."""
        return base64.b64encode(self.der).decode()

    @property
    def hash(self) -> str:
        """The certificate's `hash` in the certificates API: SHA-256 of the DER, base64url unpadded."""
        return base64.urlsafe_b64encode(hashlib.sha256(self.der).digest()).decode().rstrip("=")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[str, str]:
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


def _fingerprint(cert: x509.Certificate) -> str:
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _build(
    subject: str,
    issuer: str,
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    # Python 3.13 verifies strictly (VERIFY_X509_STRICT): key identifiers must be present.
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(subject), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(signer, hashes.SHA256())


def self_signed(directory: Path, hostname: str = "localhost") -> CertFiles:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _build(hostname, hostname, key, key, ca=False)
    cert_path, key_path = _write(directory, "self-signed", cert, key)
    return CertFiles(cert_path, key_path, _fingerprint(cert))


def ca_signed(directory: Path, hostname: str = "localhost") -> CertFiles:
    """A leaf for `hostname` signed by a fresh private CA (`ca` is the CA's PEM file)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _build("Sluice Test CA", "Sluice Test CA", ca_key, ca_key, ca=True)
    ca_path, _ = _write(directory, "ca", ca_cert, ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _build(hostname, "Sluice Test CA", key, ca_key, ca=False)
    cert_path, key_path = _write(directory, "leaf", cert, key)
    return CertFiles(cert_path, key_path, _fingerprint(cert), ca=ca_path)
