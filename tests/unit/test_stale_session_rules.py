"""Stale sessions: the central system ends a transaction whose StopTransaction never came (domain/stale_sessions.py).

A new StartTransaction on its connector ends it (superseded); so does, after a
BootNotification, a StatusNotification Available for its connector (restarted).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Collection

import pytest

from domain.answers import ANSWERS
from domain.chargepoint import ChargePoint
from domain.facts import Facts
from tests.stories import facts_at, registered, replayed, running

NOW = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def start(cp: ChargePoint, message_id: str, connector_id: int = 1, id_tag: str = "TAG-1",
          meter_start: int = 1000, timestamp: str = "2030-03-01T08:00:00Z", facts: Facts | None = None) -> Any:
    request = {"connectorId": connector_id, "idTag": id_tag, "meterStart": meter_start, "timestamp": timestamp}
    facts = facts or facts_at(NOW, transaction_ids=[int(message_id)])
    return ANSWERS["StartTransaction"](cp, message_id, request, facts)


def meter_value(cp: ChargePoint, transaction_id: int, wh: str) -> None:
    ANSWERS["MeterValues"](cp, "mv", {"connectorId": 1, "transactionId": transaction_id, "meterValue": [{
        "timestamp": "2030-03-01T08:30:00Z",
        "sampledValue": [{"value": wh, "measurand": "Energy.Active.Import.Register"}]}]}, facts_at(NOW))


def status(cp: ChargePoint, connector_id: int, value: str, now: datetime = LATER) -> None:
    ANSWERS["StatusNotification"](cp, "sn", {"connectorId": connector_id, "status": value, "errorCode": "NoError"},
                                  facts_at(now))


def boot(cp: ChargePoint) -> None:
    ANSWERS["BootNotification"](cp, "boot", {"chargePointVendor": "Acme", "chargePointModel": "W2"}, facts_at(LATER))


def stale_ends(cp: ChargePoint) -> list[Any]:
    return [event for event in cp.collect_events() if type(event).__name__ == "TransactionEndedAsStale"]


def charging() -> ChargePoint:
    cp = registered()
    start(cp, "7")
    meter_value(cp, 7, "2500")
    return cp


def test_a_new_start_on_the_connector_ends_the_open_transaction_at_its_last_meter_value() -> None:
    cp = charging()  # given transaction 7 on connector 1, whose StopTransaction never came

    reply = start(cp, "8", timestamp="2030-03-01T11:00:00Z", meter_start=3000,
                  facts=facts_at(LATER, transaction_ids=[8]))  # when

    assert reply == {"transactionId": 8, "idTagInfo": {"status": "Accepted"}}  # then
    assert set(cp.open_transactions) == {8}
    assert cp.connectors[1]["transactionId"] == 8
    [ended] = cp.recent_transactions
    assert (ended["transactionId"], ended["meterStop"], ended["energyWh"]) == (7, 2500, 1500)
    assert ended["flags"] == ["ended_as_stale"]
    [event] = stale_ends(cp)
    assert (event.transaction_id, event.cause, event.meter_stop, event.ended_at) == (7, "superseded", 2500, LATER)
    assert "connector 1" in event.reason


def test_the_new_start_is_judged_as_if_the_stale_one_had_ended() -> None:
    cp = charging()  # given the card's one transaction is stale
    asked: list[tuple[str, Collection[int]]] = []

    def start_info(id_tag: str, ending: Collection[int]) -> dict[str, Any]:
        asked.append((id_tag, list(ending)))
        return {"status": "ConcurrentTx" if running(cp, id_tag) >= 1 else "Accepted"}

    facts = Facts(now=LATER, heartbeat_interval=300, id_tag_info=lambda _: {"status": "Accepted"},
                  allocate_transaction_id=lambda: 8, start_id_tag_info=start_info)
    reply = start(cp, "8", timestamp="2030-03-01T11:00:00Z", facts=facts)  # when

    assert reply["idTagInfo"] == {"status": "Accepted"}  # then: not ConcurrentTx
    assert asked == [("TAG-1", [7])]  # the running system is told which transaction no longer counts


def test_a_retried_start_or_a_start_on_another_connector_ends_nothing() -> None:
    cp = charging()  # given
    cp.collect_events()

    retried = start(cp, "9")  # when: the same start again (section 4.8)
    start(cp, "10", connector_id=2, id_tag="TAG-2")

    assert retried["transactionId"] == 7  # then
    assert set(cp.open_transactions) == {7, 10}
    assert stale_ends(cp) == []


def test_after_a_restart_available_on_the_connector_ends_its_transaction() -> None:
    cp = charging()  # given transaction 7 on connector 1, then the charge point restarts
    start(cp, "11", connector_id=2, id_tag="TAG-2")
    boot(cp)
    cp.collect_events()

    status(cp, 0, "Available")  # when: connector 0 is the charge point as a whole
    status(cp, 2, "Charging")  # a connector still charging keeps its transaction
    status(cp, 1, "Available")

    assert set(cp.open_transactions) == {11}  # then
    assert cp.connectors[1]["transactionId"] is None
    [event] = stale_ends(cp)
    assert (event.transaction_id, event.cause, event.meter_stop, event.ended_at) == (7, "restarted", 2500, LATER)
    assert cp.recent_transactions[-1]["flags"] == ["ended_by_restart"]


@pytest.mark.parametrize("booted", [False, True])
def test_available_ends_nothing_without_a_restart_or_for_a_transaction_started_since(booted: bool) -> None:
    cp = registered()  # given
    if booted:
        boot(cp)
    start(cp, "7")
    cp.collect_events()

    status(cp, 1, "Available")  # when

    assert set(cp.open_transactions) == {7}  # then
    assert stale_ends(cp) == []


@pytest.mark.parametrize("how", ["superseded", "restarted"])
def test_a_late_stop_is_accepted_and_its_figures_settle_the_stale_transaction(how: str) -> None:
    cp = charging()  # given transaction 7 ended as stale
    if how == "superseded":
        start(cp, "8", timestamp="2030-03-01T11:00:00Z", facts=facts_at(LATER, transaction_ids=[8]))
    else:
        boot(cp)
        status(cp, 1, "Available")
    stop_request = {"transactionId": 7, "meterStop": 6000, "timestamp": "2030-03-01T09:00:00Z"}

    reply = ANSWERS["StopTransaction"](cp, "late", stop_request, facts_at(LATER))  # when: the queued stop comes
    ANSWERS["StopTransaction"](cp, "again", stop_request, facts_at(LATER))

    late, again = [e for e in cp.collect_events() if type(e).__name__ == "TransactionStopped"]  # then
    assert reply == {}
    assert (late.energy_wh, late.duration_seconds, late.flags) == (5000, 3600, ["stopped_after_inferred_end"])
    assert (again.energy_wh, again.flags) == (None, ["repeated_stop"])
    stale = next(t for t in cp.recent_transactions if t["transactionId"] == 7)
    assert stale["flags"][-1] == "stopped_after_inferred_end"


def test_replaying_lands_on_the_same_state() -> None:
    cp = charging()  # given both kinds of stale end and a late stop
    start(cp, "8", timestamp="2030-03-01T11:00:00Z", facts=facts_at(LATER, transaction_ids=[8]))
    boot(cp)
    status(cp, 1, "Available")
    ANSWERS["StopTransaction"](cp, "late", {"transactionId": 7, "meterStop": 6000,
                                            "timestamp": "2030-03-01T09:00:00Z"}, facts_at(LATER))

    events = cp.collect_events()  # when

    assert replayed(events) == cp  # then
    assert [t["flags"] for t in cp.recent_transactions] == [
        ["ended_as_stale", "stopped_after_inferred_end"], ["ended_by_restart"]]
