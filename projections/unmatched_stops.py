"""Stops billing cannot match to a transaction of their charge point, kept for the operator.

A StopTransaction is never refused (OCPP 1.6 section 4.10), so a charge
point can stop an id the CSMS never issued (say the next one) or an id
issued to another charge point. Such a stop ends no session and bills
nothing: it must not occupy the id in ``billing_transactions`` (the id's
real owner would lose its session) nor end another charge point's
transaction. It is kept here instead, one row per TransactionStopped event,
with the stop's figures and why it matched nothing. The charge point's
history keeps the event itself, flagged ``unknown_transaction``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.timestamps import parse_ocpp_time
from projections.database import Reader, Sql, storable

# Why a stop matched nothing.
UNKNOWN_TRANSACTION = "unknown_transaction"  # no transaction with this id had started
OTHER_CHARGE_POINTS_TRANSACTION = "other_charge_points_transaction"  # the id was issued to another charge point
# A row an older version wrote into billing_transactions for an unknown stop,
# moved here when the id's real start arrived; its event's version is not known
# here (0): `csms projections rebuild` gives it.
MOVED_VERSION = 0

TABLES = {
    "billing_unmatched_stops": """
        CREATE TABLE IF NOT EXISTS billing_unmatched_stops (
            charge_point_id TEXT NOT NULL,
            event_version {bigint} NOT NULL,
            transaction_id {bigint} NOT NULL,
            id_tag TEXT,
            stop_timestamp {ts},
            meter_stop {bigint},
            stop_reason TEXT,
            reason TEXT NOT NULL,
            owner_charge_point_id TEXT,
            PRIMARY KEY (charge_point_id, event_version, transaction_id)
        )""",
}


def record_unmatched_stop(sql: Sql, event: Any, reason: str, owner: str | None = None) -> None:
    """Keeps the TransactionStopped ``event`` as a stop that matched nothing, for ``reason``."""
    request = event.request
    sql.run(
        "INSERT INTO billing_unmatched_stops (charge_point_id, event_version, transaction_id, id_tag,"
        " stop_timestamp, meter_stop, stop_reason, reason, owner_charge_point_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.originator_id,
            event.originator_version,
            request["transactionId"],
            request.get("idTag"),
            parse_ocpp_time(request["timestamp"]),
            storable(request["meterStop"]),
            request.get("reason", "Local"),
            reason,
            owner,
        ),
    )


def move_stop_only_row(sql: Sql, row: dict[str, Any]) -> None:
    """Moves a stop-only billing_transactions ``row`` (an unknown stop an older version billed) here."""
    sql.run(
        "INSERT INTO billing_unmatched_stops (charge_point_id, event_version, transaction_id, id_tag,"
        " stop_timestamp, meter_stop, stop_reason, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (charge_point_id, event_version, transaction_id) DO NOTHING",
        (
            row["charge_point_id"],
            MOVED_VERSION,
            row["transaction_id"],
            row["id_tag"],
            _as_datetime(row["stop_timestamp"]),
            row["meter_stop"],
            row["stop_reason"],
            UNKNOWN_TRANSACTION,
        ),
    )


def unmatched_stop_view(row: dict[str, Any]) -> dict[str, Any]:
    stopped = row["stop_timestamp"]
    return {
        "chargePointId": row["charge_point_id"],
        "version": row["event_version"],
        "transactionId": row["transaction_id"],
        "idTag": row["id_tag"],
        "stopTimestamp": None if stopped is None else _as_datetime(stopped).isoformat(),
        "meterStop": row["meter_stop"],
        "stopReason": row["stop_reason"],
        "reason": row["reason"],
        "ownerChargePointId": row["owner_charge_point_id"],
    }


def find_unmatched_stops(reader: Reader, *, charge_point_id: str | None = None,
                         transaction_id: int | None = None, limit: int = 10_000) -> list[dict[str, Any]]:
    """Unmatched stops as the API shows them, by charge point and event version."""
    conditions: list[str] = []
    params: list[Any] = []
    for value, condition in ((charge_point_id, "charge_point_id = ?"), (transaction_id, "transaction_id = ?")):
        if value is not None:
            conditions.append(condition)
            params.append(value)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = reader.query(
        f"SELECT * FROM billing_unmatched_stops {where}"
        f" ORDER BY charge_point_id, event_version, transaction_id LIMIT {int(limit)}",
        params,
    )
    return [unmatched_stop_view(row) for row in rows]


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else parse_ocpp_time(value)
