"""The ChargePoint aggregate (domain/chargepoint.py, domain/replies.py).

Stories on the aggregate alone: the operator's facts, the connection, the
calls the central system makes and what their replies teach. Each story ends
by replaying the collected events, because the private @event methods run
again on every replay and must land on the same state.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain import transactions
from domain.chargepoint import ChargePoint, topic
from domain.replies import LEARNED_FROM_REPLIES
from tests.stories import facts_at, replayed

NOW = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)

# Attributes that every event changes; "nothing changed" means nothing else did.
BOOKKEEPING = {"_version", "_modified_on", "_pending_events"}


def registered(charge_point_id: str = "CP-1") -> ChargePoint:
    return ChargePoint(id=charge_point_id, description="north car park", auto_registered=False)


def assert_replay_gives_the_same_state(cp: ChargePoint) -> None:
    # Call only on an aggregate whose events were never collected: all of them are pending.
    events = cp.collect_events()
    assert events[0].originator_version == 1
    assert replayed(events) == cp


def domain_state(cp: ChargePoint) -> dict[str, Any]:
    return {name: value for name, value in vars(cp).items() if name not in BOOKKEEPING}


def found(cp: ChargePoint, transaction_id: int) -> Any:
    return transactions.find(cp.open_transactions, cp.recent_transactions, transaction_id)


def last_event(cp: ChargePoint) -> Any:
    return cp.pending_events[-1]


def answer(cp: ChargePoint, action: str, request: dict[str, Any], reply: dict[str, Any]) -> None:
    cp.record_call_sent(message_id="call-1", action=action, request=request, sent_at=NOW)
    cp.record_call_answer(message_id="call-1", action=action, request=request, reply=reply, received_at=LATER)


def open_transaction(cp: ChargePoint, transaction_id: int = 7, id_tag: str = "TAG-1", connector_id: int = 1,
                     meter_start: int = 1000) -> None:
    """A StartTransaction the central system answers with `transaction_id`."""
    request = {"connectorId": connector_id, "idTag": id_tag, "meterStart": meter_start,
               "timestamp": "2024-03-04T09:00:00Z"}
    reply = cp.answer_start_transaction(f"start-{transaction_id}", request, facts_at(NOW, [transaction_id]))
    assert reply["transactionId"] == transaction_id


def close_transaction(cp: ChargePoint, transaction_id: int = 7) -> None:
    request = {"transactionId": transaction_id, "meterStop": 2000, "timestamp": "2024-03-04T09:30:00Z"}
    cp.answer_stop_transaction(f"stop-{transaction_id}", request, facts_at(NOW))


# ---- the operator's facts and the connection -------------------------------------


def test_a_new_charge_point_is_registered_offline_and_never_seen() -> None:
    cp = registered()  # when

    assert [type(e).__name__ for e in cp.pending_events] == ["Registered"]  # then
    assert (cp.id, cp.description, cp.auto_registered) == ("CP-1", "north car park", False)
    assert not cp.online and cp.last_seen is None and not cp.has_password
    assert cp.connectors == {} and cp.open_transactions == {}
    assert_replay_gives_the_same_state(cp)


def test_operator_changes_are_recorded_and_no_password_is_among_them() -> None:
    cp = registered()  # given

    cp.update_details(description="south car park")  # when
    cp.record_credentials_changed(has_password=True, reason="password set by operator")

    assert cp.description == "south car park" and cp.has_password  # then
    # The hash lives in the credentials table; the event says only that one exists.
    assert set(vars(last_event(cp))) == {
        "originator_id", "originator_version", "timestamp", "has_password", "reason"
    }
    assert_replay_gives_the_same_state(cp)


def test_connecting_puts_it_online_and_disconnecting_keeps_when_it_was_last_seen() -> None:
    cp = registered()  # given

    cp.record_connection(remote="10.0.0.7", connected_at=NOW)  # when
    assert cp.online and cp.last_seen == NOW  # then
    cp.record_disconnection(reason="socket closed", disconnected_at=LATER)  # when
    assert not cp.online and cp.last_seen == NOW  # then
    assert_replay_gives_the_same_state(cp)


def test_every_event_has_an_explicit_topic_so_stored_history_survives_renames() -> None:
    cp = registered()  # given a charge point that went through most of its life
    cp.record_connection(remote="10.0.0.7", connected_at=NOW)
    open_transaction(cp)
    close_transaction(cp)
    answer(cp, "Reset", {"type": "Soft"}, {"status": "Accepted"})
    cp.record_call_timeout(message_id="c2", action="Reset", request={"type": "Hard"}, timed_out_at=NOW)

    for each in cp.pending_events:  # then
        event_class: Any = type(each)
        name = event_class.__name__
        assert event_class.TOPIC == topic(name) == f"ampledger:ChargePoint.{name}"
    assert ChargePoint.TOPIC == "ampledger:ChargePoint"


# ---- calls from the central system: every outcome is history ------------------------


def test_a_sent_call_is_history_that_changes_nothing_else() -> None:
    cp = registered()  # given
    before = domain_state(cp)

    cp.record_call_sent(message_id="call-1", action="Reset", request={"type": "Soft"}, sent_at=NOW)  # when

    sent = last_event(cp)  # then
    assert type(sent).__name__ == "CallSent"
    assert (sent.message_id, sent.action, sent.request, sent.sent_at) == ("call-1", "Reset", {"type": "Soft"}, NOW)
    assert domain_state(cp) == before
    assert_replay_gives_the_same_state(cp)


def test_an_answered_call_records_request_and_reply_and_refreshes_last_seen() -> None:
    cp = registered()  # given

    answer(cp, "Reset", {"type": "Soft"}, {"status": "Accepted"})  # when

    answered = last_event(cp)  # then
    assert type(answered).__name__ == "CallAnswered"
    assert (answered.message_id, answered.action) == ("call-1", "Reset")
    assert (answered.request, answered.reply) == ({"type": "Soft"}, {"status": "Accepted"})
    assert cp.last_seen == LATER
    assert_replay_gives_the_same_state(cp)


def test_a_failed_call_records_the_callerror_and_refreshes_last_seen() -> None:
    cp = registered()  # given
    cp.record_call_sent(message_id="call-1", action="UnlockConnector", request={"connectorId": 1}, sent_at=NOW)

    cp.record_call_error(  # when
        message_id="call-1",
        action="UnlockConnector",
        request={"connectorId": 1},
        error_code="NotSupported",
        error_description="no lock",
        error_details={"hint": "fixed cable"},
        received_at=LATER,
    )

    failed = last_event(cp)  # then
    assert type(failed).__name__ == "CallFailed"
    assert (failed.message_id, failed.action, failed.request) == ("call-1", "UnlockConnector", {"connectorId": 1})
    assert (failed.error_code, failed.error_description, failed.error_details) == (
        "NotSupported", "no lock", {"hint": "fixed cable"}
    )
    assert cp.last_seen == LATER
    assert_replay_gives_the_same_state(cp)


def test_a_timed_out_call_is_recorded_but_the_charge_point_was_not_seen() -> None:
    cp = registered()  # given
    cp.record_call_sent(message_id="call-1", action="Reset", request={"type": "Hard"}, sent_at=NOW)
    before = domain_state(cp)

    cp.record_call_timeout(message_id="call-1", action="Reset", request={"type": "Hard"}, timed_out_at=LATER)  # when

    timed_out = last_event(cp)  # then
    assert type(timed_out).__name__ == "CallTimedOut"
    assert (timed_out.message_id, timed_out.action, timed_out.request, timed_out.timed_out_at) == (
        "call-1", "Reset", {"type": "Hard"}, LATER
    )
    assert domain_state(cp) == before  # silence is not a sign of life
    assert_replay_gives_the_same_state(cp)


# ---- what replies teach (domain/replies.py) ----------------------------------------


def test_get_configuration_teaches_the_keys_with_their_values_and_readonly_flags() -> None:
    cp = registered()  # given

    answer(  # when
        cp,
        "GetConfiguration",
        {},
        {
            "configurationKey": [
                {"key": "HeartbeatInterval", "value": "300", "readonly": False},
                {"key": "NumberOfConnectors", "value": "2", "readonly": True},
                {"key": "MeterValuesSampledData"},
            ],
            "unknownKey": ["Nonsense"],
        },
    )

    assert cp.configuration == {  # then
        "HeartbeatInterval": {"value": "300", "readonly": False},
        "NumberOfConnectors": {"value": "2", "readonly": True},
        "MeterValuesSampledData": {"value": None, "readonly": False},
    }
    assert_replay_gives_the_same_state(cp)


@pytest.mark.parametrize("status", ["Accepted", "RebootRequired"])
def test_an_accepted_configuration_change_is_learned_keeping_what_was_known(status: str) -> None:
    cp = registered()  # given a key known to be writable
    writable = {"key": "HeartbeatInterval", "value": "300", "readonly": False}
    answer(cp, "GetConfiguration", {}, {"configurationKey": [writable]})

    answer(cp, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}, {"status": status})  # when

    assert cp.configuration["HeartbeatInterval"] == {"value": "60", "readonly": False, "status": status}  # then
    assert_replay_gives_the_same_state(cp)


@pytest.mark.parametrize("status", ["Rejected", "NotSupported"])
def test_a_refused_configuration_change_teaches_nothing(status: str) -> None:
    cp = registered()  # given
    answer(cp, "GetConfiguration", {}, {"configurationKey": [{"key": "HeartbeatInterval", "value": "300"}]})

    answer(cp, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}, {"status": status})  # when

    assert cp.configuration == {"HeartbeatInterval": {"value": "300", "readonly": False}}  # then
    assert_replay_gives_the_same_state(cp)


@pytest.mark.parametrize(("status", "learned"), [("Accepted", True), ("Scheduled", True), ("Rejected", False)])
def test_change_availability_is_learned_when_accepted_or_scheduled(status: str, learned: bool) -> None:
    cp = registered()  # given

    answer(cp, "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}, {"status": status})  # when

    assert cp.availability == ({0: "Inoperative"} if learned else {})  # then
    assert_replay_gives_the_same_state(cp)


def test_get_local_list_version_teaches_the_version() -> None:
    cp = registered()  # given

    answer(cp, "GetLocalListVersion", {}, {"listVersion": 12})  # when

    assert cp.local_list_version == 12  # then
    assert_replay_gives_the_same_state(cp)


@pytest.mark.parametrize(("status", "version"), [
    ("Accepted", 4), ("Failed", 3), ("VersionMismatch", 3), ("NotSupported", 3),
])
def test_a_sent_local_list_moves_the_version_only_when_accepted(status: str, version: int) -> None:
    cp = registered()  # given the charge point holds version 3
    answer(cp, "GetLocalListVersion", {}, {"listVersion": 3})

    answer(cp, "SendLocalList", {"listVersion": 4, "updateType": "Full"}, {"status": status})  # when

    assert cp.local_list_version == version  # then
    assert_replay_gives_the_same_state(cp)


def test_a_reply_that_teaches_nothing_only_refreshes_last_seen() -> None:
    cp = registered()  # given
    assert "DataTransfer" not in LEARNED_FROM_REPLIES
    before = domain_state(cp)

    answer(cp, "DataTransfer", {"vendorId": "com.example"}, {"status": "Accepted"})  # when

    assert domain_state(cp) == dict(before, last_seen=LATER)  # then


def test_configuration_keys_are_one_key_whatever_their_case() -> None:
    cp = registered()  # given the charge point spells the key its own way (CiString50)
    answer(cp, "GetConfiguration", {}, {"configurationKey": [{"key": "HeartbeatInterval", "value": "300"}]})

    answer(cp, "ChangeConfiguration", {"key": "heartbeatinterval", "value": "60"}, {"status": "Accepted"})  # when

    assert list(cp.configuration) == ["HeartbeatInterval"]  # then
    assert cp.configuration["HeartbeatInterval"]["value"] == "60"
    assert_replay_gives_the_same_state(cp)


def test_an_authorization_key_a_charge_point_reveals_is_not_kept_as_state() -> None:
    cp = registered()  # given a charge point that reports its write-only AuthorizationKey

    answer(cp, "GetConfiguration", {}, {"configurationKey": [{"key": "AuthorizationKey", "value": "s3cret-s3cret-16"}]})

    assert cp.configuration["AuthorizationKey"]["value"] != "s3cret-s3cret-16"  # then


def test_unlock_connector_teaches_the_unlock_status_of_that_connector() -> None:
    cp = registered()  # given

    answer(cp, "UnlockConnector", {"connectorId": 2}, {"status": "Unlocked"})  # when

    assert cp.connectors[2]["unlockStatus"] == "Unlocked"  # then
    assert_replay_gives_the_same_state(cp)


# ---- the transactions kept (domain/transactions.py) -------------------------------


def test_a_retried_start_is_found_whatever_the_spelling_of_its_time_and_tag() -> None:
    cp = registered()  # given a transaction started at 09:00 UTC
    open_transaction(cp, transaction_id=7, id_tag="TAG-1")
    retry = {"connectorId": 1, "idTag": "tag-1", "meterStart": 1000, "timestamp": "2024-03-04T10:00:00.000+01:00"}

    earlier = transactions.started_by(cp.open_transactions, cp.recent_transactions, retry)  # when

    assert earlier is not None and earlier["transactionId"] == 7  # then
    for other in ({"meterStart": 1001}, {"connectorId": 2}, {"idTag": "TAG-2"}, {"timestamp": "2024-03-04T09:00:01Z"}):
        assert transactions.started_by(cp.open_transactions, cp.recent_transactions, dict(retry, **other)) is None


def test_a_stopped_transaction_is_no_longer_open_but_still_found() -> None:
    cp = registered()  # given
    open_transaction(cp, transaction_id=7, id_tag="TAG-1")

    close_transaction(cp, transaction_id=7)  # when

    assert 7 not in cp.open_transactions and transactions.by_connector(cp.open_transactions) == {}  # then
    assert found(cp, 7) is not None  # still known, for repeated stops


def test_only_the_most_recent_stopped_transactions_are_remembered() -> None:
    cp = registered()  # given more stopped transactions than are kept
    for transaction_id in range(1, transactions.RECENT_TRANSACTIONS_KEPT + 2):
        open_transaction(cp, transaction_id=transaction_id, meter_start=transaction_id)  # each its own session
        close_transaction(cp, transaction_id=transaction_id)

    assert found(cp, 1) is None  # then the oldest is forgotten
    assert found(cp, 2) is not None and found(cp, transactions.RECENT_TRANSACTIONS_KEPT + 1) is not None
    assert len(cp.recent_transactions) == transactions.RECENT_TRANSACTIONS_KEPT
    assert_replay_gives_the_same_state(cp)


# ---- determinism -----------------------------------------------------------------


def test_replaying_a_whole_life_lands_on_the_same_state_and_events_are_frozen() -> None:
    cp = registered()  # given a charge point through connection, charging and calls
    cp.record_connection(remote="10.0.0.7", connected_at=NOW)
    cp.answer_boot_notification("b", {"chargePointVendor": "V", "chargePointModel": "M"}, facts_at(NOW))
    cp.answer_status_notification("s", {"connectorId": 1, "status": "Charging", "errorCode": "NoError"}, facts_at(NOW))
    open_transaction(cp, transaction_id=7)
    cp.answer_meter_values("mv", {"connectorId": 1, "transactionId": 7, "meterValue": [
        {"timestamp": "2024-03-04T09:15:00Z", "sampledValue": [{"value": "1.5", "unit": "kWh"}]}]}, facts_at(NOW))
    close_transaction(cp, transaction_id=7)
    cp.answer_firmware_status_notification("f", {"status": "Installed"}, facts_at(NOW))
    cp.answer_diagnostics_status_notification("d", {"status": "Uploaded"}, facts_at(NOW))
    answer(cp, "ChangeAvailability", {"connectorId": 2, "type": "Inoperative"}, {"status": "Accepted"})
    cp.record_disconnection(reason="bye", disconnected_at=LATER)
    events: list[Any] = list(cp.pending_events)

    assert_replay_gives_the_same_state(cp)  # then
    with pytest.raises(dataclasses.FrozenInstanceError):
        events[-1].reason = "rewritten"  # history cannot be edited in place
