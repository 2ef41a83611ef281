"""The shapes of what a ChargePoint keeps: connectors, transactions, profiles, reservations, ...

Plain dicts in OCPP's camelCase, as the API shows them, snapshots hold them
and older histories rebuild them. Each shape is a TypedDict, so mypy checks
the field names while the values stay plain dicts at run time. The builders
here let the aggregate's event bodies say what changes, not how a record is
spelled. Every function is pure and returns a new dict.
"""

from __future__ import annotations

import copy
from datetime import datetime
from decimal import Decimal
from typing import Any, NotRequired, TypedDict

from domain.timestamps import format_ocpp_time

Payload = dict[str, Any]
Profile = dict[str, Any]  # a csChargingProfiles payload, as OCPP spells it


class ConnectorStatus(TypedDict):
    """What a StatusNotification says of its connector."""

    status: str
    errorCode: str
    info: str | None
    vendorId: str | None
    vendorErrorCode: str | None
    timestamp: str  # when the status began (status_time_of)


class Connector(TypedDict):
    """A connector as the central system knows it (connectorId 0: the whole charge point)."""

    status: str | None
    errorCode: str | None
    info: str | None
    timestamp: str | None
    transactionId: int | None  # the transaction running on it
    vendorId: NotRequired[str | None]
    vendorErrorCode: NotRequired[str | None]
    unlockStatus: NotRequired[str]  # how the last UnlockConnector was answered


class Transaction(TypedDict):
    """A transaction as StartTransaction opened it."""

    transactionId: int
    connectorId: int
    idTag: str
    idTagStatus: str
    idTagInfo: NotRequired[Payload]  # transactions recorded before it was kept have idTagStatus alone
    meterStart: int
    startTimestamp: str
    reservationId: int | None
    flags: list[str]
    lastEnergyWh: NotRequired[Decimal]  # the energy register the last MeterValues reported
    openAtBoot: NotRequired[bool]  # open when the charge point last booted (stale_sessions.py)


class StoppedTransaction(Transaction):
    """A transaction as StopTransaction ended it."""

    meterStop: int
    stopTimestamp: str
    stopReason: str
    energyWh: int | None


class InstalledProfile(TypedDict):
    """A charging profile the charge point accepted, on the connector it was set on."""

    connectorId: int
    chargingProfile: Profile


class WaitingProfile(TypedDict):
    """The profile of an accepted RemoteStartTransaction, kept by idTag key until its transaction starts."""

    connectorId: int | None  # None: whichever connector the charge point picks
    chargingProfile: Profile


class Reservation(TypedDict):
    """A reservation as ReserveNow asked for it and as it went since (domain/reservation_book.py)."""

    reservationId: int
    connectorId: int
    idTag: str
    parentIdTag: NotRequired[str]
    expiryDate: str
    status: str
    requestedAt: str
    replyStatus: NotRequired[str]  # the charge point's answer, or the CALLERROR code
    transactionId: NotRequired[int]  # the transaction that used it
    reason: NotRequired[str]  # why it was cancelled


class ReservationChange(TypedDict, total=False):
    """What a reservation's new status comes with."""

    replyStatus: str
    transactionId: int
    reason: str


class FirmwareUpdate(TypedDict):
    """The last UpdateFirmware and how it went."""

    messageId: str
    location: str
    retrieveDate: str
    sentAt: str
    state: str  # pending, installing, installed or failed
    lastStatus: str | None  # the last FirmwareStatusNotification that said where it stands
    error: NotRequired[str]  # the CALLERROR that refused it


class ConfigurationEntry(TypedDict):
    """A configuration key as the charge point reported it, or as we changed it."""

    value: str | None  # a secret key's value is never kept (domain/redaction.py)
    readonly: NotRequired[bool]
    status: NotRequired[str]  # Accepted or RebootRequired: how the last ChangeConfiguration was answered

# FirmwareStatusNotification status -> where an UpdateFirmware stands; Idle says nothing.
FIRMWARE_UPDATE_STATES = {
    "Downloading": "installing",
    "Downloaded": "installing",
    "Installing": "installing",
    "Installed": "installed",
    "DownloadFailed": "failed",
    "InstallationFailed": "failed",
}


def new_connector() -> Connector:
    return {"status": None, "errorCode": None, "info": None, "timestamp": None, "transactionId": None}


def connectors_with_status(connectors: dict[int, Connector], request: Payload,
                           status_timestamp: str) -> dict[int, Connector]:
    """The connectors once the StatusNotification `request` said how its connector is."""
    connector_id = request["connectorId"]
    status = connector_status(request, status_timestamp)
    return {**connectors, connector_id: {**connectors.get(connector_id, new_connector()), **status}}


def connector_status(request: Payload, status_timestamp: str) -> ConnectorStatus:
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


def open_transaction(request: Payload, reply: Payload, transaction_id: int, flags: list[str]) -> Transaction:
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


def stopped_transaction(
    started: Transaction, request: Payload, energy_wh: int | None, flags: list[str]
) -> StoppedTransaction:
    """The transaction `started` as the StopTransaction `request` ended it."""
    return {
        **started,
        "meterStop": request["meterStop"],
        "stopTimestamp": request["timestamp"],
        "stopReason": request.get("reason", "Local"),
        "energyWh": energy_wh,
        "flags": started["flags"] + list(flags),
    }


def firmware_update_sent(message_id: str, request: Payload, sent_at: datetime) -> FirmwareUpdate:
    """An UpdateFirmware followed from the moment it is sent: a rollout shows it pending at once."""
    return {
        "messageId": message_id,
        "location": request["location"],
        "retrieveDate": request["retrieveDate"],
        "sentAt": format_ocpp_time(sent_at),
        "state": "pending",
        "lastStatus": None,
    }


def firmware_update_reported(update: FirmwareUpdate | None, status: str) -> FirmwareUpdate | None:
    """The followed update after a FirmwareStatusNotification of `status`."""
    state = FIRMWARE_UPDATE_STATES.get(status)
    if update is None or state is None:
        return update
    return {**update, "state": state, "lastStatus": status}


def firmware_update_failed(update: FirmwareUpdate | None, message_id: str, error_code: str) -> FirmwareUpdate | None:
    """The followed update once the call `message_id` got the CALLERROR `error_code`: failed, if it was that call."""
    if update is None or update["messageId"] != message_id:
        return update
    return {**update, "state": "failed", "error": error_code}


def snapshot_v1_to_v2(state: Payload) -> None:
    """A ChargePoint snapshot from before version 2 has none of this state yet.

    A fallback only: EventStore.load replays the events behind a stale
    snapshot instead, which also derives the new state from old events.
    """
    state.update(charging_profiles=[], remote_start_profiles={}, reservations={}, local_list=None, firmware_update=None)


def snapshot_v2_to_v3(state: Payload) -> None:
    """A ChargePoint snapshot from before version 3 has command_outcomes only if an outcome was kept."""
    state.setdefault("command_outcomes", {})


# State the security extension added in ChargePoint version 4, and its value before.
ADDED_IN_V4: dict[str, Any] = {
    "last_critical_security_event": None,
    "security_profile": None,
    "certificate_name": None,
    "installed_certificates": {},
    "charge_point_certificate": None,
    "certificate_requests": {},
    "certificates_sent": {},
    "log_upload": None,
    "signed_firmware_update": None,
}


def snapshot_v3_to_v4(state: Payload) -> None:
    """A ChargePoint snapshot from before version 4 has none of the security extension's state."""
    for name, before in ADDED_IN_V4.items():
        state.setdefault(name, copy.deepcopy(before))
