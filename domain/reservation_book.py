"""Reservations as the central system follows them (OCPP 1.6 sections 3.12, 5.13, 6.37).

A reservation is a plain dict in the API's camelCase (state_shapes.Reservation),
kept per charge point and keyed by reservationId. Its status:

- Pending: ReserveNow sent, no answer yet (a timed-out call stays Pending);
- Accepted: the charge point holds it;
- Rejected: it answered Faulted, Occupied, Rejected or Unavailable (kept in
  ``replyStatus``), or a CALLERROR (what an answer means: domain/call_outcomes.py);
- Used: a StartTransaction took it;
- Cancelled: CancelReservation was accepted, or its connector went Faulted or
  Unavailable;
- Expired: its expiryDate passed while it was still open.

Every function here is pure; times are arguments.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Unpack

from domain.idtags import tag_key
from domain.state_shapes import Reservation, ReservationChange
from domain.timestamps import format_ocpp_time, parse_ocpp_time

Payload = dict[str, Any]
Book = dict[int, Reservation]  # reservationId -> reservation

PENDING, ACCEPTED, REJECTED = "Pending", "Accepted", "Rejected"
USED, CANCELLED, EXPIRED = "Used", "Cancelled", "Expired"
STATUSES = (PENDING, ACCEPTED, REJECTED, USED, CANCELLED, EXPIRED)
OPEN = frozenset({PENDING, ACCEPTED})
# OCPP 1.6 section 3.12: a connector that can no longer serve ends its reservation.
CANCELLING_CONNECTOR_STATUSES = frozenset({"Faulted", "Unavailable"})
CLOSED_KEPT = 100  # ended reservations kept per charge point; history has them all
# A CALLERROR for which the charge point may still hold the reservation.
UNDELIVERED = "ConnectionLost"


def refusal(request: Payload, now: datetime) -> str | None:
    """Why a ReserveNow must not be sent, or None."""
    if request["connectorId"] < 0:
        return "connectorId must be 0 (the whole charge point) or a connector"
    if parse_ocpp_time(request["expiryDate"]) <= now:
        return f"expiryDate {request['expiryDate']} has already passed"
    return None


def requested(request: Payload, requested_at: datetime) -> Reservation:
    """A reservation as ReserveNow asks for it: Pending until answered."""
    reservation: Reservation = {
        "reservationId": request["reservationId"],
        "connectorId": request["connectorId"],
        "idTag": request["idTag"],
        "expiryDate": format_ocpp_time(parse_ocpp_time(request["expiryDate"])),
        "status": PENDING,
        "requestedAt": format_ocpp_time(requested_at),
    }
    if "parentIdTag" in request:
        reservation["parentIdTag"] = request["parentIdTag"]
    return reservation


def booked(book: Book, reservation: Reservation) -> Book:
    # 5.13: a ReserveNow with a known reservationId replaces that reservation.
    return pruned({**without(book, reservation["reservationId"]), reservation["reservationId"]: reservation})


def changed(book: Book, reservation_id: int, status: str, **fields: Unpack[ReservationChange]) -> Book:
    """The book with one reservation in a new status (the input is not modified)."""
    reservation: Reservation = {**book[reservation_id], "status": status, **fields}
    updated = {**book, reservation_id: reservation}
    return pruned(updated) if status not in OPEN else updated


def accepted(book: Book, reservation_id: int) -> Book:
    return changed(book, reservation_id, ACCEPTED, replyStatus=ACCEPTED)


def refused(book: Book, reservation_id: int, reply_status: str) -> Book:
    return changed(book, reservation_id, REJECTED, replyStatus=reply_status)


def used(book: Book, reservation_id: int, transaction_id: int) -> Book:
    return changed(book, reservation_id, USED, transactionId=transaction_id)


def cancelled(book: Book, reservation_id: int, reason: str) -> Book:
    return changed(book, reservation_id, CANCELLED, reason=reason)


def expired(book: Book, reservation_id: int) -> Book:
    return changed(book, reservation_id, EXPIRED)


def without(book: Book, reservation_id: int) -> Book:
    return {key: value for key, value in book.items() if key != reservation_id}


def pruned(book: Book) -> Book:
    """Open reservations and the CLOSED_KEPT most recently ended ones."""
    closed = [key for key, reservation in book.items() if reservation["status"] not in OPEN]
    dropped = set(closed[:-CLOSED_KEPT]) if len(closed) > CLOSED_KEPT else set()
    return {key: value for key, value in book.items() if key not in dropped} if dropped else book


def used_by_start(book: Book, request: Payload, id_tag_info: Payload) -> tuple[int | None, list[str]]:
    """Which reservation a StartTransaction uses, and flags for what looks odd.

    With a reservationId the charge point says it used that reservation, so it
    ends as Used even when the tag or connector does not match (flagged). A
    start without one still ends an open reservation of the same tag (or of
    its parentIdTag) on that connector or on connector 0 (5.13).
    """
    reservation_id = request.get("reservationId")
    if reservation_id is None:
        return _matching_open_reservation(book, request, id_tag_info), []
    reservation = book.get(reservation_id)
    if reservation is None:
        return None, ["unknown_reservation"]
    if not _usable(reservation, request):
        return None, [f"reservation_{reservation['status'].lower()}"]
    flags = []
    if not _tag_matches(reservation, request["idTag"], id_tag_info.get("parentIdTag")):
        flags.append("reservation_id_tag_mismatch")
    if reservation["connectorId"] not in (0, request["connectorId"]):
        flags.append("reservation_connector_mismatch")
    return reservation_id, flags


def cancelled_by_status(book: Book, connector_id: int, status: str) -> list[int]:
    """The open reservations a StatusNotification ends.

    Connector 0 stands for the whole charge point: Faulted or Unavailable there
    ends every reservation; on one connector only that connector's.
    """
    if status not in CANCELLING_CONNECTOR_STATUSES:
        return []
    return [
        key
        for key, reservation in book.items()
        if reservation["status"] in OPEN and connector_id in (0, reservation["connectorId"])
    ]


def due(book: Book, now: datetime) -> list[int]:
    """Open reservations whose expiryDate has passed."""
    return [
        key
        for key, reservation in book.items()
        if reservation["status"] in OPEN and parse_ocpp_time(reservation["expiryDate"]) <= now
    ]


def next_expiry(book: Book) -> datetime | None:
    """When the next open reservation expires, if any is open."""
    expiries = [parse_ocpp_time(r["expiryDate"]) for r in book.values() if r["status"] in OPEN]
    return min(expiries, default=None)


def _usable(reservation: Reservation, request: Payload) -> bool:
    if reservation["status"] in OPEN:
        return True
    # Offline starts arrive late; the charge point's timestamp is the truth,
    # so a start before the expiry uses a reservation we already expired.
    return bool(
        reservation["status"] == EXPIRED
        and parse_ocpp_time(request["timestamp"]) < parse_ocpp_time(reservation["expiryDate"])
    )


def _matching_open_reservation(book: Book, request: Payload, id_tag_info: Payload) -> int | None:
    candidates = [
        reservation
        for reservation in book.values()
        if reservation["status"] in OPEN
        and reservation["connectorId"] in (0, request["connectorId"])
        and _tag_matches(reservation, request["idTag"], id_tag_info.get("parentIdTag"))
    ]
    # A reservation of this very connector before one of the whole charge point.
    candidates.sort(key=lambda reservation: reservation["connectorId"] == 0)
    return candidates[0]["reservationId"] if candidates else None


def _tag_matches(reservation: Reservation, id_tag: str, parent_id_tag: str | None) -> bool:
    if tag_key(reservation["idTag"]) == tag_key(id_tag):
        return True
    reserved_parent = reservation.get("parentIdTag")
    return bool(reserved_parent and parent_id_tag and tag_key(reserved_parent) == tag_key(parent_id_tag))
