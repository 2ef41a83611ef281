"""A charge point's security profile (OCPP 1.6 Security Whitepaper, section 2) and its certificate name.

| profile | how the charge point must connect |
|---|---|
| 0 | plain WebSocket, no password (not in the Whitepaper: a test bench's profile) |
| 1 | HTTP Basic auth (its password); plain WebSocket allowed |
| 2 | TLS (the server's certificate) and HTTP Basic auth |
| 3 | TLS with a client certificate whose CN is the certificate name (Basic auth optional) |

Unset, the profile is 1 when the charge point has a password, else 0. An
operator sets it through the API (SecurityProfileSet, or SecurityProfileLowered
when it goes down: recorded as such); a charge point that accepted
ChangeConfiguration SecurityProfile has it raised (SecurityProfileRaised,
recorded beside the answer, domain/call_outcomes.py). It is never lowered
through OCPP (Whitepaper A00.FR.005): ``change_configuration_refusal``
refuses such a call before it is sent, as it refuses an AuthorizationKey that
breaks the Whitepaper's rules. Which connection meets which profile is
decided in domain/admission.py.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Protocol

from domain.chargepoint_events import ChargePointEvent, declared, topic
from domain.facts import Payload

PROFILES = (0, 1, 2, 3)
SECURITY_PROFILE_KEY = "securityprofile"  # configuration keys are CiString50: any case
AUTHORIZATION_KEY = "authorizationkey"
# OCPP 1.6 Security Whitepaper (and the certification tool's TC_073_CSMS): an AuthorizationKey is the
# hexadecimal form of the Basic-auth password, which is 16 to 20 bytes (ideally random): 32 to 40 hex digits.
AUTHORIZATION_KEY_TEXT = re.compile(r"(?:[0-9A-Fa-f]{2}){16,20}")
CENTRAL_SYSTEM_ROOT = "CentralSystemRootCertificate"


class Profiled(Protocol):
    """The charge point as these rules need it (domain/call_checks.py imports this module, so this one
    may not import domain/chargepoint.py)."""

    security_profile: int | None
    certificate_name: str | None
    has_password: bool
    installed_certificates: dict[str, list[Payload]]
    charge_point_certificate: Payload | None

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None: ...


class ProfileRefused(ValueError):
    """A profile an operator asked for that the charge point cannot have (yet): why, and the HTTP status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def profile_of(cp: Any) -> int:
    """The profile the charge point must connect with."""
    if cp.security_profile is not None:
        return int(cp.security_profile)
    return 1 if cp.has_password else 0


def certificate_name_of(cp: Any) -> str:
    """The CN its client certificate must have: the registration's certificateName, else its id."""
    return str(cp.certificate_name or cp.id)


@declared
class SecurityProfileSet(ChargePointEvent):
    """An operator set the profile (registration): from ``previous`` (the effective one) to ``profile``."""

    TOPIC = topic("SecurityProfileSet")
    profile: int
    previous: int
    set_at: datetime

    def apply(self, cp: Any) -> None:
        cp.security_profile = self.profile


@declared
class SecurityProfileLowered(ChargePointEvent):
    """An operator lowered the profile through the API (never through OCPP): from what to what."""

    TOPIC = topic("SecurityProfileLowered")
    profile: int
    previous: int
    lowered_at: datetime

    def apply(self, cp: Any) -> None:
        cp.security_profile = self.profile


@declared
class SecurityProfileRaised(ChargePointEvent):
    """The charge point accepted ChangeConfiguration SecurityProfile: the lower profiles are refused from now on."""

    TOPIC = topic("SecurityProfileRaised")
    profile: int
    raised_at: datetime

    def apply(self, cp: Any) -> None:
        # Only ever up: an answer cannot lower what an operator set.
        cp.security_profile = max(profile_of(cp), self.profile)


@declared
class CertificateNameSet(ChargePointEvent):
    """The CN its client certificate must have from now on (None: its id)."""

    TOPIC = topic("CertificateNameSet")
    certificate_name: str | None
    set_at: datetime

    def apply(self, cp: Any) -> None:
        cp.certificate_name = self.certificate_name


def registration_refusal(profile: int, has_password: bool, tls_served: bool) -> ProfileRefused | None:
    """Why an operator may not set ``profile``: 1 and 2 need a password, 0 means none, 2 and 3 need TLS."""
    if profile not in PROFILES:
        return ProfileRefused(422, "securityProfile must be 0, 1, 2 or 3")
    if profile in (1, 2) and not has_password:
        return ProfileRefused(422, f"security profile {profile} needs a password (HTTP Basic auth)")
    if profile == 0 and has_password:
        return ProfileRefused(422, "security profile 0 means no password, and this charge point has one")
    if profile >= 2 and not tls_served:
        return ProfileRefused(422, f"security profile {profile} needs TLS: start the server with --tls-cert/--tls-key")
    return None


def set_by_operator(cp: Profiled, profile: int, tls_served: bool, now: datetime) -> None:
    """The operator's registration sets the profile; raises ProfileRefused (422) when it cannot hold.

    Lowering is allowed here, and recorded as SecurityProfileLowered.
    """
    refusal = registration_refusal(profile, cp.has_password, tls_served)
    if refusal is not None:
        raise refusal
    if cp.security_profile == profile:
        return
    previous = profile_of(cp)
    if profile < previous:
        cp.trigger_event(SecurityProfileLowered, profile=profile, previous=previous, lowered_at=now)
    else:
        cp.trigger_event(SecurityProfileSet, profile=profile, previous=previous, set_at=now)


def set_certificate_name(cp: Profiled, certificate_name: str | None, now: datetime) -> None:
    if certificate_name is not None and not 1 <= len(certificate_name) <= 64:
        # X.509's upper bound for a CN (RFC 5280, ub-common-name).
        raise ProfileRefused(422, "certificateName must be 1 to 64 characters")
    if certificate_name != cp.certificate_name:
        cp.trigger_event(CertificateNameSet, certificate_name=certificate_name, set_at=now)


def raise_refusal(cp: Profiled, profile: int, tls_served: bool) -> ProfileRefused | None:
    """Why ChangeConfiguration SecurityProfile=``profile`` must not be sent to raise the charge point to it."""
    if profile not in PROFILES:
        return ProfileRefused(422, "profile must be 0, 1, 2 or 3")
    current = profile_of(cp)
    if profile < current:
        return ProfileRefused(409, f"the charge point is at profile {current}: a profile is never lowered through "
                                   "OCPP (Whitepaper A00.FR.005); an operator lowers it with PUT securityProfile")
    if profile == current:
        return ProfileRefused(409, f"the charge point is at profile {current} already")
    if profile in (1, 2) and not cp.has_password:
        return ProfileRefused(409, f"profile {profile} needs a password: set one first (PUT password, or "
                                   "ChangeConfiguration AuthorizationKey)")
    if profile >= 2 and not tls_served:
        return ProfileRefused(409, f"profile {profile} needs TLS: start the server with --tls-cert/--tls-key")
    if profile == 3:
        if not cp.installed_certificates.get(CENTRAL_SYSTEM_ROOT):
            return ProfileRefused(409, "profile 3 needs a CentralSystemRootCertificate installed on the charge "
                                       "point (InstallCertificate)")
        if cp.charge_point_certificate is None:
            return ProfileRefused(409, "profile 3 needs a charge point certificate this central system signed "
                                       "(SignCertificate -> CertificateSigned)")
    return None


def change_configuration_refusal(cp: Profiled, request: Payload, now: datetime) -> str | None:
    """Why a ChangeConfiguration must not be sent: a SecurityProfile it cannot have or one that lowers it
    (A00.FR.005), or an AuthorizationKey that breaks the Whitepaper's rules (never quoted back)."""
    key, value = str(request.get("key", "")).lower(), str(request.get("value", ""))
    if key == SECURITY_PROFILE_KEY:
        if value not in ("0", "1", "2", "3"):
            return "SecurityProfile must be 0, 1, 2 or 3"
        if int(value) < profile_of(cp):
            return (f"the charge point is at security profile {profile_of(cp)}: a profile is never lowered "
                    "through OCPP (Whitepaper A00.FR.005)")
    if key == AUTHORIZATION_KEY and AUTHORIZATION_KEY_TEXT.fullmatch(value) is None:
        return ("an AuthorizationKey is the hexadecimal form of a 16 to 20 byte password: 32 to 40 hex digits, "
                "an even number (OCPP 1.6 Security Whitepaper)")
    return None
