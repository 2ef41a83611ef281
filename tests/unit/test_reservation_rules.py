"""Reservations on the aggregate (domain/reservation_book.py, ChargePoint.prepare_call and its answers).

Each story: a reservation is asked for, answered and then used, cancelled or
expired; the state is checked, and so is a replay of the recorded events.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain import reservation_book
from domain.chargepoint import ChargePoint, Payload
from domain.facts import Facts
from domain.idtags import REGISTRY_ID, IdTagRegistry, id_tag_info
from domain.timestamps import format_ocpp_time
from tests.stories import registered, replayed

NOW = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
EXPIRY = NOW + timedelta(hours=1)


def registry(**tags: dict[str, Any]) -> IdTagRegistry:
    book = IdTagRegistry(id=REGISTRY_ID)
    for id_tag, fields in tags.items():
        book.save_tag(id_tag, fields.get("status", "Accepted"), parent_id_tag=fields.get("parent"))
    return book


TRANSACTION_IDS = itertools.count(1001)


def facts(tags: IdTagRegistry, now: datetime = NOW) -> Facts:
    return Facts(
        now=now,
        heartbeat_interval=300,
        id_tag_info=lambda id_tag: id_tag_info(tags.find(id_tag), now),
        allocate_transaction_id=lambda: next(TRANSACTION_IDS),
    )


def reserve(cp: ChargePoint, reservation_id: int = 5, connector_id: int = 1, id_tag: str = "TAG-1",
            reply: str | None = "Accepted", **extra: Any) -> Payload:
    request = {
        "reservationId": reservation_id,
        "connectorId": connector_id,
        "idTag": id_tag,
        "expiryDate": format_ocpp_time(EXPIRY),
        **extra,
    }
    assert cp.prepare_call("ReserveNow", request, NOW) is None
    message_id = f"reserve-{reservation_id}"
    cp.record_call_sent(message_id=message_id, action="ReserveNow", request=request, sent_at=NOW)
    if reply is not None:
        cp.record_call_answer(message_id=message_id, action="ReserveNow", request=request,
                              reply={"status": reply}, received_at=NOW)
    return request


def status_of(cp: ChargePoint, reservation_id: int = 5) -> str:
    return str(cp.reservations[reservation_id]["status"])


def start(cp: ChargePoint, tags: IdTagRegistry, id_tag: str = "TAG-1", connector_id: int = 1,
          timestamp: datetime = NOW, **extra: Any) -> Payload:
    request = {"connectorId": connector_id, "idTag": id_tag, "meterStart": 0,
               "timestamp": format_ocpp_time(timestamp), **extra}
    return cp.answer_start_transaction(f"start-{id_tag}-{connector_id}", request, facts(tags))


def status_notification(cp: ChargePoint, connector_id: int, status: str) -> None:
    request = {"connectorId": connector_id, "errorCode": "NoError", "status": status}
    cp.answer_status_notification(f"status-{connector_id}-{status}", request, facts(registry()))


def test_a_reservation_is_pending_from_the_moment_it_is_sent():
    cp = registered()
    reserve(cp, reply=None)  # when: sent, not answered
    assert cp.reservations[5] == {
        "reservationId": 5, "connectorId": 1, "idTag": "TAG-1", "expiryDate": "2024-03-04T11:00:00.000Z",
        "status": "Pending", "requestedAt": "2024-03-04T10:00:00.000Z",
    }
    assert [type(e).__name__ for e in cp.pending_events][-2:] == ["ReservationRequested", "CallSent"]


def test_a_reservation_that_expired_before_it_was_sent_is_refused_and_not_recorded():
    cp = registered()
    request = {"reservationId": 5, "connectorId": 1, "idTag": "T", "expiryDate": format_ocpp_time(NOW)}
    reason = cp.prepare_call("ReserveNow", request, NOW)
    assert reason is not None and "already passed" in reason
    assert cp.reservations == {} and len(cp.pending_events) == 1  # Registered only


@pytest.mark.parametrize("reply, status", [("Accepted", "Accepted"), ("Occupied", "Rejected"),
                                           ("Faulted", "Rejected"), ("Unavailable", "Rejected"),
                                           ("Rejected", "Rejected")])
def test_the_answer_to_reserve_now_decides_accepted_or_rejected(reply, status):
    cp = registered()
    reserve(cp, reply=reply)
    assert status_of(cp) == status and cp.reservations[5]["replyStatus"] == reply
    assert replayed(cp.collect_events()) == cp


def test_a_callerror_rejects_a_reservation_but_a_lost_connection_leaves_it_pending():
    cp = registered()
    for reservation_id, code in ((5, "NotSupported"), (6, "ConnectionLost")):
        request = reserve(cp, reservation_id=reservation_id, reply=None)
        cp.record_call_error(message_id="x", action="ReserveNow", request=request, error_code=code,
                             error_description="", error_details={}, received_at=NOW)
    assert status_of(cp, 5) == "Rejected" and cp.reservations[5]["replyStatus"] == "NotSupported"
    assert status_of(cp, 6) == "Pending"  # it may have arrived: it expires on time instead


def test_a_start_with_the_reservation_id_uses_it():
    cp, tags = registered(), registry(**{"TAG-1": {}})
    reserve(cp)
    reply = start(cp, tags, reservationId=5)  # when
    assert status_of(cp) == "Used"
    assert cp.reservations[5]["transactionId"] == reply["transactionId"]
    assert cp.open_transactions[reply["transactionId"]]["flags"] == []
    assert replayed(cp.collect_events()) == cp


def test_a_tag_of_the_reserved_parent_may_use_the_reservation():
    cp, tags = registered(), registry(**{"CHILD": {"parent": "FLEET"}})
    reserve(cp, id_tag="OTHER", parentIdTag="fleet")
    reply = start(cp, tags, id_tag="CHILD", reservationId=5)
    assert status_of(cp) == "Used"
    assert cp.open_transactions[reply["transactionId"]]["flags"] == []


def test_a_start_naming_a_reservation_of_another_tag_still_uses_it_and_is_flagged():
    cp, tags = registered(), registry(**{"STRANGER": {}})
    reserve(cp, connector_id=2)
    reply = start(cp, tags, id_tag="STRANGER", reservationId=5)
    assert status_of(cp) == "Used"  # the charge point says it used it; it no longer holds it
    assert cp.open_transactions[reply["transactionId"]]["flags"] == [
        "reservation_id_tag_mismatch", "reservation_connector_mismatch",
    ]


def test_a_start_naming_an_unknown_or_ended_reservation_is_flagged():
    cp, tags = registered(), registry(**{"TAG-1": {}})
    reserve(cp, reply="Occupied")
    unknown = start(cp, tags, connector_id=1, reservationId=99)
    ended = start(cp, tags, connector_id=2, reservationId=5)
    assert cp.open_transactions[unknown["transactionId"]]["flags"] == ["unknown_reservation"]
    assert cp.open_transactions[ended["transactionId"]]["flags"] == ["reservation_rejected"]
    assert status_of(cp) == "Rejected"


def test_the_reserved_tag_starting_without_the_id_ends_its_reservation():
    cp, tags = registered(), registry(**{"TAG-1": {}})
    reserve(cp, reservation_id=5, connector_id=0)  # the whole charge point
    reserve(cp, reservation_id=6, connector_id=2)
    start(cp, tags, id_tag="tag-1", connector_id=2)  # case-insensitive, no reservationId
    assert status_of(cp, 6) == "Used" and status_of(cp, 5) == "Accepted"


@pytest.mark.parametrize("status", ["Faulted", "Unavailable"])
def test_a_connector_that_cannot_serve_cancels_its_reservation_only(status):
    cp = registered()
    reserve(cp, reservation_id=5, connector_id=1)
    reserve(cp, reservation_id=6, connector_id=2)
    reserve(cp, reservation_id=7, connector_id=0)
    status_notification(cp, 1, status)
    assert [status_of(cp, i) for i in (5, 6, 7)] == ["Cancelled", "Accepted", "Accepted"]
    assert cp.reservations[5]["reason"] == f"connector 1 {status}"
    assert replayed(cp.collect_events()) == cp


def test_connector_0_unavailable_cancels_every_open_reservation():
    cp = registered()
    reserve(cp, reservation_id=5, connector_id=1)
    reserve(cp, reservation_id=6, connector_id=0, reply=None)
    reserve(cp, reservation_id=7, connector_id=2, reply="Occupied")
    status_notification(cp, 0, "Unavailable")
    assert [status_of(cp, i) for i in (5, 6, 7)] == ["Cancelled", "Cancelled", "Rejected"]


def test_other_statuses_cancel_nothing():
    cp = registered()
    reserve(cp)
    status_notification(cp, 1, "Reserved")
    status_notification(cp, 1, "Preparing")
    assert status_of(cp) == "Accepted"


@pytest.mark.parametrize("reply, status", [("Accepted", "Cancelled"), ("Rejected", "Accepted")])
def test_cancel_reservation_cancels_once_accepted(reply, status):
    cp = registered()
    reserve(cp)
    cp.record_call_answer(message_id="c", action="CancelReservation", request={"reservationId": 5},
                          reply={"status": reply}, received_at=NOW)
    assert status_of(cp) == status


def test_due_reservations_expire_and_the_next_expiry_is_told():
    cp = registered()
    reserve(cp, reservation_id=5)
    later = {"expiryDate": format_ocpp_time(EXPIRY + timedelta(hours=1))}
    request = dict(reserve(cp, reservation_id=6, reply=None), **later)
    assert cp.prepare_call("ReserveNow", request, NOW) is None  # 6 asked again, for longer: replaced
    assert cp.expire_due_reservations(EXPIRY - timedelta(seconds=1)) == EXPIRY  # nothing due yet
    assert cp.expire_due_reservations(EXPIRY) == EXPIRY + timedelta(hours=1)
    assert status_of(cp, 5) == "Expired" and status_of(cp, 6) == "Pending"
    assert cp.expire_due_reservations(EXPIRY + timedelta(hours=2)) is None
    assert status_of(cp, 6) == "Expired"
    assert replayed(cp.collect_events()) == cp


def test_an_offline_start_from_before_the_expiry_uses_an_expired_reservation():
    cp, tags = registered(), registry(**{"TAG-1": {}})
    reserve(cp)
    cp.expire_due_reservations(EXPIRY)
    start(cp, tags, timestamp=EXPIRY - timedelta(minutes=1), reservationId=5)  # arrives late
    assert status_of(cp) == "Used"


def test_only_the_most_recent_ended_reservations_are_kept():
    book: reservation_book.Book = {}
    for reservation_id in range(reservation_book.CLOSED_KEPT + 10):
        request = {"reservationId": reservation_id, "connectorId": 1, "idTag": "T",
                   "expiryDate": format_ocpp_time(EXPIRY)}
        book = reservation_book.booked(book, reservation_book.requested(request, NOW))
        if reservation_id:
            book = reservation_book.changed(book, reservation_id, reservation_book.EXPIRED)
    assert len(book) == reservation_book.CLOSED_KEPT + 1  # the open one and the last 100 ended
    assert 0 in book and 1 not in book and reservation_book.CLOSED_KEPT + 9 in book


def test_a_snapshot_from_before_reservations_existed_is_upcast():
    state: dict[str, Any] = {"description": ""}
    ChargePoint.upcast_v1_v2(state)
    assert state["reservations"] == {} and state["charging_profiles"] == [] and state["local_list"] is None
