"""Reading a SignCertificate.req's CSR: does it parse, does its signature verify, what key and subject it holds.

The rules (key size, curve, CN, O) are the domain's (certificate_facts.csr_refusal); this only reads.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from domain.certificate_facts import SigningRequest


def load_csr(pem: str) -> x509.CertificateSigningRequest:
    """The CSR of a PEM text; raises ValueError."""
    if "-----BEGIN CERTIFICATE REQUEST-----" not in pem and "-----BEGIN NEW CERTIFICATE REQUEST-----" not in pem:
        raise ValueError("no PEM certificate request in it")
    return x509.load_pem_x509_csr(pem.strip().encode())


def read_csr(pem: str) -> SigningRequest:
    try:
        csr = load_csr(pem)
        subject = csr.subject
        key = csr.public_key()
        signature_valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm) as failure:
        return SigningRequest(unreadable=str(failure) or "unparseable")
    algorithm, size, curve = _key(key)
    return SigningRequest(
        signature_valid=signature_valid,
        subject=subject.rfc4514_string(),
        common_name=_attribute(subject, NameOID.COMMON_NAME),
        organization=_attribute(subject, NameOID.ORGANIZATION_NAME),
        key_algorithm=algorithm,
        key_size=size,
        curve=curve,
    )


def _key(key: object) -> tuple[str, int, str | None]:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.key_size, key.curve.name
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size, None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, None
    return type(key).__name__, 0, None


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if len(values) == 1 else None
