"""What the central system answers to each call a charge point makes.

One handler per OCPP action, found by the action's name. A handler decides
the reply from the request, the aggregate's state and the facts the caller
passes in (clock, authorization, id allocation), records the exchange on the
aggregate and returns the reply payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Mapping

from domain import reservation_book, transactions
from domain.chargepoint import ChargePoint, Payload
from domain.metering import energy_readings
from domain.session_totals import stop_totals
from domain.state_shapes import status_time_of
from domain.timestamps import format_ocpp_time

VendorHandler = Callable[[str, Payload], Payload]


@dataclass(frozen=True)
class Facts:
    """What a handler may know beyond the aggregate, supplied by the caller."""

    now: datetime
    heartbeat_interval: int
    # The IdTagInfo for a tag, ConcurrentTx included, as the registry says now.
    id_tag_info: Callable[[str], Payload]
    # A transactionId never handed out before, by any node, ever.
    allocate_transaction_id: Callable[[], int]
    vendor_handlers: Mapping[str, VendorHandler] = field(default_factory=dict)


def on_boot_notification(cp: ChargePoint, message_id: str, request: Payload, facts: Facts) -> Payload:
    # Only registered charge points reach this point, so they are Accepted.
    reply = {
        "status": "Accepted",
        "currentTime": format_ocpp_time(facts.now),
        "interval": facts.heartbeat_interval,
    }
    cp.boot(message_id=message_id, request=request, reply=reply, received_at=facts.now)
    return reply


def on_heartbeat(cp: ChargePoint, message_id: str, request: Payload, facts: Facts) -> Payload:
    reply = {"currentTime": format_ocpp_time(facts.now)}
    cp.heartbeat(message_id=message_id, request=request, reply=reply, received_at=facts.now)
    return reply


def on_status_notification(cp: ChargePoint, message_id: str, request: Payload, facts: Facts) -> Payload:
    reply: Payload = {}
    connector_id, status = request["connectorId"], request["status"]
    cp.change_connector_status(message_id=message_id, request=request, reply=reply, received_at=facts.now,
                               status_timestamp=status_time_of(request, facts.now))
    for reservation_id in reservation_book.cancelled_by_status(cp.reservations, connector_id, status):
        cp.cancel_reservation(
            reservation_id=reservation_id, reason=f"connector {connector_id} {status}", cancelled_at=facts.now
        )
    return reply


def on_authorize(cp: ChargePoint, message_id: str, request: Payload, facts: Facts) -> Payload:
    reply = {"idTagInfo": facts.id_tag_info(request["idTag"])}
    cp.check_authorization(message_id=message_id, request=request, reply=reply, received_at=facts.now)
    return reply


def on_start_transaction(cp: ChargePoint, message_id: str, request: Payload, facts: Facts) -> Payload:
    earlier = transactions.started_by(cp.open_transactions, cp.recent_transactions, request)
    if earlier is not None:
        # A retry: the same transaction, the same id, the same verdict.
        reply = {
            "transactionId": earlier["transactionId"],
            # Transactions recorded before idTagInfo was kept have the status alone.
            "idTagInfo": earlier.get("idTagInfo", {"status": earlier["idTagStatus"]}),
        }
        cp.repeat_transaction_start(message_id=message_id, request=request, reply=reply, received_at=facts.now)
        return reply
    info = facts.id_tag_info(request["idTag"])
    # OCPP 1.6 section 4.8: a transactionId is always given, even when the tag
    # is refused; the charge point then stops the transaction itself.
    transaction_id = facts.allocate_transaction_id()
    flags = [] if info["status"] == "Accepted" else ["id_tag_not_accepted"]
    reservation_id, reservation_flags = reservation_book.used_by_start(cp.reservations, request, info)
    reply = {"transactionId": transaction_id, "idTagInfo": info}
    cp.start_transaction(
        message_id=message_id,
        request=request,
        reply=reply,
        received_at=facts.now,
        transaction_id=transaction_id,
        flags=flags + reservation_flags,
    )
    if reservation_id is not None:
        cp.use_reservation(reservation_id=reservation_id, transaction_id=transaction_id, used_at=facts.now)
    return reply


def on_stop_transaction(cp: ChargePoint, message_id: str, request: Payload, facts: Facts) -> Payload:
    # Never refused (OCPP 1.6 section 4.10): oddities are flagged, not rejected.
    transaction_id = request["transactionId"]
    transaction = transactions.find(cp.open_transactions, cp.recent_transactions, transaction_id)
    totals = stop_totals(transaction, transaction_id in cp.open_transactions, request)
    reply: Payload = {}
    if "idTag" in request:
        reply["idTagInfo"] = facts.id_tag_info(request["idTag"])
        if reply["idTagInfo"]["status"] == "ConcurrentTx":
            # The tag's only transaction is the one now stopping.
            reply["idTagInfo"]["status"] = "Accepted"
    cp.stop_transaction(
        message_id=message_id,
        request=request,
        reply=reply,
        received_at=facts.now,
        flags=totals.flags,
        energy_wh=totals.energy_wh,
        duration_seconds=totals.duration_seconds,
    )
    return reply


def on_meter_values(cp: ChargePoint, message_id: str, request: Payload, facts: Facts) -> Payload:
    reply: Payload = {}
    cp.receive_meter_values(
        message_id=message_id,
        request=request,
        reply=reply,
        received_at=facts.now,
        energy_readings=energy_readings(request["meterValue"]),
    )
    return reply


def on_data_transfer(cp: ChargePoint, message_id: str, request: Payload, facts: Facts) -> Payload:
    # vendorId is CiString255: any case names the same vendor.
    vendor = request["vendorId"].lower()
    handler = next((h for name, h in facts.vendor_handlers.items() if name.lower() == vendor), None)
    reply = handler(cp.id, request) if handler else {"status": "UnknownVendorId"}
    cp.receive_data_transfer(message_id=message_id, request=request, reply=reply, received_at=facts.now)
    return reply


def on_firmware_status_notification(cp: ChargePoint, message_id: str, request: Payload, facts: Facts) -> Payload:
    reply: Payload = {}
    cp.report_firmware_status(message_id=message_id, request=request, reply=reply, received_at=facts.now)
    return reply


def on_diagnostics_status_notification(
    cp: ChargePoint, message_id: str, request: Payload, facts: Facts
) -> Payload:
    reply: Payload = {}
    cp.report_diagnostics_status(message_id=message_id, request=request, reply=reply, received_at=facts.now)
    return reply


Handler = Callable[[ChargePoint, str, Payload, Facts], Payload]

HANDLERS: dict[str, Handler] = {
    "BootNotification": on_boot_notification,
    "Heartbeat": on_heartbeat,
    "StatusNotification": on_status_notification,
    "Authorize": on_authorize,
    "StartTransaction": on_start_transaction,
    "StopTransaction": on_stop_transaction,
    "MeterValues": on_meter_values,
    "DataTransfer": on_data_transfer,
    "FirmwareStatusNotification": on_firmware_status_notification,
    "DiagnosticsStatusNotification": on_diagnostics_status_notification,
}
