"""What a stop settles (domain/session_totals.py), decided once and carried by its event.

Each story: a transaction on a charge point, a StopTransaction through its
handler, then what the TransactionStopped event carries for billing: energy
in Wh, duration in seconds and flags.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from domain.chargepoint import ChargePoint
from domain.facts import Facts
from domain.idtags import REGISTRY_ID, IdTagRegistry, id_tag_info
from domain.session_totals import MAX_SESSION_WH, SessionTotals, carried_by, session_totals
from tests.stories import registered

NOW = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)
UINT64_MAX = 2**64 - 1  # what an uninitialised register sends


def facts() -> Facts:
    tags = IdTagRegistry(id=REGISTRY_ID)
    tags.save_tag("TAG-1", "Accepted")
    return Facts(now=NOW, heartbeat_interval=300, id_tag_info=lambda tag: id_tag_info(tags.find(tag), NOW),
                 allocate_transaction_id=lambda: 7)


def stopped(meter_start: int, meter_stop: int, started: str = "2024-03-04T09:00:00Z",
            stopped_at: str = "2024-03-04T09:30:00Z") -> Any:
    """The TransactionStopped of one session from `meter_start` to `meter_stop`."""
    cp: ChargePoint = registered()
    cp.answer_start_transaction("start", {"connectorId": 1, "idTag": "TAG-1", "meterStart": meter_start,
                                          "timestamp": started}, facts())
    cp.answer_stop_transaction("stop", {"transactionId": 7, "meterStop": meter_stop, "timestamp": stopped_at}, facts())
    event = cp.pending_events[-1]
    assert type(event).__name__ == "TransactionStopped"
    return event


def carried(event: Any) -> tuple[Any, Any, list[str]]:
    return event.energy_wh, event.duration_seconds, event.flags


def test_a_session_carries_its_energy_and_duration() -> None:
    assert carried(stopped(1000, 13_345)) == (12_345, 30 * 60, [])


def test_a_stop_below_its_start_carries_no_energy_and_says_why() -> None:
    assert carried(stopped(5000, 4000)) == (0, 30 * 60, ["meter_went_backwards"])


def test_a_stop_before_its_start_carries_no_duration_and_says_why() -> None:
    event = stopped(100, 600, started="2024-03-04T10:00:00Z", stopped_at="2024-03-04T09:40:00.500+00:00")
    assert carried(event) == (500, 0, ["stopped_before_started"])


@pytest.mark.parametrize(("meter_start", "meter_stop"), [
    (0, MAX_SESSION_WH + 1),  # more than any vehicle takes
    (UINT64_MAX, 5),  # a start no meter reads: out of range, not backwards
    (0, UINT64_MAX),
])
def test_a_meter_beyond_what_any_meter_reads_carries_no_energy_and_says_so(meter_start: int, meter_stop: int) -> None:
    assert carried(stopped(meter_start, meter_stop)) == (0, 30 * 60, ["meter_out_of_range"])


def test_every_oddity_is_said_in_order() -> None:
    event = stopped(5000, 4000, started="2024-03-04T10:00:00Z")
    assert event.flags == ["meter_went_backwards", "stopped_before_started"]


def test_a_register_a_read_model_could_not_hold_is_out_of_range() -> None:
    start, stop = datetime(2024, 3, 4, 9, tzinfo=UTC), datetime(2024, 3, 4, 10, tzinfo=UTC)

    totals = session_totals(None, 5, start, stop)  # when the start is known only as unreadable

    assert totals == SessionTotals(0, 3600, ["meter_out_of_range"])  # then


def test_an_event_that_carries_totals_gives_them_and_one_stored_before_gives_none() -> None:
    event = stopped(1000, 2000)  # given a stop as recorded today
    old = SimpleNamespace(energy_wh=1000, duration_seconds=None, flags=[])  # and one stored as version 1, read

    assert carried_by(event) == SessionTotals(1000, 30 * 60, [])  # then
    assert carried_by(old) is None  # its reader works them out from the start it holds
