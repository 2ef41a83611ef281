"""Billing read model: one row per transaction, tariffs, and daily usage.

Timestamps from the payloads are the truth (offline transactions arrive
late and back-dated). A stop's energy, duration and flags are what its
TransactionStopped event carries (decided in domain/session_totals.py);
this module only finds the row, merges the start's flags, looks up the
tariff in force when the transaction started and computes the cost once,
when it completes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from domain.operator_end import ENDED_BY_OPERATOR, late_stop_flag
from domain.session_totals import carried_by, session_totals
from domain.stale_sessions import FLAG_OF_CAUSE
from domain.tariffs import DEFAULT_SCOPE, session_cost
from domain.timestamps import parse_ocpp_time
from projections.database import Reader, Sql, Update, storable
from projections.unmatched_stops import (
    OTHER_CHARGE_POINTS_TRANSACTION,
    UNKNOWN_TRANSACTION,
    move_stop_only_row,
    record_unmatched_stop,
)

TABLES = {
    "billing_transactions": """
        CREATE TABLE IF NOT EXISTS billing_transactions (
            transaction_id {bigint} PRIMARY KEY,
            charge_point_id TEXT NOT NULL,
            connector_id {bigint},
            id_tag TEXT,
            parent_id_tag TEXT,
            id_tag_status TEXT,
            reservation_id {bigint},
            start_timestamp {ts},
            stop_timestamp {ts},
            meter_start {bigint},
            meter_stop {bigint},
            energy_wh {bigint},
            duration_seconds {bigint},
            stop_reason TEXT,
            status TEXT NOT NULL,
            flags TEXT NOT NULL,
            cost {money},
            currency TEXT,
            tariff_scope TEXT
        );
        CREATE INDEX IF NOT EXISTS billing_transactions_by_charge_point
            ON billing_transactions (charge_point_id, start_timestamp)""",
    "tariff_history": """
        CREATE TABLE IF NOT EXISTS tariff_history (
            scope TEXT NOT NULL,
            effective_from {ts} NOT NULL,
            price_per_kwh {money} NOT NULL,
            price_per_minute {money} NOT NULL,
            session_fee {money} NOT NULL,
            currency TEXT NOT NULL,
            PRIMARY KEY (scope, effective_from)
        )""",
    "daily_usage": """
        CREATE TABLE IF NOT EXISTS daily_usage (
            charge_point_id TEXT NOT NULL,
            day TEXT NOT NULL,
            sessions INTEGER NOT NULL,
            energy_wh {bigint} NOT NULL,
            charging_seconds {bigint} NOT NULL,
            PRIMARY KEY (charge_point_id, day)
        )""",
    "daily_utilisation_view": """
        {create_view} daily_utilisation_view AS
        SELECT d.charge_point_id, d.day, d.sessions, d.energy_wh, d.charging_seconds,
               1.0 * d.charging_seconds / (86400.0 * (
                   SELECT CASE WHEN COUNT(*) = 0 THEN 1 ELSE COUNT(*) END
                   FROM cp_connectors c
                   WHERE c.charge_point_id = d.charge_point_id AND c.connector_id > 0)) AS utilisation
        FROM daily_usage d""",
}



def on_transaction_started(event: Any, sql: Sql) -> None:
    request, info = event.request, event.reply["idTagInfo"]
    meter_start = storable(request["meterStart"])
    flags = list(event.flags) + ([] if meter_start is not None else ["meter_out_of_range"])
    if not _id_is_free_for(event, sql):
        return
    sql.run(
        "INSERT INTO billing_transactions (transaction_id, charge_point_id, connector_id, id_tag, parent_id_tag,"
        " id_tag_status, reservation_id, start_timestamp, meter_start, status, flags)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.transaction_id,
            event.originator_id,
            storable(request["connectorId"]),
            request["idTag"],
            info.get("parentIdTag"),
            info["status"],
            storable(request.get("reservationId")),
            parse_ocpp_time(request["timestamp"]),
            meter_start,
            "active",
            ",".join(flags),
        ),
    )


def on_transaction_stopped(event: Any, sql: Sql) -> None:
    request = event.request
    if storable(request["transactionId"]) is None:
        return  # no id of ours: the event keeps it, flagged unknown_transaction
    meter_stop = storable(request["meterStop"])
    row = sql.one("SELECT * FROM billing_transactions WHERE transaction_id = ?", (request["transactionId"],))
    stopped_at = parse_ocpp_time(request["timestamp"])
    if row is None:
        # A stop for an id no transaction started with: it must not take the
        # id (its real start may come yet), so it is kept apart, for the operator.
        record_unmatched_stop(sql, event, UNKNOWN_TRANSACTION)
        return
    if row["charge_point_id"] != event.originator_id:
        # Ids are unique across the CSMS: this charge point never had this
        # transaction, so its stop must not end or bill another's. Kept apart
        # (the event keeps it too, flagged unknown_transaction).
        record_unmatched_stop(sql, event, OTHER_CHARGE_POINTS_TRANSACTION, row["charge_point_id"])
        return
    settles_inferred_end = _settles_inferred_end(event, row)
    if row["status"] != "active" and not settles_inferred_end:
        return  # a repeated stop: the first one is the bill
    started_at = _as_datetime(row["start_timestamp"])
    # Stops stored before events carried their totals (version 1) get them
    # from the same domain rule, with the start as this row holds it.
    totals = carried_by(event) or session_totals(row["meter_start"], request["meterStop"], started_at, stopped_at)
    started_flags = [flag for flag in (row["flags"] or "").split(",") if flag]
    # The start may have flagged meter_out_of_range already (its meterStart fits no column).
    flags = started_flags + [flag for flag in totals.flags if flag not in started_flags]
    energy_wh, duration = totals.energy_wh, totals.duration_seconds
    tariff = _tariff_in_force(sql, event.originator_id, started_at)
    cost = session_cost(tariff, energy_wh, duration) if tariff else None
    sql.run(
        "UPDATE billing_transactions SET stop_timestamp = ?, meter_stop = ?, energy_wh = ?, duration_seconds = ?,"
        " stop_reason = ?, status = ?, flags = ?, cost = ?, currency = ?, tariff_scope = ? WHERE transaction_id = ?",
        (
            stopped_at,
            meter_stop,
            energy_wh,
            duration,
            request.get("reason", "Local"),
            "flagged" if flags else "completed",
            ",".join(flags),
            cost,
            tariff["currency"] if tariff else None,
            tariff["scope"] if tariff else None,
            request["transactionId"],
        ),
    )
    if settles_inferred_end:
        # The day already counts the session with the inferred figures: it gets the difference.
        _add_daily_usage(sql, event.originator_id, started_at, energy_wh - (row["energy_wh"] or 0),
                         duration - (row["duration_seconds"] or 0), sessions=0)
        return
    _add_daily_usage(sql, event.originator_id, started_at, energy_wh, duration)


def _id_is_free_for(started: Any, sql: Sql) -> bool:
    """Whether the TransactionStarted ``started`` may have its id's row; a start is never dropped unseen.

    Ids are issued once, so the row is normally free. A stop-only row that an
    older version wrote for an unknown stop gives way (the stop moves to
    billing_unmatched_stops). A second start of an issued id flags the row
    ``transaction_id_reused`` for the operator; the charge point's history keeps both.
    """
    row = sql.one("SELECT * FROM billing_transactions WHERE transaction_id = ?", (started.transaction_id,))
    if row is None:
        return True
    if row["start_timestamp"] is None:
        move_stop_only_row(sql, row)
        sql.run("DELETE FROM billing_transactions WHERE transaction_id = ?", (started.transaction_id,))
        return True
    flags = [flag for flag in (row["flags"] or "").split(",") if flag]
    if "transaction_id_reused" not in flags:
        status = row["status"] if row["status"] == "active" else "flagged"
        sql.run("UPDATE billing_transactions SET flags = ?, status = ? WHERE transaction_id = ?",
                (",".join([*flags, "transaction_id_reused"]), status, started.transaction_id))
    return False


def _settles_inferred_end(event: Any, row: dict[str, Any]) -> bool:
    """Whether this stop replaces the figures billing inferred when the operator or the CSMS ended the transaction."""
    late = late_stop_flag((row["flags"] or "").split(","))
    return late is not None and late in getattr(event, "flags", ()) and row["charge_point_id"] == event.originator_id


def on_transaction_ended_by_operator(event: Any, sql: Sql) -> None:
    """The operator ended a stale transaction: billed with what is known, flagged ended_by_operator."""
    _ended_without_stop(event, sql, ENDED_BY_OPERATOR)


def on_transaction_ended_as_stale(event: Any, sql: Sql) -> None:
    """The CSMS ended a stale transaction (domain/stale_sessions.py): flagged ended_as_stale or ended_by_restart."""
    _ended_without_stop(event, sql, FLAG_OF_CAUSE[event.cause])


def _ended_without_stop(event: Any, sql: Sql, end_flag: str) -> None:
    """A transaction ended with no StopTransaction: billed with what is known, flagged ``end_flag``."""
    row = sql.one("SELECT * FROM billing_transactions WHERE transaction_id = ?", (event.transaction_id,))
    if row is None or row["status"] != "active":
        return
    started_at = _as_datetime(row["start_timestamp"])
    meter_stop = storable(event.meter_stop) if event.meter_stop is not None else None
    totals = session_totals(row["meter_start"], meter_stop, started_at, event.ended_at)
    # No meter value known: the energy is unknown, not out of range.
    inferred = [flag for flag in totals.flags if meter_stop is not None or flag != "meter_out_of_range"]
    started_flags = [flag for flag in (row["flags"] or "").split(",") if flag]
    flags = started_flags + [end_flag] + [flag for flag in inferred if flag not in started_flags]
    energy_wh = totals.energy_wh if meter_stop is not None else 0
    tariff = _tariff_in_force(sql, event.originator_id, started_at)
    cost = session_cost(tariff, energy_wh, totals.duration_seconds) if tariff else None
    sql.run(
        "UPDATE billing_transactions SET stop_timestamp = ?, meter_stop = ?, energy_wh = ?, duration_seconds = ?,"
        " stop_reason = ?, status = ?, flags = ?, cost = ?, currency = ?, tariff_scope = ? WHERE transaction_id = ?",
        (event.ended_at, meter_stop, energy_wh, totals.duration_seconds, event.reason, "flagged", ",".join(flags),
         cost, tariff["currency"] if tariff else None, tariff["scope"] if tariff else None, event.transaction_id),
    )
    _add_daily_usage(sql, event.originator_id, started_at, energy_wh, totals.duration_seconds)


def _tariff_in_force(sql: Sql, charge_point_id: str, moment: datetime) -> dict[str, Any] | None:
    for scope in (charge_point_id, DEFAULT_SCOPE):
        row = sql.one(
            "SELECT * FROM tariff_history WHERE scope = ? AND effective_from <= ?"
            " ORDER BY effective_from DESC LIMIT 1",
            (scope, moment),
        )
        if row is not None:
            return {
                "scope": scope,
                "pricePerKwh": str(row["price_per_kwh"]),
                "pricePerMinute": str(row["price_per_minute"]),
                "sessionFee": str(row["session_fee"]),
                "currency": row["currency"],
            }
    return None


def _add_daily_usage(sql: Sql, charge_point_id: str, started_at: datetime, energy_wh: int, seconds: int,
                     sessions: int = 1) -> None:
    # A session counts on the (UTC) day it started.
    day = started_at.astimezone(UTC).date().isoformat()
    sql.run(
        "INSERT INTO daily_usage (charge_point_id, day, sessions, energy_wh, charging_seconds) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (charge_point_id, day) DO UPDATE SET sessions = daily_usage.sessions + excluded.sessions,"
        " energy_wh = daily_usage.energy_wh + excluded.energy_wh,"
        " charging_seconds = daily_usage.charging_seconds + excluded.charging_seconds",
        (charge_point_id, day, sessions, energy_wh, seconds),
    )


def on_tariff_set(event: Any, sql: Sql) -> None:
    tariff = event.tariff
    sql.run(
        "INSERT INTO tariff_history (scope, effective_from, price_per_kwh, price_per_minute, session_fee, currency)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            event.scope,
            event.effective_from,
            Decimal(tariff["pricePerKwh"]),
            Decimal(tariff["pricePerMinute"]),
            Decimal(tariff["sessionFee"]),
            tariff["currency"],
        ),
    )


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else parse_ocpp_time(value)


# Event name -> how it changes this read model.
UPDATES: dict[str, Update] = {
    "TransactionStarted": on_transaction_started,
    "TransactionStopped": on_transaction_stopped,
    "TransactionEndedByOperator": on_transaction_ended_by_operator,
    "TransactionEndedAsStale": on_transaction_ended_as_stale,
}
TARIFF_UPDATES: dict[str, Update] = {"TariffSet": on_tariff_set}


def transaction_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "transactionId": row["transaction_id"],
        "chargePointId": row["charge_point_id"],
        "connectorId": row["connector_id"],
        "idTag": row["id_tag"],
        "parentIdTag": row["parent_id_tag"],
        "idTagStatus": row["id_tag_status"],
        "reservationId": row["reservation_id"],
        "startTimestamp": _iso(row["start_timestamp"]),
        "stopTimestamp": _iso(row["stop_timestamp"]),
        "meterStart": row["meter_start"],
        "meterStop": row["meter_stop"],
        "energyWh": row["energy_wh"],
        "durationSeconds": row["duration_seconds"],
        "stopReason": row["stop_reason"],
        "status": row["status"],
        "flags": [flag for flag in (row["flags"] or "").split(",") if flag],
        "cost": None if row["cost"] is None else str(Decimal(str(row["cost"])).quantize(Decimal("0.01"))),
        "currency": row["currency"],
    }


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return _as_datetime(value).isoformat()


STATUSES = ("active", "completed", "flagged")


def accepted_open_transactions(reader: Reader) -> list[tuple[int, str]]:
    """(transactionId, idTag) of every transaction started with an Accepted tag and not stopped."""
    rows = reader.query(
        "SELECT transaction_id, id_tag FROM billing_transactions WHERE status = 'active' AND id_tag_status = ?",
        ["Accepted"],
    )
    return [(row["transaction_id"], row["id_tag"]) for row in rows]


def find_transactions(
    reader: Reader,
    *,
    charge_point_id: str | None = None,
    id_tag: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    finished_only: bool = False,
    limit: int = 10_000,
) -> list[dict[str, Any]]:
    """Transactions as the API shows them, by start time; idTag without regard to case."""
    conditions: list[str] = []
    params: list[Any] = []
    for value, condition in (
        (charge_point_id, "charge_point_id = ?"),
        (id_tag, "LOWER(id_tag) = LOWER(?)"),
        (status, "status = ?"),
        (since, "start_timestamp >= ?"),
        (until, "start_timestamp < ?"),
    ):
        if value is not None:
            conditions.append(condition)
            params.append(value)
    if finished_only:
        conditions.append("stop_timestamp IS NOT NULL AND status <> 'active'")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = reader.query(
        f"SELECT * FROM billing_transactions {where} ORDER BY start_timestamp, transaction_id LIMIT {int(limit)}",
        params,
    )
    return [transaction_view(row) for row in rows]


def find_transaction(reader: Reader, transaction_id: int) -> dict[str, Any] | None:
    rows = reader.query("SELECT * FROM billing_transactions WHERE transaction_id = ?", [transaction_id])
    return transaction_view(rows[0]) if rows else None


def daily_usage(reader: Reader, charge_point_id: str | None = None, since: str | None = None,
                until: str | None = None) -> list[dict[str, Any]]:
    """Energy, sessions and utilisation per charge point per (UTC) day; days as YYYY-MM-DD."""
    conditions: list[str] = []
    params: list[Any] = []
    for value, condition in (
        (charge_point_id, "charge_point_id = ?"), (since, "day >= ?"), (until, "day < ?"),
    ):
        if value is not None:
            conditions.append(condition)
            params.append(value)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = reader.query(f"SELECT * FROM daily_utilisation_view {where} ORDER BY day, charge_point_id", params)
    return [
        {
            "chargePointId": row["charge_point_id"],
            "day": row["day"],
            "sessions": row["sessions"],
            "energyWh": row["energy_wh"],
            "chargingSeconds": row["charging_seconds"],
            "utilisation": round(float(row["utilisation"]), 6),
        }
        for row in rows
    ]
