"""The shapes of what a ChargePoint keeps: connectors, transactions, a firmware update.

Plain dicts in OCPP's camelCase, as the API shows them. They are built here
so the aggregate's event bodies say what changes, not how a record is spelled.
Every function is pure and returns a new dict.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.timestamps import format_ocpp_time, parse_ocpp_time

Payload = dict[str, Any]

# FirmwareStatusNotification status -> where an UpdateFirmware stands; Idle says nothing.
FIRMWARE_UPDATE_STATES = {
    "Downloading": "installing",
    "Downloaded": "installing",
    "Installing": "installing",
    "Installed": "installed",
    "DownloadFailed": "failed",
    "InstallationFailed": "failed",
}


def new_connector() -> Payload:
    return {"status": None, "errorCode": None, "info": None, "timestamp": None, "transactionId": None}


def connector_status(request: Payload, status_timestamp: str) -> Payload:
    """What a StatusNotification says of its connector."""
    return {
        "status": request["status"],
        "errorCode": request["errorCode"],
        "info": request.get("info"),
        "vendorId": request.get("vendorId"),
        "vendorErrorCode": request.get("vendorErrorCode"),
        "timestamp": status_timestamp,
    }


def status_time_of(request: Payload, received_at: datetime) -> str:
    """When a StatusNotification's status began: the charge point's own
    timestamp is the truth (as it sent it); ours if it gave none.

    The one place this is decided: ConnectorStatusChanged carries the result
    (status_timestamp), and upcasts events stored before it did with this.
    """
    return request.get("timestamp") or format_ocpp_time(received_at)


def open_transaction(request: Payload, reply: Payload, transaction_id: int, flags: list[str]) -> Payload:
    """A transaction as StartTransaction opened it."""
    return {
        "transactionId": transaction_id,
        "connectorId": request["connectorId"],
        "idTag": request["idTag"],
        "idTagStatus": reply["idTagInfo"]["status"],
        "idTagInfo": reply["idTagInfo"],  # a retried start gets the very same verdict
        "meterStart": request["meterStart"],
        "startTimestamp": request["timestamp"],
        "reservationId": request.get("reservationId"),
        "flags": list(flags),
    }


def stopped_transaction(started: Payload, request: Payload, energy_wh: int | None, flags: list[str]) -> Payload:
    """The transaction `started` as the StopTransaction `request` ended it."""
    return dict(
        started,
        meterStop=request["meterStop"],
        stopTimestamp=request["timestamp"],
        stopReason=request.get("reason", "Local"),
        energyWh=energy_wh,
        flags=started["flags"] + list(flags),
    )


def is_same_start(transaction: Payload, request: Payload) -> bool:
    """Whether the StartTransaction `request` is a retry of the one that opened `transaction`.

    OCPP 1.6 section 4.8 lets a charge point resend a StartTransaction it got
    no answer to; the same connector, idTag, timestamp and meterStart mean
    the same transaction.
    """
    return bool(
        transaction["connectorId"] == request["connectorId"]
        and transaction["idTag"].lower() == request["idTag"].lower()
        and transaction["meterStart"] == request["meterStart"]
        and parse_ocpp_time(transaction["startTimestamp"]) == parse_ocpp_time(request["timestamp"])
    )


def firmware_update_sent(message_id: str, request: Payload, sent_at: datetime) -> Payload:
    """An UpdateFirmware followed from the moment it is sent: a rollout shows it pending at once."""
    return {
        "messageId": message_id,
        "location": request["location"],
        "retrieveDate": request["retrieveDate"],
        "sentAt": format_ocpp_time(sent_at),
        "state": "pending",
        "lastStatus": None,
    }


def firmware_update_reported(update: Payload | None, status: str) -> Payload | None:
    """The followed update after a FirmwareStatusNotification of `status`."""
    state = FIRMWARE_UPDATE_STATES.get(status)
    if update is None or state is None:
        return update
    return dict(update, state=state, lastStatus=status)
