"""Security events read model: every security event of every charge point, as reported or as seen.

A charge point reports its own with SecurityEventNotification
(SecurityEventReported); the central system records what it saw itself
(SecurityEventObserved: a connection refused for its security profile, ...).
Both land here, one row per event, ``source`` saying whose it is. The
``timestamp`` is the charge point's (when it happened; events queued offline
arrive late), ``received_at`` the central system's. Each row has an ``id`` in
the order the read model took them, the cursor for paging. ``type`` is
CiString50 and ``tech_info`` CiString255 in the Whitepaper; TEXT holds them
(and anything else the schema lets through) as sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.timestamps import format_ocpp_time, parse_ocpp_time
from projections.database import Reader, Sql, Update

CHARGE_POINT, CENTRAL_SYSTEM = "charge_point", "central_system"

TABLES = {
    "security_events": """
        CREATE TABLE IF NOT EXISTS security_events (
            id {serial},
            charge_point_id TEXT NOT NULL,
            version {bigint} NOT NULL,
            source TEXT NOT NULL,
            type TEXT NOT NULL,
            timestamp {ts} NOT NULL,
            tech_info TEXT,
            critical {bool} NOT NULL,
            received_at {ts} NOT NULL
        );
        CREATE UNIQUE INDEX IF NOT EXISTS security_events_by_charge_point ON security_events (charge_point_id, version);
        CREATE INDEX IF NOT EXISTS security_events_by_time ON security_events (timestamp);
        CREATE INDEX IF NOT EXISTS security_events_critical ON security_events (critical, charge_point_id)""",
}


def _insert(sql: Sql, event: Any, source: str, type_: str, timestamp: datetime, tech_info: str | None,
            critical: bool, received_at: datetime) -> None:
    sql.run(
        "INSERT INTO security_events (charge_point_id, version, source, type, timestamp, tech_info, critical,"
        " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (charge_point_id, version) DO NOTHING",
        (event.originator_id, event.originator_version, source, type_, timestamp, tech_info, critical, received_at),
    )


def on_reported(event: Any, sql: Sql) -> None:
    request = event.request
    # Admitted only with a timestamp both stores hold (adapters/ocpp/admissibility.py).
    _insert(sql, event, CHARGE_POINT, request["type"], parse_ocpp_time(request["timestamp"]), request.get("techInfo"),
            event.critical, event.received_at)


def on_observed(event: Any, sql: Sql) -> None:
    _insert(sql, event, CENTRAL_SYSTEM, event.type, event.observed_at, event.tech_info, event.critical,
            event.observed_at)


# Event name -> how it changes this read model.
UPDATES: dict[str, Update] = {
    "SecurityEventReported": on_reported,
    "SecurityEventObserved": on_observed,
}


def _moment(value: Any) -> str:
    """A timestamp column as OCPP text (PostgreSQL gives a datetime, SQLite its ISO text in UTC)."""
    return format_ocpp_time(value if isinstance(value, datetime) else datetime.fromisoformat(value))


def security_event_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "chargePointId": row["charge_point_id"],
        "version": row["version"],
        "source": row["source"],
        "type": row["type"],
        "timestamp": _moment(row["timestamp"]),
        "techInfo": row["tech_info"],
        "critical": bool(row["critical"]),
        "receivedAt": _moment(row["received_at"]),
    }


def find_security_events(reader: Reader, charge_point_id: str | None = None, type_: str | None = None,
                         since: datetime | None = None, until: datetime | None = None,
                         critical: bool | None = None, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    """Security events in the order they were taken (by ``id``), after the id ``after``."""
    conditions: list[str] = ["id > ?"]
    params: list[Any] = [after]
    for column, operator, value in (("charge_point_id", "=", charge_point_id), ("type", "=", type_),
                                    ("timestamp", ">=", since), ("timestamp", "<", until),
                                    ("critical", "=", critical)):
        if value is not None:
            conditions.append(f"{column} {operator} ?")
            params.append(value)
    rows = reader.query(f"SELECT * FROM security_events WHERE {' AND '.join(conditions)} ORDER BY id"
                        f" LIMIT {int(limit)}", params)
    return [security_event_view(row) for row in rows]


def critical_counts(reader: Reader) -> dict[str, int]:
    """How many critical security events there are of each type (few: the Whitepaper's list is short)."""
    rows = reader.query("SELECT type, COUNT(*) AS n FROM security_events WHERE critical = ? GROUP BY type"
                        " ORDER BY type", (True,))
    return {row["type"]: int(row["n"]) for row in rows}


def latest_critical(reader: Reader) -> dict[str, dict[str, Any]]:
    """Each charge point's latest critical security event of its own (the highest version), for the status
    list, shaped as the charge point's view shows it (lastCriticalSecurityEvent)."""
    rows = reader.query(
        "SELECT s.* FROM security_events s JOIN (SELECT charge_point_id, MAX(version) AS version"
        " FROM security_events WHERE critical = ? AND source = ? GROUP BY charge_point_id) latest"
        " ON s.charge_point_id = latest.charge_point_id AND s.version = latest.version", (True, CHARGE_POINT))
    return {row["charge_point_id"]: _as_reported(security_event_view(row)) for row in rows}


def _as_reported(view: dict[str, Any]) -> dict[str, Any]:
    shown = {"type": view["type"], "timestamp": view["timestamp"], "receivedAt": view["receivedAt"]}
    return shown if view["techInfo"] is None else {**shown, "techInfo": view["techInfo"]}
