"""Events stored by older code are read as today's (class_version upcasters).

Each story: an event's stored state as an older version wrote it, read
through its class's upcasters, carries what today's version of the event
carries, worked out by the same domain function that decides it today.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.chargepoint import ChargePoint
from tests.stories import registered, replayed

RECEIVED_AT = datetime(2024, 3, 4, 10, 0, 0, 123456, tzinfo=UTC)


def read_as_today(event_class: Any, stored: dict[str, Any]) -> dict[str, Any]:
    """What the library's mapper does to the state of an event stored without class_version."""
    state = dict(stored)
    for version in range(1, event_class.class_version):
        getattr(event_class, f"upcast_v{version}_v{version + 1}")(state)
    return state


def test_a_status_stored_before_events_carried_its_timestamp_reads_with_the_one_it_had() -> None:
    status = {"connectorId": 1, "status": "Available", "errorCode": "NoError"}
    own_time = dict(status, timestamp="2024-03-04T09:59:00+01:00")
    stored = {"message_id": "s", "reply": {}, "received_at": RECEIVED_AT}  # given two version 1 statuses

    without = read_as_today(ChargePoint.ConnectorStatusChanged, dict(stored, request=status))  # when
    with_own = read_as_today(ChargePoint.ConnectorStatusChanged, dict(stored, request=own_time))

    assert without["status_timestamp"] == "2024-03-04T10:00:00.123Z"  # then ours, when it sent none
    assert with_own["status_timestamp"] == "2024-03-04T09:59:00+01:00"  # and its own, as sent


def test_a_stop_stored_before_events_carried_a_duration_reads_without_one_and_keeps_what_it_said() -> None:
    stored = {"message_id": "stop", "request": {"transactionId": 7, "meterStop": 4000, "timestamp": "t"},
              "reply": {}, "received_at": RECEIVED_AT, "flags": ["meter_went_backwards"], "energy_wh": 0}

    read = read_as_today(ChargePoint.TransactionStopped, stored)  # when

    assert read["duration_seconds"] is None  # then billing works the totals out (session_totals.carried_by)
    assert (read["flags"], read["energy_wh"]) == (["meter_went_backwards"], 0)


# ---- answers stored before what they meant was recorded beside them ------------------

RESERVE_NOW = {"reservationId": 5, "connectorId": 1, "idTag": "TAG-1", "expiryDate": "2024-03-04T11:00:00.000Z"}


def stored_answer(action: str, request: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
    return {"message_id": "m", "action": action, "request": request, "reply": reply, "received_at": RECEIVED_AT}


def domain_state(cp: ChargePoint) -> dict[str, Any]:
    """Everything but the bookkeeping: a history with outcome events beside answers is longer."""
    return {name: value for name, value in vars(cp).items()
            if name not in ("_version", "_modified_on", "_pending_events")}


def read_back(event_class: Any, state: dict[str, Any], charge_point_id: str, version: int) -> Any:
    """An event as the library's mapper makes it from a stored state (eventsourcing 9.5.6)."""
    event = object.__new__(event_class)
    object.__setattr__(event, "__dict__", dict(state, originator_id=charge_point_id, originator_version=version,
                                                timestamp=RECEIVED_AT))
    return event


def test_an_old_answer_reads_with_what_it_implied_and_one_that_implied_nothing_as_it_was() -> None:
    accepted = stored_answer("ReserveNow", RESERVE_NOW, {"status": "Accepted"})
    reset = stored_answer("Reset", {"type": "Soft"}, {"status": "Accepted"})

    read = read_as_today(ChargePoint.CallAnswered, accepted)  # when
    plain = read_as_today(ChargePoint.CallAnswered, reset)

    assert read["implied"] == [("ReservationAccepted", {"reservation_id": 5, "accepted_at": RECEIVED_AT})]  # then
    assert plain == reset


def test_an_old_callerror_reads_with_the_refusal_it_implied() -> None:
    stored = {"message_id": "m", "action": "ReserveNow", "request": RESERVE_NOW, "error_code": "NotSupported",
              "error_description": "", "error_details": {}, "received_at": RECEIVED_AT}

    read = read_as_today(ChargePoint.CallFailed, stored)  # when

    assert read["implied"] == [("ReservationRefused", {  # then
        "reservation_id": 5, "reply_status": "NotSupported", "refused_at": RECEIVED_AT})]


@pytest.mark.parametrize(("action", "request_", "reply"), [
    ("ReserveNow", RESERVE_NOW, {"status": "Accepted"}),
    ("ReserveNow", RESERVE_NOW, {"status": "Occupied"}),
    ("CancelReservation", {"reservationId": 5}, {"status": "Accepted"}),
    ("CancelReservation", {"reservationId": 77}, {"status": "Accepted"}),
    ("GetLocalListVersion", {}, {"listVersion": 3}),
    ("SendLocalList", {"listVersion": 4, "updateType": "Full",
                       "localAuthorizationList": [{"idTag": "A", "idTagInfo": {"status": "Accepted"}}]},
     {"status": "Accepted"}),
])
def test_an_old_answer_replays_to_the_state_its_new_events_give(
    action: str, request_: dict[str, Any], reply: dict[str, Any]
) -> None:
    today = registered()  # given a reservation waiting for its answer
    assert today.prepare_call("ReserveNow", RESERVE_NOW, RECEIVED_AT) is None
    before: list[Any] = today.collect_events()
    # an answer recorded today, and the same answer as older code stored it: the exchange alone
    today.record_call_answer(message_id="m", action=action, request=request_, reply=reply, received_at=RECEIVED_AT)
    stored = read_as_today(ChargePoint.CallAnswered, stored_answer(action, request_, reply))
    old = read_back(ChargePoint.CallAnswered, stored, today.id, before[-1].originator_version + 1)

    replayed_old = replayed([*before, old])  # when

    assert domain_state(replayed_old) == domain_state(today)  # then


def test_the_read_models_take_an_old_answer_as_the_events_it_implied() -> None:
    stored = read_as_today(ChargePoint.CallAnswered, stored_answer("GetLocalListVersion", {}, {"listVersion": 3}))
    old = read_back(ChargePoint.CallAnswered, stored, "CP-OLD", 7)  # given an answer older code stored

    implied = ChargePoint.implied_events(old)  # when

    assert [type(e).__name__ for e in implied] == ["LocalListVersionReported"]  # then an event like today's
    assert (implied[0].originator_id, implied[0].list_version, implied[0].reported_at) == ("CP-OLD", 3, RECEIVED_AT)
    assert ChargePoint.implied_events(read_back(ChargePoint.CallAnswered, stored_answer(  # and none for others
        "Reset", {"type": "Soft"}, {"status": "Accepted"}), "CP-OLD", 8)) == []
