"""What the central system checks, and records, before it sends some calls (ChargePoint.prepare_call).

Each check answers why the call must not be sent, or None once it may; a
ReserveNow that may go is recorded as requested first, so a reservation is
Pending from the moment it is sent and expires on time even unanswered; a
SignedUpdateFirmware is followed (pending in the rollout) the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Protocol

from domain import charging, reservation_book, security_profile, signed_firmware, transactions
from domain.state_shapes import Transaction

Payload = dict[str, Any]


class Checked(Protocol):
    """The aggregate a call is checked against."""

    open_transactions: dict[int, Transaction]

    def _reservation_requested(self, request: Payload, requested_at: datetime) -> None: ...


def set_charging_profile(cp: Checked, request: Payload, now: datetime) -> str | None:
    return charging.set_profile_refusal(request, transactions.by_connector(cp.open_transactions))


def remote_start_transaction(cp: Checked, request: Payload, now: datetime) -> str | None:
    return charging.remote_start_refusal(request)


def reserve_now(cp: Checked, request: Payload, now: datetime) -> str | None:
    reason = reservation_book.refusal(request, now)
    if reason is None:
        cp._reservation_requested(request, now)
    return reason


# The check for each action that has one, by the action's OCPP name.
BEFORE_SENDING: dict[str, Callable[[Any, Payload, datetime], str | None]] = {
    "SetChargingProfile": set_charging_profile,
    "RemoteStartTransaction": remote_start_transaction,
    "ReserveNow": reserve_now,
    "ChangeConfiguration": security_profile.change_configuration_refusal,
    "SignedUpdateFirmware": signed_firmware.record_requested,
}
