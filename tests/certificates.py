"""Certificates, keys and CSRs made for tests with `cryptography` (RSA or ECDSA, any validity)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

KeyType = Literal["rsa", "ec"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
NOW = dt.datetime.now(dt.UTC)


def new_key(kind: KeyType = "ec", rsa_bits: int = 2048) -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    return ec.generate_private_key(ec.SECP256R1())


def name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


@dataclass
class Issued:
    """A certificate and its private key."""

    certificate: x509.Certificate
    key: PrivateKey

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()

    def write(self, folder: object, stem: str) -> tuple[str, str]:
        """Writes `stem.crt` and `stem.key` into `folder` (a pathlib.Path); returns their paths."""
        from pathlib import Path

        certificate, key = Path(str(folder)) / f"{stem}.crt", Path(str(folder)) / f"{stem}.key"
        certificate.write_text(self.pem)
        key.write_text(self.key_pem)
        return str(certificate), str(key)


def certificate_authority(common_name: str = "Test Root CA", kind: KeyType = "ec",
                          not_before: dt.datetime | None = None, not_after: dt.datetime | None = None,
                          organization: str | None = None) -> Issued:
    key = new_key(kind)
    subject = name(common_name, organization)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - dt.timedelta(days=1))
        .not_valid_after(not_after or NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return Issued(builder.sign(key, hashes.SHA256()), key)


def issue(ca: Issued, common_name: str, organization: str | None = None, kind: KeyType = "ec",
          not_before: dt.datetime | None = None, not_after: dt.datetime | None = None,
          server: bool = False, dns_names: tuple[str, ...] = ()) -> Issued:
    """A leaf certificate signed by `ca`: a client certificate, or with `server` a TLS server's."""
    key = new_key(kind)
    usage = x509.oid.ExtendedKeyUsageOID.SERVER_AUTH if server else x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(common_name, organization))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - dt.timedelta(days=1))
        .not_valid_after(not_after or NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(dns) for dns in dns_names]), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def signing_request(common_name: str, organization: str | None = None, kind: KeyType = "ec",
                    rsa_bits: int = 2048) -> tuple[str, PrivateKey]:
    """A PEM CSR as a charge point sends in SignCertificate.req, and its key."""
    key = new_key(kind, rsa_bits)
    csr = x509.CertificateSigningRequestBuilder().subject_name(name(common_name, organization)).sign(
        key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key
