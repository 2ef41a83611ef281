"""Security events (OCPP 1.6 Security Whitepaper, section 8): reported by a charge point, or seen by us.

A charge point pushes the critical ones with SecurityEventNotification; the
central system records its own (a connection refused for its security
profile, ...) on the charge point's history the same way, so an auditor reads
both in one place. The list is open: a type not in it is kept as sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from domain.chargepoint_events import ChargePointEvent, declared, topic
from domain.facts import Facts, Payload

if TYPE_CHECKING:
    from domain.chargepoint import ChargePoint

# The Whitepaper's (edition 3, section 8) events marked critical; in 1.6 InvalidFirmwareSignature is not.
CRITICAL = frozenset({
    "FirmwareUpdated",
    "SettingSystemTime",
    "StartupOfTheDevice",
    "ResetOrReboot",
    "SecurityLogWasCleared",
    "MemoryExhaustion",
    "TamperDetectionActivated",
})


@declared
class SecurityEventReported(ChargePointEvent):
    """A SecurityEventNotification, as received, and whether its type is critical."""

    TOPIC = topic("SecurityEventReported")
    message_id: str
    request: Payload
    reply: Payload
    received_at: datetime
    critical: bool

    def apply(self, cp: ChargePoint) -> None:
        if self.critical:
            cp.last_critical_security_event = {**self.request, "receivedAt": self.received_at}
        cp.last_seen = self.received_at


@declared
class SecurityEventObserved(ChargePointEvent):
    """A security event the central system itself saw about the charge point (``type`` as in the Whitepaper)."""

    TOPIC = topic("SecurityEventObserved")
    type: str
    tech_info: str
    observed_at: datetime
    critical: bool = False  # whether its type is one the Whitepaper marks critical

    def apply(self, cp: ChargePoint) -> None:
        pass  # history only: the charge point's state is what it did, not what was refused


def answer_security_event_notification(cp: ChargePoint, message_id: str, request: Payload, facts: Facts) -> Payload:
    cp.trigger_event(SecurityEventReported, message_id=message_id, request=request, reply={}, received_at=facts.now,
                     critical=request["type"] in CRITICAL)
    return {}


def record_observed(cp: ChargePoint, type_: str, tech_info: str, now: datetime) -> None:
    cp.trigger_event(SecurityEventObserved, type=type_, tech_info=tech_info, observed_at=now,
                     critical=type_ in CRITICAL)
