"""What the central system answers to each charge point call (ChargePoint's answer_* methods, ANSWERS).

Each story: given a charge point (and the id tags the operator registered),
when it answers a request, then the reply, the recorded event and the
state. The facts an answer gets (clock, authorization, transaction ids) are
built here from the domain's own rules, so nothing but the domain runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import transactions
from domain.answers import ANSWERS
from domain.chargepoint import ChargePoint, Payload
from domain.facts import Facts, VendorHandler
from domain.idtags import REGISTRY_ID, IdTagRegistry, id_tag_info, start_id_tag_info
from tests.stories import registered, replayed, running

NOW = datetime(2024, 3, 4, 10, 0, 0, 123456, tzinfo=UTC)
NOW_TEXT = "2024-03-04T10:00:00.123Z"  # OCPP-J time: UTC, milliseconds, Z
HEARTBEAT_INTERVAL = 300
STARTED_AT = "2024-03-04T09:00:00Z"
STOPPED_AT = "2024-03-04T09:45:00Z"


@dataclass
class TransactionIds:
    """Hands out ids from 1001 and remembers how many it handed out."""

    handed_out: list[int] = field(default_factory=list)

    def __call__(self) -> int:
        self.handed_out.append(1001 + len(self.handed_out))
        return self.handed_out[-1]


@dataclass
class World:
    """Everything beyond the aggregate that an answer may know."""

    registry: IdTagRegistry = field(default_factory=lambda: IdTagRegistry(id=REGISTRY_ID))
    ids: TransactionIds = field(default_factory=TransactionIds)
    vendor_handlers: dict[str, VendorHandler] = field(default_factory=dict)
    now: datetime = NOW

    def facts(self, cp: ChargePoint) -> Facts:
        # ConcurrentTx as the running system decides it, at StartTransaction only: the tag's open transactions.
        return Facts(
            now=self.now,
            heartbeat_interval=HEARTBEAT_INTERVAL,
            id_tag_info=lambda id_tag: id_tag_info(self.registry.find(id_tag), self.now),
            allocate_transaction_id=self.ids,
            vendor_handlers=self.vendor_handlers,
            start_id_tag_info=lambda id_tag, _ending: start_id_tag_info(
                self.registry.find(id_tag), self.now, running(cp, id_tag)
            ),
        )


def world_with_tags(**statuses: str) -> World:
    world = World()
    for id_tag, status in statuses.items():
        world.registry.save_tag(id_tag, status)
    return world


def handle(cp: ChargePoint, action: str, request: Payload, world: World, message_id: str = "m-1") -> Payload:
    return ANSWERS[action](cp, message_id, request, world.facts(cp))


def start_request(connector_id: int = 1, id_tag: str = "TAG-1", meter_start: int = 1000, **extra: Any) -> Payload:
    return {"connectorId": connector_id, "idTag": id_tag, "meterStart": meter_start, "timestamp": STARTED_AT, **extra}


def stop_request(transaction_id: int, meter_stop: int = 4500, **extra: Any) -> Payload:
    return {"transactionId": transaction_id, "meterStop": meter_stop, "timestamp": STOPPED_AT, **extra}


def charging(world: World, id_tag: str = "TAG-1", meter_start: int = 1000) -> tuple[ChargePoint, int]:
    """A charge point with one transaction running on connector 1."""
    cp = registered()
    reply = handle(cp, "StartTransaction", start_request(id_tag=id_tag, meter_start=meter_start), world, "start")
    return cp, reply["transactionId"]


def found(cp: ChargePoint, transaction_id: int) -> Any:
    return transactions.find(cp.open_transactions, cp.recent_transactions, transaction_id)


def recorded(cp: ChargePoint) -> Any:
    return cp.pending_events[-1]


def sampled(value: str, **fields: str) -> Payload:
    return {"value": value, **fields}


# ---- every action ------------------------------------------------------------------

# One request per action that a freshly registered charge point can take.
EXAMPLES: dict[str, tuple[Payload, str]] = {
    "BootNotification": ({"chargePointVendor": "Acme", "chargePointModel": "Wallbox 2"}, "Booted"),
    "Heartbeat": ({}, "HeartbeatReceived"),
    "StatusNotification": ({"connectorId": 1, "status": "Available", "errorCode": "NoError"}, "ConnectorStatusChanged"),
    "Authorize": ({"idTag": "TAG-1"}, "AuthorizationChecked"),
    "StartTransaction": (start_request(), "TransactionStarted"),
    "StopTransaction": (stop_request(99), "TransactionStopped"),
    "MeterValues": ({"connectorId": 1, "meterValue": [{"timestamp": STARTED_AT, "sampledValue": [sampled("10")]}]},
                    "MeterValuesReceived"),
    "DataTransfer": ({"vendorId": "com.example", "messageId": "hello"}, "DataTransferReceived"),
    "FirmwareStatusNotification": ({"status": "Downloading"}, "FirmwareStatusReported"),
    "DiagnosticsStatusNotification": ({"status": "Uploading"}, "DiagnosticsStatusReported"),
    "SecurityEventNotification": ({"type": "TamperDetectionActivated", "timestamp": STARTED_AT},
                                  "SecurityEventReported"),
    "SignCertificate": ({"csr": "-----BEGIN CERTIFICATE REQUEST-----"}, "CertificateSigningRequested"),
    "LogStatusNotification": ({"status": "Uploading", "requestId": 7}, "LogStatusReported"),
    "SignedFirmwareStatusNotification": ({"status": "InvalidSignature", "requestId": 3},
                                         "SignedFirmwareStatusReported"),
}


def test_every_charge_point_action_has_an_answer_and_a_story_here() -> None:
    assert set(ANSWERS) == set(EXAMPLES)


@pytest.mark.parametrize("action", sorted(EXAMPLES))
def test_every_exchange_is_one_event_with_message_id_request_reply_and_time(action: str) -> None:
    cp = registered()  # given
    cp.collect_events()
    request, event_name = EXAMPLES[action]

    reply = handle(cp, action, request, world_with_tags(**{"TAG-1": "Accepted"}), message_id="msg-42")  # when

    exchange: Any
    [exchange] = cp.collect_events()  # then
    assert type(exchange).__name__ == event_name
    assert exchange.message_id == "msg-42"
    assert exchange.request == request
    assert exchange.reply == reply
    assert exchange.received_at == NOW
    assert cp.last_seen == NOW


# ---- BootNotification and Heartbeat ---------------------------------------------


def test_a_boot_is_accepted_with_our_time_and_heartbeat_interval_and_its_details_are_kept() -> None:
    cp = registered()  # given
    boot = {"chargePointVendor": "Acme", "chargePointModel": "Wallbox 2", "firmwareVersion": "1.4.2"}

    reply = handle(cp, "BootNotification", boot, World())  # when

    assert reply == {"status": "Accepted", "currentTime": NOW_TEXT, "interval": HEARTBEAT_INTERVAL}  # then
    assert cp.boot_info == boot
    assert cp.boot_info is not boot  # our state is not the caller's dict


def test_a_heartbeat_answers_our_time_and_marks_the_charge_point_seen() -> None:
    cp = registered()  # given

    reply = handle(cp, "Heartbeat", {}, World())  # when

    assert reply == {"currentTime": NOW_TEXT}  # then
    assert cp.last_seen == NOW


# ---- StatusNotification -------------------------------------------------------------


def test_a_connector_status_is_kept_with_the_charge_points_own_timestamp() -> None:
    cp = registered()  # given
    status = {"connectorId": 2, "status": "Faulted", "errorCode": "GroundFailure", "info": "RCD tripped",
              "vendorId": "com.acme", "vendorErrorCode": "E17", "timestamp": "2024-03-04T09:59:00Z"}

    reply = handle(cp, "StatusNotification", status, World())  # when

    assert reply == {}  # then
    assert cp.connectors[2] == {
        "status": "Faulted", "errorCode": "GroundFailure", "info": "RCD tripped", "vendorId": "com.acme",
        "vendorErrorCode": "E17", "timestamp": "2024-03-04T09:59:00Z", "transactionId": None,
    }
    assert recorded(cp).status_timestamp == "2024-03-04T09:59:00Z"  # as sent: consumers read it from the event


def test_connector_0_is_the_whole_charge_point_not_a_connector() -> None:
    cp = registered()  # given

    handle(cp, "StatusNotification", {"connectorId": 0, "status": "Unavailable", "errorCode": "NoError"}, World())

    assert set(cp.connectors) == {0}  # then
    assert cp.connectors[0]["status"] == "Unavailable"


def test_a_status_without_a_timestamp_takes_the_time_we_received_it() -> None:
    cp = registered()  # given

    handle(cp, "StatusNotification", {"connectorId": 1, "status": "Available", "errorCode": "NoError"}, World())

    assert cp.connectors[1]["timestamp"] == recorded(cp).status_timestamp == NOW_TEXT  # then


def test_a_status_change_leaves_the_connectors_transaction_alone() -> None:
    world = world_with_tags(**{"TAG-1": "Accepted"})  # given
    cp, transaction_id = charging(world)

    handle(cp, "StatusNotification", {"connectorId": 1, "status": "SuspendedEV", "errorCode": "NoError"}, world)

    assert cp.connectors[1]["transactionId"] == transaction_id  # then
    assert cp.connectors[1]["status"] == "SuspendedEV"


# ---- Authorize ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("saved", "asked", "expected"),
    [
        ({"status": "Accepted"}, "TAG-1", {"status": "Accepted"}),
        ({"status": "Accepted"}, "tag-1", {"status": "Accepted"}),  # CiString20
        ({"status": "Blocked"}, "TAG-1", {"status": "Blocked"}),
        ({"status": "Expired"}, "TAG-1", {"status": "Expired"}),
        ({"status": "Accepted", "expiry_date": "2024-03-04T09:00:00Z"}, "TAG-1",
         {"status": "Expired", "expiryDate": "2024-03-04T09:00:00.000Z"}),
        ({"status": "Accepted", "expiry_date": "2025-01-01T00:00:00Z", "parent_id_tag": "FLEET-7"}, "TAG-1",
         {"status": "Accepted", "expiryDate": "2025-01-01T00:00:00.000Z", "parentIdTag": "FLEET-7"}),
        (None, "TAG-1", {"status": "Invalid"}),
    ],
    ids=["accepted", "other case", "blocked", "expired status", "expiry passed", "parent and expiry", "unknown"],
)
def test_authorize_answers_what_the_registry_says_at_this_moment(
    saved: dict[str, str] | None, asked: str, expected: Payload
) -> None:
    world = World()  # given
    if saved is not None:
        world.registry.save_tag("TAG-1", **saved)
    cp = registered()

    reply = handle(cp, "Authorize", {"idTag": asked}, world)  # when

    assert reply == {"idTagInfo": expected}  # then
    assert recorded(cp).reply == reply


def test_authorize_of_a_tag_already_charging_answers_its_own_status_never_concurrent_tx() -> None:
    world = world_with_tags(**{"TAG-1": "Accepted"})  # given
    cp, _ = charging(world, id_tag="TAG-1")

    reply = handle(cp, "Authorize", {"idTag": "Tag-1"}, world)  # when

    # OCPP 1.6 section 7.2: ConcurrentTx "is only relevant for a StartTransaction.req".
    assert reply == {"idTagInfo": {"status": "Accepted"}}  # then


# ---- StartTransaction ---------------------------------------------------------------


def test_a_start_with_an_accepted_tag_opens_a_transaction_on_its_connector() -> None:
    world = world_with_tags(**{"TAG-1": "Accepted"})  # given
    cp = registered()

    reply = handle(cp, "StartTransaction", start_request(), world)  # when

    assert reply == {"transactionId": 1001, "idTagInfo": {"status": "Accepted"}}  # then
    assert cp.open_transactions[1001] == {
        "transactionId": 1001, "connectorId": 1, "idTag": "TAG-1", "idTagStatus": "Accepted",
        "idTagInfo": {"status": "Accepted"}, "meterStart": 1000, "startTimestamp": STARTED_AT,
        "reservationId": None, "flags": [],
    }
    assert cp.connectors[1]["transactionId"] == 1001
    assert type(recorded(cp)).__name__ == "TransactionStarted"
    assert recorded(cp).transaction_id == 1001


@pytest.mark.parametrize(("registered_as", "status"), [
    (None, "Invalid"), ("Blocked", "Blocked"), ("Expired", "Expired"),
])
def test_a_start_with_a_refused_tag_still_gets_a_transaction_id_and_is_flagged(
    registered_as: str | None, status: str
) -> None:
    world = World() if registered_as is None else world_with_tags(**{"TAG-1": registered_as})  # given
    cp = registered()

    reply = handle(cp, "StartTransaction", start_request(), world)  # when

    # OCPP 1.6 4.8: the id is always given; the charge point stops the transaction itself.
    assert reply == {"transactionId": 1001, "idTagInfo": {"status": status}}  # then
    assert cp.open_transactions[1001]["flags"] == ["id_tag_not_accepted"]
    assert cp.open_transactions[1001]["idTagStatus"] == status


def test_a_second_start_with_a_tag_already_charging_is_concurrent_tx_with_its_own_id() -> None:
    world = world_with_tags(**{"TAG-1": "Accepted"})  # given
    cp, first = charging(world)

    reply = handle(cp, "StartTransaction", start_request(connector_id=2), world, "start-2")  # when

    assert reply == {"transactionId": 1002, "idTagInfo": {"status": "ConcurrentTx"}}  # then
    assert first != 1002
    assert cp.open_transactions[1002]["flags"] == ["id_tag_not_accepted"]


def test_a_tag_with_a_limit_of_two_runs_two_transactions_and_the_third_is_concurrent_tx() -> None:
    world = World()  # given
    world.registry.save_tag("TAG-1", "Accepted", max_concurrent_transactions=2)
    cp, first = charging(world)

    second = handle(cp, "StartTransaction", start_request(connector_id=2), world, "start-2")  # when
    third = handle(cp, "StartTransaction", start_request(connector_id=3), world, "start-3")

    assert second == {"transactionId": 1002, "idTagInfo": {"status": "Accepted"}}  # then
    assert third == {"transactionId": 1003, "idTagInfo": {"status": "ConcurrentTx"}}
    assert cp.open_transactions[1003]["flags"] == ["id_tag_not_accepted"]


def test_a_stop_with_the_tag_of_its_own_transaction_gets_the_tags_own_status() -> None:
    world = world_with_tags(**{"TAG-1": "Accepted"})  # given
    cp, transaction_id = charging(world)

    reply = handle(cp, "StopTransaction", stop_request(transaction_id, idTag="tag-1"), world, "stop")  # when

    assert reply == {"idTagInfo": {"status": "Accepted"}}  # then


@pytest.mark.parametrize("tag", ["TAG-1", "NOBODY"])
def test_a_retried_start_gets_the_same_id_and_verdict_and_no_new_transaction(tag: str) -> None:
    world = world_with_tags(**{"TAG-1": "Accepted"})  # given a start whose answer the charge point missed
    cp = registered()
    first = handle(cp, "StartTransaction", start_request(id_tag=tag), world, "start-1")

    retry = handle(cp, "StartTransaction", start_request(id_tag=tag.lower()), world, "start-2")  # when

    assert retry == first  # then: same id, same verdict (not ConcurrentTx against itself)
    assert world.ids.handed_out == [1001]
    assert list(cp.open_transactions) == [1001]
    assert type(recorded(cp)).__name__ == "TransactionStartRepeated"
    assert (recorded(cp).message_id, recorded(cp).reply) == ("start-2", retry)


def test_a_retried_start_repeats_the_whole_id_tag_info() -> None:
    world = World()  # given a tag with a parent and an expiry, and a start whose answer was lost
    world.registry.save_tag("TAG-1", "Accepted", expiry_date="2099-01-01T00:00:00Z", parent_id_tag="FLEET")
    cp = registered()
    first = handle(cp, "StartTransaction", start_request(), world, "start-1")

    retry = handle(cp, "StartTransaction", start_request(), world, "start-2")  # when

    assert retry == first  # then: parentIdTag and expiryDate too, not the status alone
    assert retry["idTagInfo"]["parentIdTag"] == "FLEET" and "expiryDate" in retry["idTagInfo"]


def test_a_start_retried_after_its_stop_still_gets_the_same_id() -> None:
    world = world_with_tags(**{"TAG-1": "Accepted"})  # given a short offline session, all of it resent
    cp, transaction_id = charging(world)
    handle(cp, "StopTransaction", stop_request(transaction_id), world, "stop")

    retry = handle(cp, "StartTransaction", start_request(), world, "start-again")  # when

    assert retry["transactionId"] == transaction_id  # then
    assert cp.open_transactions == {}
    assert world.ids.handed_out == [transaction_id]


@pytest.mark.parametrize("differs", [{"meter_start": 1001}, {"connector_id": 2}, {"id_tag": "TAG-2"}])
def test_a_start_that_differs_from_an_earlier_one_is_a_new_transaction(differs: dict[str, Any]) -> None:
    world = world_with_tags(**{"TAG-1": "Accepted", "TAG-2": "Accepted"})  # given
    cp, first = charging(world)
    handle(cp, "StopTransaction", stop_request(first), world, "stop")

    reply = handle(cp, "StartTransaction", start_request(**differs), world, "start-2")  # when

    assert reply["transactionId"] == 1002  # then
    assert list(cp.open_transactions) == [1002]


# ---- StopTransaction ---------------------------------------------------------------


def test_a_stop_closes_the_transaction_with_its_energy_and_frees_the_connector() -> None:
    world = world_with_tags(**{"TAG-1": "Accepted"})  # given
    cp, transaction_id = charging(world, meter_start=1000)

    reply = handle(cp, "StopTransaction", stop_request(transaction_id, meter_stop=4500), world)  # when

    assert reply == {}  # then
    assert cp.open_transactions == {}
    assert cp.connectors[1]["transactionId"] is None
    stopped = found(cp, transaction_id)
    assert stopped is not None
    assert (stopped["energyWh"], stopped["meterStop"], stopped["stopTimestamp"]) == (3500, 4500, STOPPED_AT)
    assert stopped["stopReason"] == "Local"  # OCPP's default reason
    assert stopped["flags"] == []
    assert (recorded(cp).energy_wh, recorded(cp).duration_seconds, recorded(cp).flags) == (3500, 45 * 60, [])


def test_a_stop_of_an_unknown_transaction_is_answered_and_flagged() -> None:
    cp = registered()  # given

    reply = handle(cp, "StopTransaction", stop_request(404, reason="PowerLoss"), World())  # when

    assert reply == {}  # then: never refused
    assert (recorded(cp).flags, recorded(cp).energy_wh, recorded(cp).duration_seconds) == (
        ["unknown_transaction"], None, None)
    assert found(cp, 404) is None


def test_a_repeated_stop_is_answered_and_flagged_and_not_billed_twice() -> None:
    world = world_with_tags(**{"TAG-1": "Accepted"})  # given
    cp, transaction_id = charging(world)
    handle(cp, "StopTransaction", stop_request(transaction_id, meter_stop=4500), world, "stop-1")

    reply = handle(cp, "StopTransaction", stop_request(transaction_id, meter_stop=9999), world, "stop-2")  # when

    assert reply == {}  # then
    assert (recorded(cp).flags, recorded(cp).energy_wh, recorded(cp).duration_seconds) == (
        ["repeated_stop"], None, None)
    assert [t["transactionId"] for t in cp.recent_transactions] == [transaction_id]
    assert cp.recent_transactions[0]["meterStop"] == 4500


def test_a_meter_that_went_backwards_is_kept_flagged_with_no_energy() -> None:
    world = world_with_tags(**{"TAG-1": "Accepted"})  # given
    cp, transaction_id = charging(world, meter_start=5000)

    reply = handle(cp, "StopTransaction", stop_request(transaction_id, meter_stop=4000), world)  # when

    assert reply == {}  # then
    stopped = found(cp, transaction_id)
    assert stopped is not None
    assert (stopped["flags"], stopped["energyWh"], stopped["meterStop"]) == (["meter_went_backwards"], 0, 4000)


def test_a_stop_of_a_refused_start_keeps_the_flag_from_the_start() -> None:
    world = World()  # given a transaction started with an unknown tag
    cp, transaction_id = charging(world, id_tag="NOBODY")

    handle(cp, "StopTransaction", stop_request(transaction_id), world)  # when

    stopped = found(cp, transaction_id)  # then
    assert stopped is not None and stopped["flags"] == ["id_tag_not_accepted"]


def test_a_stop_with_the_tag_of_its_own_transaction_is_accepted_not_concurrent() -> None:
    world = world_with_tags(**{"TAG-1": "Accepted"})  # given
    cp, transaction_id = charging(world)

    reply = handle(cp, "StopTransaction", stop_request(transaction_id, idTag="TAG-1"), world)  # when

    assert reply == {"idTagInfo": {"status": "Accepted"}}  # then


def test_a_stop_with_a_blocked_tag_says_blocked() -> None:
    world = world_with_tags(**{"TAG-1": "Accepted", "THIEF": "Blocked"})  # given
    cp, transaction_id = charging(world)

    reply = handle(cp, "StopTransaction", stop_request(transaction_id, idTag="THIEF"), world)  # when

    assert reply == {"idTagInfo": {"status": "Blocked"}}  # then
    assert cp.open_transactions == {}  # stopped all the same


# ---- MeterValues ----------------------------------------------------------------------


def test_meter_values_in_kwh_are_recorded_in_wh_and_the_transaction_remembers_the_last() -> None:
    world = world_with_tags(**{"TAG-1": "Accepted"})  # given
    cp, transaction_id = charging(world)
    meter_values = {
        "connectorId": 1,
        "transactionId": transaction_id,
        "meterValue": [
            {"timestamp": "2024-03-04T09:15:00Z", "sampledValue": [sampled("1.5", unit="kWh"),
                                                                    sampled("7.2", measurand="Power.Active.Import",
                                                                            unit="kW")]},
            {"timestamp": "2024-03-04T09:30:00Z", "sampledValue": [sampled("2.25", unit="kWh")]},
        ],
    }

    reply = handle(cp, "MeterValues", meter_values, world)  # when

    assert reply == {}  # then
    assert recorded(cp).energy_readings == [
        {"timestamp": "2024-03-04T09:15:00Z", "energyWh": Decimal(1500), "context": "Sample.Periodic"},
        {"timestamp": "2024-03-04T09:30:00Z", "energyWh": Decimal(2250), "context": "Sample.Periodic"},
    ]
    assert cp.open_transactions[transaction_id]["lastEnergyWh"] == Decimal(2250)


def test_meter_values_of_the_whole_charge_point_touch_no_transaction() -> None:
    world = world_with_tags(**{"TAG-1": "Accepted"})  # given
    cp, transaction_id = charging(world)

    handle(cp, "MeterValues", {"connectorId": 0, "meterValue": [
        {"timestamp": STARTED_AT, "sampledValue": [sampled("123456")]}]}, world)  # when

    assert "lastEnergyWh" not in cp.open_transactions[transaction_id]  # then
    assert recorded(cp).energy_readings[0]["energyWh"] == Decimal(123456)


# ---- DataTransfer -------------------------------------------------------------------


def test_a_data_transfer_for_a_vendor_we_do_not_know_is_unknown_vendor_id() -> None:
    cp = registered()  # given

    reply = handle(cp, "DataTransfer", {"vendorId": "com.nobody", "data": "x"}, World())  # when

    assert reply == {"status": "UnknownVendorId"}  # then
    assert recorded(cp).reply == reply


def test_a_data_transfer_for_a_registered_vendor_gets_that_vendors_answer() -> None:
    calls: list[tuple[str, Payload]] = []

    def acme(charge_point_id: str, request: Payload) -> Payload:
        calls.append((charge_point_id, request))
        return {"status": "Accepted", "data": "pong"}

    world = World(vendor_handlers={"com.acme": acme})  # given
    cp = registered()
    request = {"vendorId": "com.acme", "messageId": "ping"}

    reply = handle(cp, "DataTransfer", request, world)  # when

    assert reply == {"status": "Accepted", "data": "pong"}  # then
    assert calls == [("CP-1", request)]
    assert recorded(cp).reply == reply


def test_a_data_transfer_finds_its_vendor_whatever_the_case_of_the_vendor_id() -> None:
    world = World(vendor_handlers={"com.acme": lambda _cp, _req: {"status": "Accepted"}})  # given
    cp = registered()

    reply = handle(cp, "DataTransfer", {"vendorId": "com.ACME"}, world)  # when

    assert reply == {"status": "Accepted"}  # then


# ---- Firmware and diagnostics --------------------------------------------------------


@pytest.mark.parametrize(("action", "status", "attribute"), [
    ("FirmwareStatusNotification", "Installed", "firmware_status"),
    ("FirmwareStatusNotification", "InstallationFailed", "firmware_status"),
    ("DiagnosticsStatusNotification", "Uploaded", "diagnostics_status"),
    ("DiagnosticsStatusNotification", "UploadFailed", "diagnostics_status"),
])
def test_firmware_and_diagnostics_statuses_are_kept(action: str, status: str, attribute: str) -> None:
    cp = registered()  # given

    reply = handle(cp, action, {"status": status}, World())  # when

    assert reply == {}  # then
    assert getattr(cp, attribute) == status


# ---- determinism ---------------------------------------------------------------------


def test_replaying_a_charging_session_lands_on_the_same_state() -> None:
    world = world_with_tags(**{"TAG-1": "Accepted"})  # given a whole session through the answers
    cp = registered()
    session: list[tuple[str, Payload]] = [
        ("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "W2"}),
        ("StatusNotification", {"connectorId": 0, "status": "Available", "errorCode": "NoError"}),
        ("Authorize", {"idTag": "TAG-1"}),
        ("StartTransaction", start_request()),
        ("StartTransaction", start_request()),
        ("StatusNotification", {"connectorId": 1, "status": "Charging", "errorCode": "NoError"}),
        ("MeterValues", {"connectorId": 1, "transactionId": 1001,
                         "meterValue": [{"timestamp": STARTED_AT, "sampledValue": [sampled("3", unit="kWh")]}]}),
        ("Heartbeat", {}),
        ("StopTransaction", stop_request(1001, idTag="TAG-1")),
        ("StopTransaction", stop_request(1001)),
        ("StopTransaction", stop_request(5)),
        ("DataTransfer", {"vendorId": "com.nobody"}),
        ("FirmwareStatusNotification", {"status": "Idle"}),
        ("DiagnosticsStatusNotification", {"status": "Idle"}),
    ]
    for action, request in session:
        handle(cp, action, request, world)

    events = cp.collect_events()  # when

    assert replayed(events) == cp  # then


# A charge point's day as a random sequence of messages: connector, tag, meter reading.
messages = st.lists(
    st.one_of(
        st.tuples(st.just("StatusNotification"), st.integers(0, 2), st.sampled_from(["Available", "Faulted"])),
        st.tuples(st.just("StartTransaction"), st.integers(1, 2), st.sampled_from(["TAG-1", "tag-1", "BAD"]),
                  st.integers(0, 3) .map(lambda n: n * 1000)),
        st.tuples(st.just("StopTransaction"), st.integers(1000, 1006), st.integers(0, 4000)),
        st.tuples(st.just("MeterValues"), st.integers(1000, 1006), st.decimals(0, 100, places=3)),
        st.tuples(st.just("Authorize"), st.sampled_from(["TAG-1", "BAD"])),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)  # the same examples every run
@given(messages)
def test_any_sequence_of_messages_replays_to_the_same_state_and_keeps_its_invariants(
    day: list[tuple[Any, ...]]
) -> None:
    world = world_with_tags(**{"TAG-1": "Accepted"})  # given
    cp = registered()

    for number, (action, *fields) in enumerate(day):  # when
        message_id = f"m-{number}"
        if action == "StatusNotification":
            handle(cp, action, {"connectorId": fields[0], "status": fields[1], "errorCode": "NoError"}, world,
                   message_id)
        elif action == "StartTransaction":
            handle(cp, action, start_request(fields[0], fields[1], fields[2]), world, message_id)
        elif action == "StopTransaction":
            reply = handle(cp, action, stop_request(fields[0], fields[1]), world, message_id)
            assert "idTagInfo" not in reply  # never refused, nothing to say without an idTag
        elif action == "MeterValues":
            handle(cp, action, {"connectorId": 1, "transactionId": fields[0], "meterValue": [
                {"timestamp": STARTED_AT, "sampledValue": [sampled(str(fields[1]), unit="kWh")]}]}, world, message_id)
        else:
            handle(cp, action, {"idTag": fields[0]}, world, message_id)

    events = cp.collect_events()
    assert replayed(events) == cp  # then
    # Each id handed out went to one new transaction, in order; a repeated start took none.
    started = [event.transaction_id for event in events if type(event).__name__ == "TransactionStarted"]
    assert started == world.ids.handed_out
    for connector in cp.connectors.values():
        assert connector["transactionId"] is None or connector["transactionId"] in cp.open_transactions
    for stopped in cp.recent_transactions:
        assert stopped["energyWh"] is None or stopped["energyWh"] >= 0
