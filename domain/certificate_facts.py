"""What the adapters read from a CSR or a certificate, and the rules a CSR must meet (Security Whitepaper A02/A03).

The domain parses nothing: adapters/security/ reads the PEM (signature, key,
subject, hash data) with the ``cryptography`` package and hands the domain
these values; the rules below decide from them alone, so they are plain and
replay-safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

Payload = dict[str, Any]

ACCEPTED = "Accepted"
REJECTED = "Rejected"
MIN_RSA_BITS = 2048
# Whitepaper section 4.2 (key sizes); the curves TLS 1.2 charge points use.
ALLOWED_CURVES = frozenset({"secp256r1", "secp384r1"})
NO_CERTIFICATE_AUTHORITY = "no certificate authority is configured (csms ca init, or --ca-cert/--ca-key)"


@dataclass(frozen=True)
class SigningRequest:
    """A CSR as the adapter read it; ``unreadable`` says why it could not be, and then the rest is empty."""

    unreadable: str | None = None
    signature_valid: bool = False
    subject: str = ""  # RFC 4514
    common_name: str | None = None
    organization: str | None = None
    key_algorithm: str = ""  # "RSA", "EC", or what else it holds
    key_size: int = 0
    curve: str | None = None

    @property
    def key_type(self) -> str:
        if self.key_algorithm == "EC":
            return f"EC {self.curve}"
        return f"{self.key_algorithm} {self.key_size}".strip()


@dataclass(frozen=True)
class CertificateSigning:
    """What a SignCertificate answer may know: how to read a CSR, and the central system's policy."""

    read_csr: Callable[[str], SigningRequest]
    can_sign: bool  # a certificate authority is configured
    cpo_name: str | None = None
    manual_approval: bool = False


@dataclass(frozen=True)
class Certificate:
    """An X.509 certificate as the adapter read it: what history keeps of it (never a private key)."""

    serial_number: str  # hexadecimal, no leading zeroes (OCPP's CertificateHashData)
    fingerprint: str  # SHA-256 of the DER, hexadecimal
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    hash_data: Payload = field(default_factory=dict)  # OCPP CertificateHashData, SHA256

    def summary(self) -> Payload:
        return {"serialNumber": self.serial_number, "fingerprint": self.fingerprint, "subject": self.subject,
                "issuer": self.issuer, "notBefore": self.not_before, "notAfter": self.not_after}


def csr_refusal(csr: SigningRequest, certificate_name: str, cpo_name: str | None) -> str | None:
    """Why a CSR is refused, or None: it must be readable, self-signed by its key, with a strong enough key,
    CN the charge point's certificate name and, when the central system has a CPO name, O that name."""
    if csr.unreadable is not None:
        return f"not a readable CSR: {csr.unreadable}"
    if not csr.signature_valid:
        return "the CSR's signature does not verify with its own key"
    if csr.key_algorithm == "RSA" and csr.key_size < MIN_RSA_BITS:
        return f"RSA key of {csr.key_size} bits; at least {MIN_RSA_BITS} are required"
    if csr.key_algorithm == "EC" and csr.curve not in ALLOWED_CURVES:
        return f"EC key on {csr.curve}; only {', '.join(sorted(ALLOWED_CURVES))} are accepted"
    if csr.key_algorithm not in ("RSA", "EC"):
        return f"{csr.key_algorithm or 'unknown'} key; RSA or EC keys only"
    if csr.common_name != certificate_name:
        return f"CN {csr.common_name!r} is not the charge point's certificate name {certificate_name!r}"
    if cpo_name is not None and csr.organization != cpo_name:
        return f"O {csr.organization!r} is not the CPO name {cpo_name!r}"
    return None


def same_hash_data(one: Payload, other: Payload) -> bool:
    """Whether two CertificateHashData name the same certificate (the algorithm's case does not matter)."""
    def key(data: Payload) -> tuple[str, ...]:
        return (str(data.get("hashAlgorithm", "")).upper(), str(data.get("issuerNameHash", "")).lower(),
                str(data.get("issuerKeyHash", "")).lower(), str(data.get("serialNumber", "")).lower().lstrip("0"))

    return key(one) == key(other)
