"""What a handshake needs to know of a charge point's security, kept in memory, and its refusals recorded.

The requirements (profile, certificate name, the certificate this central
system signed for it) are read from the charge point's aggregate and kept; a
committed event of this node's that may change them (anything but the everyday
traffic below) drops the kept copy, so the next handshake reads it again.
Another node's change is not seen that way: a kept copy is read again once it
is KEEP_FOR old, so a profile raised on one node holds on all within seconds.

A refused connection the server can attribute to a charge point is recorded
on its history as a security event of the central system's own
(SecurityEventObserved), through the charge point's session when it is
connected on another socket (its actor owns the aggregate then). A flood of
refused handshakes must not write a flood of events: at most one per charge
point and type per ``RECORD_EVERY``; the rest are counted for /metrics.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any, Sequence

from adapters.service.chargepoints import ChargePoints
from domain.admission import Refusal, Requirements, requirements_of
from domain.security_events import record_observed

log = logging.getLogger(__name__)

RECORD_EVERY = timedelta(minutes=1)
KEEP_FOR = 5.0  # seconds: how stale another node's change to a charge point's security may be here
# Events that never change what a handshake is held to: the kept requirements outlive them.
EVERYDAY = frozenset({
    "Connected", "Disconnected", "HeartbeatReceived", "MeterValuesReceived", "ConnectorStatusChanged",
    "TransactionStarted", "TransactionStopped", "TransactionStartRepeated", "AuthorizationChecked", "Booted",
    "CallSent", "CallAnswered", "CallFailed", "CallTimedOut", "SecurityEventObserved", "SecurityEventReported",
    "DataTransferReceived", "FirmwareStatusReported", "DiagnosticsStatusReported",
})


class AdmissionFacts:
    def __init__(self, charge_points: ChargePoints) -> None:
        self._charge_points = charge_points
        self._kept: dict[str, tuple[float, Requirements]] = {}  # by charge point: (read at, requirements)
        self._last_recorded: dict[tuple[str, str], datetime] = {}
        self.refused: Counter[str] = Counter()  # refused connections by event type
        self.unrecorded: Counter[str] = Counter()  # refusals not written to history (rate limit), by type

    async def requirements(self, charge_point_id: str) -> Requirements:
        kept = self._kept.get(charge_point_id)
        now = time.monotonic()
        if kept is not None and now - kept[0] < KEEP_FOR:
            return kept[1]
        requirements = requirements_of(await self._charge_points.read(charge_point_id))
        self._kept[charge_point_id] = (now, requirements)
        return requirements

    def observe(self, events: Sequence[Any]) -> None:
        """Committed events (on the event loop): a change that may matter drops the kept requirements."""
        for event in events:
            if type(event).__name__ not in EVERYDAY:
                self._kept.pop(event.originator_id, None)

    async def record_refusal(self, charge_point_id: str, refusal: Refusal, now: datetime) -> None:
        """Counts the refusal, and records it on the charge point's history unless one of its type was
        recorded for it within RECORD_EVERY."""
        self.refused[refusal.type] += 1
        key = (charge_point_id, refusal.type)
        last = self._last_recorded.get(key)
        if last is not None and now - last < RECORD_EVERY:
            self.unrecorded[refusal.type] += 1
            return
        self._last_recorded[key] = now
        if len(self._last_recorded) > 10_000:
            # Forget what is past the limit's window: the table stays as small as the flood's recent span.
            self._last_recorded = {k: at for k, at in self._last_recorded.items() if now - at < RECORD_EVERY}
        try:
            await self._charge_points.change(
                charge_point_id, lambda cp: record_observed(cp, refusal.type, refusal.reason, now))
        except Exception:
            log.exception("could not record the refused connection of %s", charge_point_id)
