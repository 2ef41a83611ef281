"""Which connection meets which security profile (OCPP 1.6 Security Whitepaper, section 2).

The adapters tell what the connection is (``Transport``: TLS or not, the
client certificate OpenSSL verified, read into plain values); these rules
decide from that, the charge point's profile and certificate name, and the
central system's CPO name. A connection stronger than the profile asks is
accepted: TLS with Basic auth for profile 1, a client certificate for 2.
The password itself is checked by the service layer (its hash never reaches
the domain); ``needs_password`` says when it must be.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.security_profile import certificate_name_of, profile_of

# The types of the security events the central system records for a refused connection
# (Whitepaper section 8 names InvalidChargePointCertificate; the rest say what happened).
PROFILE_NOT_MET = "SecurityProfileNotMet"
INVALID_CERTIFICATE = "InvalidChargePointCertificate"


@dataclass(frozen=True)
class ClientCertificate:
    """A client certificate whose chain OpenSSL verified, as the adapter read it."""

    common_name: str | None
    organization: str | None
    fingerprint: str  # SHA-256 of the DER, hexadecimal
    serial_number: str
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True)
class Transport:
    """How a charge point connected."""

    tls: bool = False
    tls_version: str | None = None
    client_certificate: ClientCertificate | None = None


@dataclass(frozen=True)
class Requirements:
    """What a charge point's connection is held to, from its aggregate."""

    profile: int
    certificate_name: str
    has_password: bool
    signed_fingerprint: str | None  # of the certificate this central system signed for it, if any


def requirements_of(cp: Any) -> Requirements:
    signed = cp.charge_point_certificate or {}
    fingerprint = signed.get("fingerprint")
    return Requirements(profile_of(cp), certificate_name_of(cp), cp.has_password,
                        str(fingerprint) if fingerprint else None)


@dataclass(frozen=True)
class Refusal:
    """A connection refused before the upgrade: the HTTP status, the security event's type, and why."""

    status: int
    type: str
    reason: str


def certificate_refusal(certificate: ClientCertificate, certificate_name: str, signed_fingerprint: str | None,
                        cpo_name: str | None, now: datetime) -> str | None:
    """Why a verified client certificate does not identify this charge point, or None when it does.

    Its CN must be the certificate name, unless it is the very certificate this
    central system signed for the charge point; with a CPO name, its O must be it.
    """
    if not certificate.not_before <= now <= certificate.not_after:
        return (f"the client certificate (serial {certificate.serial_number}) is not valid now: "
                f"{certificate.not_before.isoformat()} to {certificate.not_after.isoformat()}")
    signed_for_it = signed_fingerprint is not None and certificate.fingerprint.lower() == signed_fingerprint.lower()
    if certificate.common_name != certificate_name and not signed_for_it:
        return (f"the client certificate's CN {certificate.common_name!r} is not the charge point's certificate "
                f"name {certificate_name!r}")
    if cpo_name is not None and certificate.organization != cpo_name:
        return f"the client certificate's O {certificate.organization!r} is not the CPO name {cpo_name!r}"
    return None


def transport_refusal(profile: int, transport: Transport, certificate_problem: str | None) -> Refusal | None:
    """Why the connection itself does not meet the profile (before any password is looked at)."""
    if profile >= 2 and not transport.tls:
        return Refusal(403, PROFILE_NOT_MET, f"security profile {profile} needs TLS (wss://); this was plain ws://")
    if profile == 3:
        if transport.client_certificate is None:
            return Refusal(403, PROFILE_NOT_MET, "security profile 3 needs a client certificate; none was presented")
        if certificate_problem is not None:
            return Refusal(403, INVALID_CERTIFICATE, certificate_problem)
    return None


def needs_password(profile: int, has_password: bool, certificate_problem: str | None,
                   transport: Transport) -> bool:
    """Whether HTTP Basic auth is asked: whenever the charge point has a password, unless a client
    certificate that identifies it was presented (profile 3, or stronger than 1 and 2 ask)."""
    if transport.client_certificate is not None and certificate_problem is None:
        return False
    return has_password or profile in (1, 2)
