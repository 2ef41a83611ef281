"""Reading PEM certificates into what history keeps of them: serial, fingerprint, subject, validity, hash data."""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from domain.certificate_facts import Certificate

PEM_BEGIN = "-----BEGIN CERTIFICATE-----"


class Unreadable(ValueError):
    """Not a PEM X.509 certificate (or chain)."""


def load_chain(pem: str) -> list[x509.Certificate]:
    """Every certificate of a PEM text, in order; raises Unreadable for anything else (or nothing)."""
    if PEM_BEGIN not in pem:
        raise Unreadable("no PEM certificate in it")
    try:
        chain = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as failure:
        raise Unreadable(f"not a PEM X.509 certificate: {failure}") from None
    if not chain:
        raise Unreadable("no PEM certificate in it")
    return chain


def public_key_bits(certificate: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's contents, which OCPP's issuerKeyHash (as OCSP's) hashes."""
    key = certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return b""


def hash_data(certificate: x509.Certificate, issuer: x509.Certificate | None = None) -> dict[str, str]:
    """OCPP's CertificateHashData with SHA256. The issuer's key: the given issuer's, else (a root) its own."""
    if issuer is None and certificate.issuer == certificate.subject:
        issuer = certificate
    key_hash = hashlib.sha256(public_key_bits(issuer)).hexdigest() if issuer is not None else ""
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": hashlib.sha256(certificate.issuer.public_bytes()).hexdigest(),
        "issuerKeyHash": key_hash,
        "serialNumber": format(certificate.serial_number, "x"),
    }


def described(certificate: x509.Certificate, issuer: x509.Certificate | None = None) -> Certificate:
    return Certificate(
        serial_number=format(certificate.serial_number, "x"),
        fingerprint=certificate.fingerprint(hashes.SHA256()).hex(),
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        hash_data=hash_data(certificate, issuer),
    )


def read_certificate(pem: str) -> Certificate:
    """The first certificate of a PEM text, described; raises Unreadable."""
    chain = load_chain(pem)
    return described(chain[0], chain[1] if len(chain) > 1 else None)

