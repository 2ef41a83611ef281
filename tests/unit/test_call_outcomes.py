"""What an answer to a central-system call means, recorded beside it (domain/call_outcomes.py).

Each story: a call the central system sent and the charge point answered, on
the aggregate alone; then the events recorded beside the exchange, named for
what happened, and the state, which a replay of every event gives again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.chargepoint import ChargePoint, Payload
from domain.timestamps import format_ocpp_time
from tests.stories import registered, replayed

NOW = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
EXPIRY = NOW + timedelta(hours=1)
BOOKKEEPING = {"originator_id", "originator_version", "timestamp"}
Recorded = list[tuple[str, dict[str, Any]]]


def answered(cp: ChargePoint, action: str, request: Payload, reply: Payload | None = None,
             error: str | None = None, at: datetime | None = None) -> Recorded:
    """Sends `action` and records its answer (or CALLERROR); returns what was recorded beside the exchange.

    With `at`, the call went out before and the answer arrives at `at`.
    """
    if at is None:
        assert cp.prepare_call(action, request, NOW) is None
        cp.record_call_sent(message_id="m", action=action, request=request, sent_at=NOW)
    before = len(cp.pending_events)
    if error is None:
        cp.record_call_answer(message_id="m", action=action, request=request, reply=reply or {}, received_at=at or NOW)
    else:
        cp.record_call_error(message_id="m", action=action, request=request, error_code=error,
                             error_description="", error_details={}, received_at=at or NOW)
    exchange, *outcomes = cp.pending_events[before:]
    assert type(exchange).__name__ == ("CallAnswered" if error is None else "CallFailed")
    return [(type(e).__name__, {k: v for k, v in vars(e).items() if k not in BOOKKEEPING}) for e in outcomes]


def reserve_now(reservation_id: int = 5) -> Payload:
    return {"reservationId": reservation_id, "connectorId": 1, "idTag": "TAG-1", "expiryDate": format_ocpp_time(EXPIRY)}


def status_of(cp: ChargePoint, reservation_id: int = 5) -> tuple[str, str | None]:
    return cp.reservations[reservation_id]["status"], cp.reservations[reservation_id].get("replyStatus")


def assert_replay_gives_the_same_state(cp: ChargePoint) -> None:
    events = cp.collect_events()
    assert events[0].originator_version == 1 and replayed(events) == cp


# ---- ReserveNow and CancelReservation -----------------------------------------------


def test_an_accepted_reserve_now_is_recorded_as_the_reservation_accepted() -> None:
    cp = registered()

    beside = answered(cp, "ReserveNow", reserve_now(), {"status": "Accepted"})  # when

    assert beside == [("ReservationAccepted", {"reservation_id": 5, "accepted_at": NOW})]  # then
    assert status_of(cp) == ("Accepted", "Accepted")
    assert_replay_gives_the_same_state(cp)


@pytest.mark.parametrize("status", ["Faulted", "Occupied", "Rejected", "Unavailable"])
def test_another_answer_is_recorded_as_the_reservation_refused_with_that_status(status: str) -> None:
    cp = registered()

    beside = answered(cp, "ReserveNow", reserve_now(), {"status": status})  # when

    assert beside == [("ReservationRefused", {"reservation_id": 5, "reply_status": status, "refused_at": NOW})]
    assert status_of(cp) == ("Rejected", status)  # then
    assert_replay_gives_the_same_state(cp)


def test_a_callerror_is_a_refusal_with_its_code_but_a_lost_connection_is_none() -> None:
    cp = registered()

    refused = answered(cp, "ReserveNow", reserve_now(5), error="NotSupported")  # when
    lost = answered(cp, "ReserveNow", reserve_now(6), error="ConnectionLost")

    assert refused == [("ReservationRefused", {"reservation_id": 5, "reply_status": "NotSupported",  # then
                                               "refused_at": NOW})]
    assert lost == [] and status_of(cp, 6) == ("Pending", None)  # it may have arrived: it expires on time
    assert_replay_gives_the_same_state(cp)


def test_a_late_answer_to_a_reservation_already_expired_is_recorded_alone() -> None:
    cp = registered()  # given a reservation that expired unanswered
    assert cp.prepare_call("ReserveNow", reserve_now(), NOW) is None
    cp.record_call_sent(message_id="m", action="ReserveNow", request=reserve_now(), sent_at=NOW)
    cp.expire_due_reservations(EXPIRY)

    beside = answered(cp, "ReserveNow", reserve_now(), {"status": "Accepted"}, at=EXPIRY)  # when

    assert beside == [] and status_of(cp) == ("Expired", None)  # then
    assert_replay_gives_the_same_state(cp)


def test_an_accepted_cancel_reservation_is_recorded_as_the_reservation_cancelled() -> None:
    cp = registered()  # given
    answered(cp, "ReserveNow", reserve_now(), {"status": "Accepted"})

    beside = answered(cp, "CancelReservation", {"reservationId": 5}, {"status": "Accepted"})  # when

    assert beside == [("ReservationCancelled",  # then
                       {"reservation_id": 5, "reason": "CancelReservation", "cancelled_at": NOW})]
    assert status_of(cp) == ("Cancelled", "Accepted")
    assert_replay_gives_the_same_state(cp)


def test_a_cancel_reservation_refused_or_of_no_open_reservation_cancels_nothing() -> None:
    cp = registered()  # given a reservation held and one already refused
    answered(cp, "ReserveNow", reserve_now(5), {"status": "Accepted"})
    answered(cp, "ReserveNow", reserve_now(6), {"status": "Occupied"})

    refused = answered(cp, "CancelReservation", {"reservationId": 5}, {"status": "Rejected"})  # when
    not_open = answered(cp, "CancelReservation", {"reservationId": 6}, {"status": "Accepted"})
    unknown = answered(cp, "CancelReservation", {"reservationId": 77}, {"status": "Accepted"})

    assert refused == not_open == unknown == []  # then
    assert (status_of(cp, 5), status_of(cp, 6)) == (("Accepted", "Accepted"), ("Rejected", "Occupied"))
    assert_replay_gives_the_same_state(cp)


# ---- the Local Authorization List ---------------------------------------------------


def test_a_reported_list_version_is_recorded_as_such() -> None:
    cp = registered()

    beside = answered(cp, "GetLocalListVersion", {}, {"listVersion": 12})  # when

    assert beside == [("LocalListVersionReported", {"list_version": 12, "reported_at": NOW})]  # then
    assert (cp.local_list_version, cp.local_list) == (12, None)
    assert_replay_gives_the_same_state(cp)


def test_an_accepted_send_local_list_is_recorded_as_the_list_updated_and_a_refused_one_as_nothing() -> None:
    cp = registered()
    entries = [{"idTag": "TAG-1", "idTagInfo": {"status": "Accepted"}}]

    full = {"listVersion": 4, "updateType": "Full", "localAuthorizationList": entries}

    accepted = answered(cp, "SendLocalList", full, {"status": "Accepted"})  # when
    mismatch = answered(cp, "SendLocalList", {"listVersion": 5, "updateType": "Differential",
                                              "localAuthorizationList": [{"idTag": "TAG-1"}]},
                        {"status": "VersionMismatch"})

    assert accepted == [("LocalListUpdated", {  # then
        "list_version": 4, "update_type": "Full", "entries": entries, "updated_at": NOW})]
    assert mismatch == []
    assert (cp.local_list_version, cp.local_list) == (4, {"tag-1": entries[0]})
    assert_replay_gives_the_same_state(cp)


def test_an_answer_that_means_nothing_more_is_recorded_alone() -> None:
    cp = registered()

    assert answered(cp, "Reset", {"type": "Soft"}, {"status": "Accepted"}) == []  # when, then
    assert answered(cp, "UnlockConnector", {"connectorId": 1}, error="NotSupported") == []
    assert_replay_gives_the_same_state(cp)
