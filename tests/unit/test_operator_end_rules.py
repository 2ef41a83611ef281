"""An operator ends a stale transaction (ChargePoint.end_transaction_by_operator, domain/operator_end.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.answers import ANSWERS
from domain.chargepoint import ChargePoint
from domain.operator_end import ReasonRejected, TransactionNotOpen
from tests.stories import facts_at, registered, replayed

NOW = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)


def charging(with_meter_value: bool = True) -> ChargePoint:
    cp = registered()
    facts = facts_at(NOW, transaction_ids=[7])
    ANSWERS["StartTransaction"](cp, "start", {"connectorId": 1, "idTag": "TAG-1", "meterStart": 1000,
                                              "timestamp": "2030-03-01T08:00:00Z"}, facts)
    if with_meter_value:
        ANSWERS["MeterValues"](cp, "mv", {"connectorId": 1, "transactionId": 7, "meterValue": [{
            "timestamp": "2030-03-01T08:30:00Z",
            "sampledValue": [{"value": "2500", "measurand": "Energy.Active.Import.Register"}]}]}, facts)
    return cp


def stop(cp: ChargePoint, message_id: str, meter_stop: int) -> None:
    ANSWERS["StopTransaction"](cp, message_id, {"transactionId": 7, "meterStop": meter_stop,
                                                "timestamp": "2030-03-01T09:00:00Z"}, facts_at(NOW))


def test_the_operator_ends_an_open_transaction_at_its_last_meter_value() -> None:
    cp = charging()  # given

    cp.end_transaction_by_operator(7, "no stop came", NOW)  # when

    assert 7 not in cp.open_transactions  # then
    assert cp.connectors[1]["transactionId"] is None
    [ended] = cp.recent_transactions
    assert (ended["meterStop"], ended["energyWh"], ended["stopReason"]) == (2500, 1500, "no stop came")
    assert ended["flags"] == ["ended_by_operator"]
    event = cp.collect_events()[-1]
    assert type(event).__name__ == "TransactionEndedByOperator"
    assert (event.meter_stop, event.reason, event.ended_at) == (2500, "no stop came", NOW)  # type: ignore[attr-defined]


def test_without_a_meter_value_the_meter_stop_is_unknown() -> None:
    cp = charging(with_meter_value=False)  # given

    cp.end_transaction_by_operator(7, "stale", NOW)  # when

    assert cp.recent_transactions[0]["meterStop"] is None  # then


@pytest.mark.parametrize("reason", ["", "   ", "x" * 256])
def test_a_reason_is_required(reason: str) -> None:
    cp = charging()  # given
    cp.collect_events()

    with pytest.raises(ReasonRejected):  # when / then
        cp.end_transaction_by_operator(7, reason, NOW)
    assert cp.collect_events() == [] and 7 in cp.open_transactions


def test_a_transaction_not_open_cannot_be_ended() -> None:
    cp = charging()  # given
    cp.end_transaction_by_operator(7, "stale", NOW)

    with pytest.raises(TransactionNotOpen):  # when / then: ended already
        cp.end_transaction_by_operator(7, "again", NOW)
    with pytest.raises(TransactionNotOpen):  # never started
        cp.end_transaction_by_operator(8, "stale", NOW)


def test_a_late_stop_settles_the_ended_transaction_once_and_a_repeat_is_a_repeat() -> None:
    cp = charging()  # given
    cp.end_transaction_by_operator(7, "stale", NOW)

    stop(cp, "late", 6000)  # when
    stop(cp, "again", 9000)

    late, again = [e for e in cp.collect_events() if type(e).__name__ == "TransactionStopped"]  # then
    assert (late.energy_wh, late.duration_seconds, late.flags) == (5000, 3600, ["stopped_after_operator_end"])
    assert (again.energy_wh, again.flags) == (None, ["repeated_stop"])
    assert cp.recent_transactions[0]["flags"] == ["ended_by_operator", "stopped_after_operator_end"]


def test_replaying_lands_on_the_same_state() -> None:
    cp = charging()  # given a history with an operator's end and a late stop
    cp.end_transaction_by_operator(7, "stale", NOW)
    stop(cp, "late", 6000)

    events = cp.collect_events()  # when

    assert replayed(events) == cp  # then
