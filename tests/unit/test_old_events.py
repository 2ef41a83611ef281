"""Events stored by older code are read as today's (class_version upcasters).

Each story: an event's stored state as an older version wrote it, read
through its class's upcasters, carries what today's version of the event
carries, worked out by the same domain function that decides it today.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.chargepoint import ChargePoint

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
