"""Reservations read model: every reservation of every charge point, with its status.

Follows the same lifecycle as domain/reservation_book.py (Pending, Accepted,
Rejected, Used, Cancelled, Expired) from the events that move it, each
named for what happened (an answer's meaning is the domain's, see
domain/call_outcomes.py). A status moves only from the statuses it may
follow, so applying an event again changes nothing. Times are kept as OCPP
text (UTC, milliseconds, 'Z'), which sorts correctly.
"""

from __future__ import annotations

from typing import Any

from domain import reservation_book
from domain.timestamps import format_ocpp_time, parse_ocpp_time
from projections.database import Reader, Sql, Update

TABLES = {
    "reservations": """
        CREATE TABLE IF NOT EXISTS reservations (
            charge_point_id TEXT NOT NULL,
            reservation_id {bigint} NOT NULL,
            connector_id INTEGER NOT NULL,
            id_tag TEXT NOT NULL,
            parent_id_tag TEXT,
            expiry_date TEXT NOT NULL,
            status TEXT NOT NULL,
            reply_status TEXT,
            requested_at TEXT NOT NULL,
            transaction_id {bigint},
            reason TEXT,
            PRIMARY KEY (charge_point_id, reservation_id)
        );
        CREATE INDEX IF NOT EXISTS reservations_by_status ON reservations (status, expiry_date)""",
}

OPEN = tuple(sorted(reservation_book.OPEN))


def on_requested(event: Any, sql: Sql) -> None:
    request = event.request
    # OCPP 1.6 section 5.13: a ReserveNow with a known id replaces that reservation.
    sql.run(
        "INSERT INTO reservations (charge_point_id, reservation_id, connector_id, id_tag, parent_id_tag, expiry_date,"
        " status, requested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (charge_point_id, reservation_id) DO UPDATE SET connector_id = excluded.connector_id,"
        " id_tag = excluded.id_tag, parent_id_tag = excluded.parent_id_tag, expiry_date = excluded.expiry_date,"
        " status = excluded.status, requested_at = excluded.requested_at, reply_status = NULL,"
        " transaction_id = NULL, reason = NULL",
        (
            event.originator_id,
            request["reservationId"],
            request["connectorId"],
            request["idTag"],
            request.get("parentIdTag"),
            format_ocpp_time(parse_ocpp_time(request["expiryDate"])),
            reservation_book.PENDING,
            format_ocpp_time(event.requested_at),
        ),
    )


def _set(sql: Sql, event: Any, reservation_id: int, status: str, only_from: tuple[str, ...], **fields: Any) -> None:
    assignments = "".join(f", {column} = ?" for column in fields)
    marks = ", ".join("?" for _ in only_from)
    sql.run(
        f"UPDATE reservations SET status = ?{assignments}"
        f" WHERE charge_point_id = ? AND reservation_id = ? AND status IN ({marks})",
        (status, *fields.values(), event.originator_id, reservation_id, *only_from),
    )


def on_accepted(event: Any, sql: Sql) -> None:
    _set(sql, event, event.reservation_id, reservation_book.ACCEPTED, (reservation_book.PENDING,),
         reply_status=reservation_book.ACCEPTED)


def on_refused(event: Any, sql: Sql) -> None:
    _set(sql, event, event.reservation_id, reservation_book.REJECTED, (reservation_book.PENDING,),
         reply_status=event.reply_status)


def on_used(event: Any, sql: Sql) -> None:
    # Used may follow Expired: an offline start timestamped before the expiry.
    _set(sql, event, event.reservation_id, reservation_book.USED, (*OPEN, reservation_book.EXPIRED),
         transaction_id=event.transaction_id)


def on_cancelled(event: Any, sql: Sql) -> None:
    _set(sql, event, event.reservation_id, reservation_book.CANCELLED, OPEN, reason=event.reason)


def on_expired(event: Any, sql: Sql) -> None:
    _set(sql, event, event.reservation_id, reservation_book.EXPIRED, OPEN)


# Event name -> how it changes this read model.
UPDATES: dict[str, Update] = {
    "ReservationRequested": on_requested,
    "ReservationAccepted": on_accepted,
    "ReservationRefused": on_refused,
    "ReservationUsed": on_used,
    "ReservationCancelled": on_cancelled,
    "ReservationExpired": on_expired,
}

OPTIONAL = {
    "parentIdTag": "parent_id_tag",
    "replyStatus": "reply_status",
    "transactionId": "transaction_id",
    "reason": "reason",
}


def reservation_view(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the API shows a reservation: the domain's fields, absent when unset."""
    view = {
        "chargePointId": row["charge_point_id"],
        "reservationId": row["reservation_id"],
        "connectorId": row["connector_id"],
        "idTag": row["id_tag"],
        "expiryDate": row["expiry_date"],
        "status": row["status"],
        "requestedAt": row["requested_at"],
    }
    view.update({name: row[column] for name, column in OPTIONAL.items() if row[column] is not None})
    return view


def charge_points_holding_open(reader: Reader, charge_point_id: str | None = None) -> list[str]:
    """Charge points (or this one) with a reservation still Pending or Accepted."""
    marks = ", ".join("?" for _ in OPEN)
    only = "" if charge_point_id is None else " AND charge_point_id = ?"
    rows = reader.query(f"SELECT DISTINCT charge_point_id FROM reservations WHERE status IN ({marks}){only}",
                        (*OPEN, *(() if charge_point_id is None else (charge_point_id,))))
    return [row["charge_point_id"] for row in rows]


def find_reservations(reader: Reader, charge_point_id: str | None = None, status: str | None = None) -> list[Any]:
    """Reservations as the API shows them, oldest request first."""
    conditions: list[str] = []
    params: list[Any] = []
    if status is not None:
        conditions.append("status = ?")
        params.append(status)
    if charge_point_id is not None:
        conditions.append("charge_point_id = ?")
        params.append(charge_point_id)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = reader.query(f"SELECT * FROM reservations {where} ORDER BY requested_at, reservation_id", params)
    return [reservation_view(row) for row in rows]
