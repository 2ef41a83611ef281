"""The ChargePoint aggregate: everything a charge point said and was told.

Every OCPP exchange becomes one event carrying the message id, the request as
received and the reply that was sent, so an auditor can replay the dialogue.
What an answer to a central-system call means is recorded beside it, as
events in the domain's words (domain/call_outcomes.py). Decorated methods
only apply state: they run again on every replay, so the caller decides
replies, ids and times and passes them in. Events whose stored shape changed
are declared, with their upcasters, in domain/chargepoint_events.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from eventsourcing.domain import BaseAggregate, CanInitAggregate, event

from domain import call_outcomes, chargepoint_events, reservation_book, transactions
from domain.chargepoint_events import ChargePointEvent, topic
from domain.charging import drop_transaction_profiles, install_profile, remote_start_tx_profile
from domain.composite_schedule import composite_schedule
from domain.local_list import LocalList, list_after_version_report, updated_list
from domain.replies import LEARNED_FROM_REPLIES
from domain.state_shapes import (
    ConfigurationEntry,
    Connector,
    FirmwareUpdate,
    InstalledProfile,
    StoppedTransaction,
    Transaction,
    WaitingProfile,
    connector_status,
    firmware_update_failed,
    firmware_update_reported,
    firmware_update_sent,
    new_connector,
    open_transaction,
    stopped_transaction,
)
from domain.timestamps import parse_ocpp_time

Payload = dict[str, Any]
# topic() lives with the event classes; callers keep importing it from here.
__all__ = ["ChargePoint", "Payload", "topic"]


class ChargePoint(BaseAggregate[str]):
    TOPIC = "ampledger:ChargePoint"
    # 2: charging profiles, reservations, local list and firmware update state.
    # 3: command_outcomes declared (before, the first outcome kept added it).
    class_version = 3

    Event = ChargePointEvent

    class Registered(ChargePointEvent, CanInitAggregate[str]):
        TOPIC = "ampledger:ChargePoint.Registered"
        originator_topic: str
        description: str
        auto_registered: bool

    def __init__(self, id: str, description: str, auto_registered: bool) -> None:  # noqa: A002
        self.description = description
        self.auto_registered = auto_registered
        self.has_password = False
        self.online = False
        self.last_seen: datetime | None = None
        self.boot_info: Payload | None = None
        self.connectors: dict[int, Connector] = {}
        self.open_transactions: dict[int, Transaction] = {}
        self.recent_transactions: list[StoppedTransaction] = []
        self.firmware_status: str | None = None
        self.diagnostics_status: str | None = None
        self.local_list_version: int | None = None
        self.configuration: dict[str, ConfigurationEntry] = {}
        self.availability: dict[int, str] = {}
        self.charging_profiles: list[InstalledProfile] = []
        # Profiles of accepted RemoteStartTransactions, by idTag key, until their transaction starts.
        self.remote_start_profiles: dict[str, WaitingProfile] = {}
        self.reservations: reservation_book.Book = {}
        self.local_list: LocalList | None = None  # what the charge point holds; None: unknown
        self.firmware_update: FirmwareUpdate | None = None  # the last UpdateFirmware and how it went
        self.command_outcomes: dict[str, Payload] = {}  # the latest answer to each command kept, by action

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """A snapshot from before version 2 has none of its state yet.

        A fallback only: EventStore.load replays the events behind a stale
        snapshot instead, which also derives the new state from old events.
        """
        state.update(
            charging_profiles=[], remote_start_profiles={}, reservations={}, local_list=None, firmware_update=None
        )

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        """A snapshot from before version 3 has command_outcomes only if an outcome was kept."""
        state.setdefault("command_outcomes", {})

    # ---- operator facts -------------------------------------------------

    @event("DetailsUpdated", topic="ampledger:ChargePoint.DetailsUpdated")
    def update_details(self, description: str) -> None:
        self.description = description

    @event("CredentialsChanged", topic="ampledger:ChargePoint.CredentialsChanged")
    def change_credentials(self, has_password: bool, reason: str) -> None:
        # The password hash lives in the credentials table, never in events.
        self.has_password = has_password

    # ---- connection ---------------------------------------------------------

    @event("Connected", topic="ampledger:ChargePoint.Connected")
    def connect(self, remote: str, connected_at: datetime) -> None:
        self.online = True
        self.last_seen = connected_at

    @event("Disconnected", topic="ampledger:ChargePoint.Disconnected")
    def disconnect(self, reason: str, disconnected_at: datetime) -> None:
        self.online = False

    # ---- messages from the charge point ------------------------------------

    @event("Booted", topic="ampledger:ChargePoint.Booted")
    def boot(self, message_id: str, request: Payload, reply: Payload, received_at: datetime) -> None:
        self.boot_info = dict(request)
        self.last_seen = received_at

    @event("HeartbeatReceived", topic="ampledger:ChargePoint.HeartbeatReceived")
    def heartbeat(self, message_id: str, request: Payload, reply: Payload, received_at: datetime) -> None:
        self.last_seen = received_at

    ConnectorStatusChanged = chargepoint_events.ConnectorStatusChanged

    @event(ConnectorStatusChanged)
    def change_connector_status(
        self, message_id: str, request: Payload, reply: Payload, received_at: datetime, status_timestamp: str
    ) -> None:
        connector_id = request["connectorId"]
        self.connectors[connector_id] = {**self.connector(connector_id), **connector_status(request, status_timestamp)}
        self.last_seen = received_at

    @event("AuthorizationChecked", topic="ampledger:ChargePoint.AuthorizationChecked")
    def check_authorization(
        self, message_id: str, request: Payload, reply: Payload, received_at: datetime
    ) -> None:
        self.last_seen = received_at

    @event("TransactionStarted", topic="ampledger:ChargePoint.TransactionStarted")
    def start_transaction(
        self,
        message_id: str,
        request: Payload,
        reply: Payload,
        received_at: datetime,
        transaction_id: int,
        flags: list[str],
    ) -> None:
        self.open_transactions[transaction_id] = open_transaction(request, reply, transaction_id, flags)
        self.connector(request["connectorId"])["transactionId"] = transaction_id
        self.remote_start_profiles, profile = remote_start_tx_profile(self.remote_start_profiles, request,
                                                                      transaction_id)
        if profile is not None:
            self.charging_profiles = install_profile(self.charging_profiles, request["connectorId"], profile)
        self.last_seen = received_at

    @event("TransactionStartRepeated", topic="ampledger:ChargePoint.TransactionStartRepeated")
    def repeat_transaction_start(
        self, message_id: str, request: Payload, reply: Payload, received_at: datetime
    ) -> None:
        self.last_seen = received_at

    TransactionStopped = chargepoint_events.TransactionStopped

    @event(TransactionStopped)
    def stop_transaction(self, message_id: str, request: Payload, reply: Payload, received_at: datetime,
                         flags: list[str], energy_wh: int | None, duration_seconds: int | None) -> None:
        transaction_id = request["transactionId"]
        started = self.open_transactions.pop(transaction_id, None)
        if started is not None:
            stopped = stopped_transaction(started, request, energy_wh, flags)
            self.recent_transactions = transactions.kept_after_stop(self.recent_transactions, stopped)
            connector = self.connector(started["connectorId"])
            if connector.get("transactionId") == transaction_id:
                connector["transactionId"] = None
        # OCPP 1.6 section 3.13.1: a TxProfile ends with its transaction.
        self.charging_profiles = drop_transaction_profiles(
            self.charging_profiles, transaction_id, started["connectorId"] if started else None
        )
        self.last_seen = received_at

    @event("MeterValuesReceived", topic="ampledger:ChargePoint.MeterValuesReceived")
    def receive_meter_values(
        self,
        message_id: str,
        request: Payload,
        reply: Payload,
        received_at: datetime,
        energy_readings: list[Payload],
    ) -> None:
        transaction = self.open_transactions.get(request.get("transactionId"))  # type: ignore[arg-type]
        if transaction is not None and energy_readings:
            transaction["lastEnergyWh"] = energy_readings[-1]["energyWh"]
        self.last_seen = received_at

    @event("DataTransferReceived", topic="ampledger:ChargePoint.DataTransferReceived")
    def receive_data_transfer(
        self, message_id: str, request: Payload, reply: Payload, received_at: datetime
    ) -> None:
        self.last_seen = received_at

    @event("FirmwareStatusReported", topic="ampledger:ChargePoint.FirmwareStatusReported")
    def report_firmware_status(
        self, message_id: str, request: Payload, reply: Payload, received_at: datetime
    ) -> None:
        self.firmware_status = request["status"]
        self.firmware_update = firmware_update_reported(self.firmware_update, request["status"])
        self.last_seen = received_at

    @event("DiagnosticsStatusReported", topic="ampledger:ChargePoint.DiagnosticsStatusReported")
    def report_diagnostics_status(
        self, message_id: str, request: Payload, reply: Payload, received_at: datetime
    ) -> None:
        self.diagnostics_status = request["status"]
        self.last_seen = received_at

    # ---- calls from the central system --------------------------------------

    @event("CallSent", topic="ampledger:ChargePoint.CallSent")
    def send_call(self, message_id: str, action: str, request: Payload, sent_at: datetime) -> None:
        if action == "UpdateFirmware":
            self.firmware_update = firmware_update_sent(message_id, request, sent_at)

    def record_call_answer(self, message_id: str, action: str, request: Payload, reply: Payload,
                           received_at: datetime) -> None:
        """The charge point answered: the exchange, then what the answer means (domain/call_outcomes.py)."""
        self._call_answered(message_id=message_id, action=action, request=request, reply=reply, received_at=received_at)
        self._record_outcomes(call_outcomes.of_answer(action, request, reply, received_at))

    def record_call_error(self, message_id: str, action: str, request: Payload, error_code: str,
                          error_description: str, error_details: Payload, received_at: datetime) -> None:
        """The charge point answered with a CALLERROR: the exchange, then what it means."""
        self._call_failed(message_id=message_id, action=action, request=request, error_code=error_code,
                          error_description=error_description, error_details=error_details, received_at=received_at)
        self._record_outcomes(call_outcomes.of_error(action, request, error_code, received_at))

    CallAnswered = chargepoint_events.CallAnswered
    CallFailed = chargepoint_events.CallFailed

    # `implied`: only an answer stored as class_version 1 has it (chargepoint_events.py).
    @event(CallAnswered)
    def _call_answered(self, message_id: str, action: str, request: Payload, reply: Payload, received_at: datetime,
                       implied: Sequence[call_outcomes.Outcome] = ()) -> None:
        learn = LEARNED_FROM_REPLIES.get(action)
        if learn is not None:
            learn(self, request, reply)
        self.last_seen = received_at
        self._apply_implied(implied, received_at)

    @event(CallFailed)
    def _call_failed(self, message_id: str, action: str, request: Payload, error_code: str, error_description: str,
                     error_details: Payload, received_at: datetime,
                     implied: Sequence[call_outcomes.Outcome] = ()) -> None:
        if action == "UpdateFirmware":
            self.firmware_update = firmware_update_failed(self.firmware_update, message_id, error_code)
        self.last_seen = received_at
        self._apply_implied(implied, received_at)

    def _record_outcomes(self, outcomes: list[call_outcomes.Outcome]) -> None:
        for name, fields in outcomes:
            if call_outcomes.still_applies((name, fields), self.reservations):
                self.trigger_event(getattr(type(self), name), **fields)

    def _apply_implied(self, implied: Sequence[call_outcomes.Outcome], received_at: datetime) -> None:
        # Replaying an old answer: its outcomes apply as if recorded beside it (the answer is version + 1).
        for outcome in implied:
            if call_outcomes.still_applies(outcome, self.reservations):
                self._outcome_event(self.id, self.version + 1, received_at, outcome).apply(self)

    @classmethod
    def implied_events(cls, answer: Any) -> list[Any]:
        """The outcome events an answer stored as class_version 1 implied (none for
        any other event), for the read models; see domain/chargepoint_events.py."""
        return [cls._outcome_event(answer.originator_id, answer.originator_version, answer.received_at, outcome)
                for outcome in getattr(answer, call_outcomes.IMPLIED, ())]

    @classmethod
    def _outcome_event(cls, charge_point_id: str, version: int, at: datetime, outcome: call_outcomes.Outcome) -> Any:
        # Never stored: it stands for what the answer at `version` implied.
        name, fields = outcome
        return getattr(cls, name)(originator_id=charge_point_id, originator_version=version, timestamp=at, **fields)

    @event("CallTimedOut", topic="ampledger:ChargePoint.CallTimedOut")
    def record_call_timeout(
        self, message_id: str, action: str, request: Payload, timed_out_at: datetime
    ) -> None:
        pass

    # ---- reservations ------------------------------------------------------------

    @event("ReservationRequested", topic="ampledger:ChargePoint.ReservationRequested")
    def request_reservation(self, request: Payload, requested_at: datetime) -> None:
        reservation = reservation_book.requested(request, requested_at)
        self.reservations = reservation_book.booked(self.reservations, reservation)

    @event("ReservationAccepted", topic="ampledger:ChargePoint.ReservationAccepted")
    def _accept_reservation(self, reservation_id: int, accepted_at: datetime) -> None:
        self.reservations = reservation_book.changed(
            self.reservations, reservation_id, reservation_book.ACCEPTED, replyStatus=reservation_book.ACCEPTED
        )

    @event("ReservationRefused", topic="ampledger:ChargePoint.ReservationRefused")
    def _refuse_reservation(self, reservation_id: int, reply_status: str, refused_at: datetime) -> None:
        self.reservations = reservation_book.changed(
            self.reservations, reservation_id, reservation_book.REJECTED, replyStatus=reply_status
        )

    @event("ReservationUsed", topic="ampledger:ChargePoint.ReservationUsed")
    def use_reservation(self, reservation_id: int, transaction_id: int, used_at: datetime) -> None:
        self.reservations = reservation_book.changed(
            self.reservations, reservation_id, reservation_book.USED, transactionId=transaction_id
        )

    @event("ReservationCancelled", topic="ampledger:ChargePoint.ReservationCancelled")
    def cancel_reservation(self, reservation_id: int, reason: str, cancelled_at: datetime) -> None:
        self.reservations = reservation_book.changed(
            self.reservations, reservation_id, reservation_book.CANCELLED, reason=reason
        )

    @event("ReservationExpired", topic="ampledger:ChargePoint.ReservationExpired")
    def expire_reservation(self, reservation_id: int, expired_at: datetime) -> None:
        self.reservations = reservation_book.changed(self.reservations, reservation_id, reservation_book.EXPIRED)

    def expire_due_reservations(self, now: datetime) -> datetime | None:
        """Expires what is due at `now`; returns when the next open reservation expires."""
        for reservation_id in reservation_book.due(self.reservations, now):
            self.expire_reservation(reservation_id=reservation_id, expired_at=now)
        return reservation_book.next_expiry(self.reservations)

    # ---- the Local Authorization List -------------------------------------------

    @event("LocalListVersionReported", topic="ampledger:ChargePoint.LocalListVersionReported")
    def _report_local_list_version(self, list_version: int, reported_at: datetime) -> None:
        self.local_list = list_after_version_report(self.local_list, self.local_list_version, list_version)
        self.local_list_version = list_version

    @event("LocalListUpdated", topic="ampledger:ChargePoint.LocalListUpdated")
    def _update_local_list(self, list_version: int, update_type: str, entries: list[Payload],
                           updated_at: datetime) -> None:
        self.local_list = updated_list(self.local_list, {"updateType": update_type, "localAuthorizationList": entries})
        self.local_list_version = list_version

    # ---- files -------------------------------------------------------------------

    @event("DiagnosticsUploaded", topic="ampledger:ChargePoint.DiagnosticsUploaded")
    def receive_diagnostics_file(self, file_name: str, size: int, sha256: str, received_at: datetime) -> None:
        pass  # the file itself lives in the data directory; this is its receipt

    # ---- queries ---------------------------------------------------------------

    def connector(self, connector_id: int) -> Connector:
        return self.connectors.setdefault(connector_id, new_connector())

    def composite_schedule(self, connector_id: int, start: datetime, duration: int, unit: str | None) -> Payload:
        """The schedule the installed profiles give a connector from ``start`` (OCPP 1.6 section 3.13)."""
        transaction = transactions.running_on(self.connectors, self.open_transactions, connector_id)
        # Relative profiles count from the start of the connector's transaction (3.13.1).
        transaction_start = parse_ocpp_time(transaction["startTimestamp"]) if transaction else None
        return composite_schedule(self.charging_profiles, connector_id, start, duration, unit, transaction_start,
                                  transaction["transactionId"] if transaction else None)
