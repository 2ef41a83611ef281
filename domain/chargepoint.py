"""The ChargePoint aggregate: what a charge point said, what it was told, and why.

A public method decides: it checks the rule and works out the reply from the
request, the state and the Facts its caller passes in, then triggers a
past-tense event through a private @event method, which only applies state:
it runs again on every replay, so the event carries what was decided.
domain/answers.py finds the method that answers a charge point's action. The
rules are plain functions in the modules named for them (transactions,
reservation_book, ...). The security extension's events are classes declared
in its own modules (domain/security_events.py, ...), applied by their apply().
"""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from eventsourcing.domain import BaseAggregate, CanInitAggregate, event

from domain import call_outcomes, chargepoint_events, charging, replies, reservation_book, state_shapes, transactions
from domain import certificates as certificate_outcomes
from domain.call_checks import BEFORE_SENDING  # re-exported: what prepare_call checks before sending
from domain.call_outcomes import Outcome
from domain.chargepoint_events import ChargePointEvent, topic
from domain.composite_schedule import connector_schedule
from domain.facts import Facts, Payload
from domain.local_list import LocalList, list_after_version_report, updated_list
from domain.metering import energy_readings
from domain.operator_end import ENDED_BY_OPERATOR, last_meter_value, still_open
from domain.session_totals import stop_totals
from domain.stale_sessions import FLAG_OF_CAUSE, ended_by_status, marked_at_boot, superseded_by_start
from domain.state_shapes import status_time_of
from domain.timestamps import format_ocpp_time
from domain.transaction_ends import apply_end, apply_stop

__all__ = ["BEFORE_SENDING", "ChargePoint", "Payload", "topic"]  # topic() is re-exported


class ChargePoint(BaseAggregate[str]):
    TOPIC = "ampledger:ChargePoint"
    # 2: charging profiles, reservations, local list and firmware update; 3: command_outcomes declared;
    # 4: the security extension's state (state_shapes.ADDED_IN_V4).
    class_version = 4

    Event = ChargePointEvent
    # Declared as classes, with their upcasters (chargepoint_events.py); the methods below apply them.
    ConnectorStatusChanged = chargepoint_events.ConnectorStatusChanged
    TransactionStopped = chargepoint_events.TransactionStopped
    CallAnswered = chargepoint_events.CallAnswered
    CallFailed = chargepoint_events.CallFailed

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
        self.connectors: dict[int, state_shapes.Connector] = {}
        self.open_transactions: dict[int, state_shapes.Transaction] = {}
        self.recent_transactions: list[state_shapes.StoppedTransaction] = []
        self.firmware_status: str | None = None
        self.diagnostics_status: str | None = None
        self.local_list_version: int | None = None
        self.configuration: dict[str, state_shapes.ConfigurationEntry] = {}
        self.availability: dict[int, str] = {}
        self.charging_profiles: list[state_shapes.InstalledProfile] = []
        self.remote_start_profiles: dict[str, state_shapes.WaitingProfile] = {}
        self.reservations: reservation_book.Book = {}
        self.local_list: LocalList | None = None  # what the charge point holds; None: unknown
        self.firmware_update: state_shapes.FirmwareUpdate | None = None  # the last UpdateFirmware and how it went
        self.command_outcomes: dict[str, Payload] = {}  # the latest answer to each command kept, by action
        # The security extension (domain/security_events.py, ...), applied by its event classes' apply().
        self.last_critical_security_event: Payload | None = None
        self.security_profile: int | None = None  # None: 1 with a password, else 0 (domain/security_profile.py)
        self.certificate_name: str | None = None  # the CN of its client certificate; None: its id
        self.installed_certificates: dict[str, list[Payload]] = {}  # by certificateType: CertificateHashData
        self.charge_point_certificate: Payload | None = None  # the latest one we signed that it accepted
        self.certificate_requests: dict[str, Payload] = {}  # CSRs waiting to be signed, by request id
        self.certificates_sent: dict[str, Payload] = {}  # by the PEM sent: what it is, until answered
        self.log_upload: Payload | None = None  # the latest GetLog and how it went (domain/logs.py)
        self.signed_firmware_update: Payload | None = None  # the latest SignedUpdateFirmware (signed_firmware.py)

    # Snapshots of older versions, read as today's (state_shapes.py).
    upcast_v1_v2 = staticmethod(state_shapes.snapshot_v1_to_v2)
    upcast_v2_v3 = staticmethod(state_shapes.snapshot_v2_to_v3)
    upcast_v3_v4 = staticmethod(state_shapes.snapshot_v3_to_v4)

    # ---- the operator and the connection ---------------------------------------

    def update_details(self, description: str) -> None:
        self._details_updated(description=description)

    @event("DetailsUpdated", topic="ampledger:ChargePoint.DetailsUpdated")
    def _details_updated(self, description: str) -> None:
        self.description = description

    def record_credentials_changed(self, has_password: bool, reason: str) -> None:
        # The password hash lives in the credentials table, never in events.
        self._credentials_changed(has_password=has_password, reason=reason)

    @event("CredentialsChanged", topic="ampledger:ChargePoint.CredentialsChanged")
    def _credentials_changed(self, has_password: bool, reason: str) -> None:
        self.has_password = has_password

    def record_connection(self, remote: str, connected_at: datetime) -> None:
        self._connected(remote=remote, connected_at=connected_at)

    @event("Connected", topic="ampledger:ChargePoint.Connected")
    def _connected(self, remote: str, connected_at: datetime) -> None:
        self.online = True
        self.last_seen = connected_at

    def record_disconnection(self, reason: str, disconnected_at: datetime) -> None:
        self._disconnected(reason=reason, disconnected_at=disconnected_at)

    @event("Disconnected", topic="ampledger:ChargePoint.Disconnected")
    def _disconnected(self, reason: str, disconnected_at: datetime) -> None:
        self.online = False

    # ---- calls from the charge point: each answered, the exchange recorded -------

    def answer_boot_notification(self, message_id: str, request: Payload, facts: Facts) -> Payload:
        # Only registered charge points reach this point, so they are Accepted.
        reply = {"status": "Accepted", "currentTime": format_ocpp_time(facts.now), "interval": facts.heartbeat_interval}
        self._booted(message_id, request, reply, facts.now)
        return reply

    @event("Booted", topic="ampledger:ChargePoint.Booted")
    def _booted(self, message_id: str, request: Payload, reply: Payload, received_at: datetime) -> None:
        self.boot_info = dict(request)
        self.open_transactions = marked_at_boot(self.open_transactions)
        self.last_seen = received_at

    def answer_heartbeat(self, message_id: str, request: Payload, facts: Facts) -> Payload:
        reply = {"currentTime": format_ocpp_time(facts.now)}
        self._heartbeat_received(message_id, request, reply, facts.now)
        return reply

    @event("HeartbeatReceived", topic="ampledger:ChargePoint.HeartbeatReceived")
    def _heartbeat_received(self, message_id: str, request: Payload, reply: Payload, received_at: datetime) -> None:
        self.last_seen = received_at

    def answer_status_notification(self, message_id: str, request: Payload, facts: Facts) -> Payload:
        connector_id, status = request["connectorId"], request["status"]
        self._connector_status_changed(message_id, request, {}, facts.now, status_time_of(request, facts.now))
        for end in ended_by_status(self.open_transactions, request, facts.now):
            self._transaction_ended_as_stale(**end)
        # OCPP 1.6 section 3.12: a connector that can no longer serve ends its reservations.
        for reservation_id in reservation_book.cancelled_by_status(self.reservations, connector_id, status):
            self._reservation_cancelled(reservation_id, f"connector {connector_id} {status}", facts.now)
        return {}

    @event(ConnectorStatusChanged)
    def _connector_status_changed(self, message_id: str, request: Payload, reply: Payload, received_at: datetime,
                                  status_timestamp: str) -> None:
        self.connectors = state_shapes.connectors_with_status(self.connectors, request, status_timestamp)
        self.last_seen = received_at

    def answer_authorize(self, message_id: str, request: Payload, facts: Facts) -> Payload:
        reply = {"idTagInfo": facts.id_tag_info(request["idTag"])}
        self._authorization_checked(message_id, request, reply, facts.now)
        return reply

    @event("AuthorizationChecked", topic="ampledger:ChargePoint.AuthorizationChecked")
    def _authorization_checked(self, message_id: str, request: Payload, reply: Payload, received_at: datetime) -> None:
        self.last_seen = received_at

    def answer_start_transaction(self, message_id: str, request: Payload, facts: Facts) -> Payload:
        earlier = transactions.started_by(self.open_transactions, self.recent_transactions, request)
        if earlier is not None:
            reply = transactions.repeated_start_reply(earlier)  # a retry: the same id, the same verdict
            self._transaction_start_repeated(message_id, request, reply, facts.now)
            return reply
        ending = superseded_by_start(self.open_transactions, request, facts.now)
        for end in ending:
            self._transaction_ended_as_stale(**end)
        # ConcurrentTx only here (section 7.2), as if the stale transactions had ended.
        info = facts.id_tag_info_at_start(request["idTag"], [end["transaction_id"] for end in ending])
        # OCPP 1.6 section 4.8: always a transactionId, even for a refused tag (the charge point then stops).
        transaction_id = facts.allocate_transaction_id()
        reservation_id, reservation_flags = reservation_book.used_by_start(self.reservations, request, info)
        flags = ([] if info["status"] == "Accepted" else ["id_tag_not_accepted"]) + reservation_flags
        reply = {"transactionId": transaction_id, "idTagInfo": info}
        self._transaction_started(message_id, request, reply, facts.now, transaction_id, flags)
        if reservation_id is not None:
            self._reservation_used(reservation_id, transaction_id, facts.now)
        return reply

    @event("TransactionStarted", topic="ampledger:ChargePoint.TransactionStarted")
    def _transaction_started(self, message_id: str, request: Payload, reply: Payload, received_at: datetime,
                             transaction_id: int, flags: list[str]) -> None:
        started = state_shapes.open_transaction(request, reply, transaction_id, flags)
        self.open_transactions[transaction_id] = started
        self.connectors = transactions.connectors_at_start(self.connectors, started)
        self.remote_start_profiles, self.charging_profiles = charging.started_with_remote_profile(
            self.remote_start_profiles, self.charging_profiles, request, transaction_id)
        self.last_seen = received_at

    @event("TransactionStartRepeated", topic="ampledger:ChargePoint.TransactionStartRepeated")
    def _transaction_start_repeated(self, message_id: str, request: Payload, reply: Payload,
                                    received_at: datetime) -> None:
        self.last_seen = received_at

    def answer_stop_transaction(self, message_id: str, request: Payload, facts: Facts) -> Payload:
        # Never refused (OCPP 1.6 section 4.10): oddities are flagged, not rejected.
        transaction_id = request["transactionId"]
        transaction = transactions.find(self.open_transactions, self.recent_transactions, transaction_id)
        totals = stop_totals(transaction, transaction_id in self.open_transactions, request)
        reply: Payload = {}
        if "idTag" in request:
            reply["idTagInfo"] = facts.id_tag_info(request["idTag"])
        self._transaction_stopped(message_id, request, reply, facts.now, totals.flags, totals.energy_wh,
                                  totals.duration_seconds)
        return reply

    @event(TransactionStopped)
    def _transaction_stopped(self, message_id: str, request: Payload, reply: Payload, received_at: datetime,
                             flags: list[str], energy_wh: int | None, duration_seconds: int | None) -> None:
        apply_stop(self, request, energy_wh, flags)  # domain/transaction_ends.py
        self.last_seen = received_at

    def end_transaction_by_operator(self, transaction_id: int, reason: str, now: datetime) -> None:
        started = still_open(self.open_transactions, transaction_id, reason)  # no OCPP call
        self._transaction_ended_by_operator(transaction_id, reason, now, last_meter_value(started))

    @event("TransactionEndedByOperator", topic="ampledger:ChargePoint.TransactionEndedByOperator")
    def _transaction_ended_by_operator(self, transaction_id: int, reason: str, ended_at: datetime,
                                       meter_stop: int | None) -> None:
        apply_end(self, transaction_id, ENDED_BY_OPERATOR, reason, ended_at, meter_stop)

    @event("TransactionEndedAsStale", topic="ampledger:ChargePoint.TransactionEndedAsStale")
    def _transaction_ended_as_stale(self, transaction_id: int, cause: str, reason: str, ended_at: datetime,
                                    meter_stop: int | None) -> None:
        apply_end(self, transaction_id, FLAG_OF_CAUSE[cause], reason, ended_at, meter_stop)

    def answer_meter_values(self, message_id: str, request: Payload, facts: Facts) -> Payload:
        self._meter_values_received(message_id, request, {}, facts.now, energy_readings(request["meterValue"]))
        return {}

    @event("MeterValuesReceived", topic="ampledger:ChargePoint.MeterValuesReceived")
    def _meter_values_received(self, message_id: str, request: Payload, reply: Payload, received_at: datetime,
                               energy_readings: list[Payload]) -> None:
        transaction = self.open_transactions.get(request.get("transactionId"))  # type: ignore[arg-type]
        if transaction is not None and energy_readings:
            transaction["lastEnergyWh"] = energy_readings[-1]["energyWh"]
        self.last_seen = received_at

    def answer_data_transfer(self, message_id: str, request: Payload, facts: Facts) -> Payload:
        handler = facts.vendor_handler(request["vendorId"])
        reply = handler(self.id, request) if handler else {"status": "UnknownVendorId"}
        self._data_transfer_received(message_id, request, reply, facts.now)
        return reply

    @event("DataTransferReceived", topic="ampledger:ChargePoint.DataTransferReceived")
    def _data_transfer_received(self, message_id: str, request: Payload, reply: Payload, received_at: datetime) -> None:
        self.last_seen = received_at

    def answer_firmware_status_notification(self, message_id: str, request: Payload, facts: Facts) -> Payload:
        self._firmware_status_reported(message_id, request, {}, facts.now)
        return {}

    @event("FirmwareStatusReported", topic="ampledger:ChargePoint.FirmwareStatusReported")
    def _firmware_status_reported(self, message_id: str, request: Payload, reply: Payload,
                                  received_at: datetime) -> None:
        self.firmware_status = request["status"]
        self.firmware_update = state_shapes.firmware_update_reported(self.firmware_update, request["status"])
        self.last_seen = received_at

    def answer_diagnostics_status_notification(self, message_id: str, request: Payload, facts: Facts) -> Payload:
        self._diagnostics_status_reported(message_id, request, {}, facts.now)
        return {}

    @event("DiagnosticsStatusReported", topic="ampledger:ChargePoint.DiagnosticsStatusReported")
    def _diagnostics_status_reported(self, message_id: str, request: Payload, reply: Payload,
                                     received_at: datetime) -> None:
        self.diagnostics_status = request["status"]
        self.last_seen = received_at

    # ---- calls from the central system: checked before sending, every outcome recorded ----

    def prepare_call(self, action: str, request: Payload, now: datetime) -> str | None:
        """Why `action` must not be sent, or None once it may; first records what must be history before it goes."""
        before_sending = BEFORE_SENDING.get(action)
        return before_sending(self, request, now) if before_sending is not None else None

    def record_call_sent(self, message_id: str, action: str, request: Payload, sent_at: datetime) -> None:
        self._call_sent(message_id, action, request, sent_at)

    @event("CallSent", topic="ampledger:ChargePoint.CallSent")
    def _call_sent(self, message_id: str, action: str, request: Payload, sent_at: datetime) -> None:
        if action == "UpdateFirmware":
            self.firmware_update = state_shapes.firmware_update_sent(message_id, request, sent_at)

    def record_call_answer(self, message_id: str, action: str, request: Payload, reply: Payload,
                           received_at: datetime) -> None:
        """The charge point answered: the exchange, then what the answer means (domain/call_outcomes.py)."""
        self._call_answered(message_id, action, request, reply, received_at)
        call_outcomes.record(self, call_outcomes.of_answer(action, request, reply, received_at))
        certificate_outcomes.record_answer(self, action, request, reply, received_at)

    def record_call_error(self, message_id: str, action: str, request: Payload, error_code: str,
                          error_description: str, error_details: Payload, received_at: datetime) -> None:
        """The charge point answered with a CALLERROR: the exchange, then what it means."""
        self._call_failed(message_id, action, request, error_code, error_description, error_details, received_at)
        call_outcomes.record(self, call_outcomes.of_error(action, request, error_code, received_at))

    def record_call_timeout(self, message_id: str, action: str, request: Payload, timed_out_at: datetime) -> None:
        self._call_timed_out(message_id, action, request, timed_out_at)

    # `implied`: only an answer stored as class_version 1 has it (chargepoint_events.py).
    @event(CallAnswered)
    def _call_answered(self, message_id: str, action: str, request: Payload, reply: Payload, received_at: datetime,
                       implied: Sequence[Outcome] = ()) -> None:
        replies.learn(self, action, request, reply)
        self.last_seen = received_at
        call_outcomes.apply_implied(self, implied, received_at)

    @event(CallFailed)
    def _call_failed(self, message_id: str, action: str, request: Payload, error_code: str, error_description: str,
                     error_details: Payload, received_at: datetime, implied: Sequence[Outcome] = ()) -> None:
        if action == "UpdateFirmware":
            self.firmware_update = state_shapes.firmware_update_failed(self.firmware_update, message_id, error_code)
        self.last_seen = received_at
        call_outcomes.apply_implied(self, implied, received_at)

    @event("CallTimedOut", topic="ampledger:ChargePoint.CallTimedOut")
    def _call_timed_out(self, message_id: str, action: str, request: Payload, timed_out_at: datetime) -> None:
        pass  # silence is not a sign of life: last_seen stays

    # The outcome events an answer stored as class_version 1 implied, for the read models.
    implied_events = classmethod(call_outcomes.implied_events)

    # ---- reservations ------------------------------------------------------------

    @event("ReservationRequested", topic="ampledger:ChargePoint.ReservationRequested")
    def _reservation_requested(self, request: Payload, requested_at: datetime) -> None:
        reservation = reservation_book.requested(request, requested_at)
        self.reservations = reservation_book.booked(self.reservations, reservation)

    @event("ReservationAccepted", topic="ampledger:ChargePoint.ReservationAccepted")
    def _reservation_accepted(self, reservation_id: int, accepted_at: datetime) -> None:
        self.reservations = reservation_book.accepted(self.reservations, reservation_id)

    @event("ReservationRefused", topic="ampledger:ChargePoint.ReservationRefused")
    def _reservation_refused(self, reservation_id: int, reply_status: str, refused_at: datetime) -> None:
        self.reservations = reservation_book.refused(self.reservations, reservation_id, reply_status)

    @event("ReservationUsed", topic="ampledger:ChargePoint.ReservationUsed")
    def _reservation_used(self, reservation_id: int, transaction_id: int, used_at: datetime) -> None:
        self.reservations = reservation_book.used(self.reservations, reservation_id, transaction_id)

    @event("ReservationCancelled", topic="ampledger:ChargePoint.ReservationCancelled")
    def _reservation_cancelled(self, reservation_id: int, reason: str, cancelled_at: datetime) -> None:
        self.reservations = reservation_book.cancelled(self.reservations, reservation_id, reason)

    def expire_due_reservations(self, now: datetime) -> datetime | None:
        """Expires what is due at `now`; returns when the next open reservation expires."""
        for reservation_id in reservation_book.due(self.reservations, now):
            self._reservation_expired(reservation_id, now)
        return reservation_book.next_expiry(self.reservations)

    @event("ReservationExpired", topic="ampledger:ChargePoint.ReservationExpired")
    def _reservation_expired(self, reservation_id: int, expired_at: datetime) -> None:
        self.reservations = reservation_book.expired(self.reservations, reservation_id)

    # ---- the Local Authorization List (recorded beside the answers that say so) ----

    @event("LocalListVersionReported", topic="ampledger:ChargePoint.LocalListVersionReported")
    def _local_list_version_reported(self, list_version: int, reported_at: datetime) -> None:
        self.local_list = list_after_version_report(self.local_list, self.local_list_version, list_version)
        self.local_list_version = list_version

    @event("LocalListUpdated", topic="ampledger:ChargePoint.LocalListUpdated")
    def _local_list_updated(self, list_version: int, update_type: str, entries: list[Payload],
                            updated_at: datetime) -> None:
        self.local_list = updated_list(self.local_list, {"updateType": update_type, "localAuthorizationList": entries})
        self.local_list_version = list_version

    def record_diagnostics_upload(self, file_name: str, size: int, sha256: str, received_at: datetime) -> None:
        # The file itself lives in the data directory; the event is its receipt.
        self._diagnostics_uploaded(file_name=file_name, size=size, sha256=sha256, received_at=received_at)

    @event("DiagnosticsUploaded", topic="ampledger:ChargePoint.DiagnosticsUploaded")
    def _diagnostics_uploaded(self, file_name: str, size: int, sha256: str, received_at: datetime) -> None:
        pass

    def composite_schedule(self, connector_id: int, start: datetime, duration: int, unit: str | None) -> Payload:
        """The schedule the installed profiles give a connector from ``start`` (OCPP 1.6 section 3.13)."""
        running = transactions.running_on(self.connectors, self.open_transactions, connector_id)
        return connector_schedule(self.charging_profiles, connector_id, start, duration, unit, running)

