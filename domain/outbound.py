"""What the central system checks, and records, before it sends a call.

One function per action that needs it, found by the action's name, like the
handlers of domain/inbound.py. A function returns why the call must not be
sent (the operator gets it back and nothing goes to the charge point), or
None; it may record events first, in the same step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from domain import reservation_book, transactions
from domain.chargepoint import ChargePoint, Payload
from domain.charging import TX, ProfileRejected, validate_profile

Prepare = Callable[[ChargePoint, Payload, datetime], "str | None"]


def before_set_charging_profile(cp: ChargePoint, request: Payload, now: datetime) -> str | None:
    try:
        running = transactions.by_connector(cp.open_transactions)
        validate_profile(request["connectorId"], request["csChargingProfiles"], running)
    except ProfileRejected as rejected:
        return str(rejected)
    return None


def before_remote_start_transaction(cp: ChargePoint, request: Payload, now: datetime) -> str | None:
    profile = request.get("chargingProfile")
    if profile is None:
        return None
    # OCPP 1.6 section 5.11: the profile of a remote start is the TxProfile of
    # the transaction it starts, which has no id yet.
    if profile.get("chargingProfilePurpose") != TX:
        return "the chargingProfile of RemoteStartTransaction must be a TxProfile"
    if "transactionId" in profile:
        return "the chargingProfile of RemoteStartTransaction cannot name a transactionId: it has none yet"
    connector_id = request.get("connectorId", 1)  # the charge point picks one; any above 0 checks the same
    try:
        # The transaction this profile is for is the one about to start.
        validate_profile(connector_id, profile, {connector_id: 0})
    except ProfileRejected as rejected:
        return str(rejected)
    return None


def before_reserve_now(cp: ChargePoint, request: Payload, now: datetime) -> str | None:
    reason = reservation_book.refusal(request, now)
    if reason is None:
        # Pending from the moment it is sent: even with no answer, it expires on time.
        cp.request_reservation(request=request, requested_at=now)
    return reason


BEFORE_SENDING: dict[str, Prepare] = {
    "SetChargingProfile": before_set_charging_profile,
    "RemoteStartTransaction": before_remote_start_transaction,
    "ReserveNow": before_reserve_now,
}


def prepare_call(cp: ChargePoint, action: str, request: Payload, now: datetime) -> str | None:
    """Why `action` must not be sent to `cp`, or None once it may be sent."""
    prepare = BEFORE_SENDING.get(action)
    return prepare(cp, request, now) if prepare is not None else None
