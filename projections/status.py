"""Status read model: one row per charge point, one per connector.

What operators see at GET /api/chargepoints: online or not, last seen, boot
information, firmware and diagnostics status, local list version, and each
connector's status and current transaction.
"""

from __future__ import annotations

from typing import Any

import orjson

from projections import security_events
from projections.database import Reader, Sql, Update, storable

TABLES = {
    "cp_status": """
        CREATE TABLE IF NOT EXISTS cp_status (
            charge_point_id TEXT PRIMARY KEY,
            description TEXT,
            registered_at {ts},
            online {bool} NOT NULL,
            last_seen {ts},
            vendor TEXT,
            model TEXT,
            serial_number TEXT,
            firmware_version TEXT,
            firmware_status TEXT,
            diagnostics_status TEXT,
            local_list_version {bigint},
            boot_info {json}
        )""",
    "cp_connectors": """
        CREATE TABLE IF NOT EXISTS cp_connectors (
            charge_point_id TEXT NOT NULL,
            connector_id {bigint} NOT NULL,
            status TEXT,
            error_code TEXT,
            info TEXT,
            vendor_error_code TEXT,
            status_timestamp TEXT,
            transaction_id {bigint},
            PRIMARY KEY (charge_point_id, connector_id)
        )""",
}



def _touch(event: Any, sql: Sql) -> None:
    """Any message from the charge point means it was seen just now."""
    seen = getattr(event, "received_at", None) or getattr(event, "connected_at", None)
    if seen is not None:
        _saw(sql, event.originator_id, seen)


def _saw(sql: Sql, charge_point_id: str, seen: Any) -> None:
    # Deferred to the end of the batch: only the latest sighting is written.
    sql.defer(("last_seen", charge_point_id), "UPDATE cp_status SET last_seen = ? WHERE charge_point_id = ?",
              (seen, charge_point_id))


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def on_registered(event: Any, sql: Sql) -> None:
    sql.run(
        "INSERT INTO cp_status (charge_point_id, description, registered_at, online) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (charge_point_id) DO NOTHING",
        (event.originator_id, event.description, event.timestamp, False),
    )


def on_details_updated(event: Any, sql: Sql) -> None:
    sql.run("UPDATE cp_status SET description = ? WHERE charge_point_id = ?", (event.description, event.originator_id))


def on_connected(event: Any, sql: Sql) -> None:
    sql.run("UPDATE cp_status SET online = ? WHERE charge_point_id = ?", (True, event.originator_id))
    _saw(sql, event.originator_id, event.connected_at)


def on_disconnected(event: Any, sql: Sql) -> None:
    sql.run("UPDATE cp_status SET online = ? WHERE charge_point_id = ?", (False, event.originator_id))


def on_booted(event: Any, sql: Sql) -> None:
    request = event.request
    sql.run(
        "UPDATE cp_status SET vendor = ?, model = ?, serial_number = ?, firmware_version = ?, boot_info = ?"
        " WHERE charge_point_id = ?",
        (
            request.get("chargePointVendor"),
            request.get("chargePointModel"),
            request.get("chargePointSerialNumber"),
            request.get("firmwareVersion"),
            _json(request),
            event.originator_id,
        ),
    )
    _saw(sql, event.originator_id, event.received_at)


def _connector_row(sql: Sql, charge_point_id: str, connector_id: int) -> None:
    sql.run(
        "INSERT INTO cp_connectors (charge_point_id, connector_id) VALUES (?, ?)"
        " ON CONFLICT (charge_point_id, connector_id) DO NOTHING",
        (charge_point_id, connector_id),
    )


def on_connector_status(event: Any, sql: Sql) -> None:
    request = event.request
    connector_id = request["connectorId"]
    if storable(connector_id) is None:
        _touch(event, sql)
        return
    # Deferred: only a connector's latest status in a batch is written. The
    # status columns are this statement's alone, so its order against the
    # transaction handlers' writes to the same row does not matter.
    sql.defer(
        ("connector_status", event.originator_id, connector_id),
        "INSERT INTO cp_connectors"
        " (charge_point_id, connector_id, status, error_code, info, vendor_error_code, status_timestamp)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (charge_point_id, connector_id) DO UPDATE SET"
        " status = excluded.status, error_code = excluded.error_code, info = excluded.info,"
        " vendor_error_code = excluded.vendor_error_code, status_timestamp = excluded.status_timestamp",
        (
            event.originator_id,
            connector_id,
            request["status"],
            request["errorCode"],
            request.get("info"),
            request.get("vendorErrorCode"),
            event.status_timestamp,
        ),
    )
    _touch(event, sql)


def on_transaction_started(event: Any, sql: Sql) -> None:
    connector_id = event.request["connectorId"]
    if storable(connector_id) is None:
        _touch(event, sql)
        return
    _connector_row(sql, event.originator_id, connector_id)
    sql.run(
        "UPDATE cp_connectors SET transaction_id = ? WHERE charge_point_id = ? AND connector_id = ?",
        (event.transaction_id, event.originator_id, connector_id),
    )
    _touch(event, sql)


def on_transaction_stopped(event: Any, sql: Sql) -> None:
    if storable(event.request["transactionId"]) is not None:
        sql.run(
            "UPDATE cp_connectors SET transaction_id = NULL WHERE charge_point_id = ? AND transaction_id = ?",
            (event.originator_id, event.request["transactionId"]),
        )
    _touch(event, sql)


def on_firmware_status(event: Any, sql: Sql) -> None:
    sql.run(
        "UPDATE cp_status SET firmware_status = ? WHERE charge_point_id = ?",
        (event.request["status"], event.originator_id),
    )
    _touch(event, sql)


def on_diagnostics_status(event: Any, sql: Sql) -> None:
    sql.run(
        "UPDATE cp_status SET diagnostics_status = ? WHERE charge_point_id = ?",
        (event.request["status"], event.originator_id),
    )
    _touch(event, sql)


def on_local_list_version(event: Any, sql: Sql) -> None:
    """The version the charge point reported or accepted."""
    version = storable(event.list_version)
    if version is not None:
        sql.run(
            "UPDATE cp_status SET local_list_version = ? WHERE charge_point_id = ?",
            (version, event.originator_id),
        )


def on_transaction_ended_by_operator(event: Any, sql: Sql) -> None:
    # Not a sign of life: the charge point said nothing, so lastSeen stays.
    sql.run(
        "UPDATE cp_connectors SET transaction_id = NULL WHERE charge_point_id = ? AND transaction_id = ?",
        (event.originator_id, event.transaction_id),
    )


# Event name -> how it changes this read model.
UPDATES: dict[str, Update] = {
    "Registered": on_registered,
    "DetailsUpdated": on_details_updated,
    "Connected": on_connected,
    "Disconnected": on_disconnected,
    "Booted": on_booted,
    "HeartbeatReceived": _touch,
    "AuthorizationChecked": _touch,
    "ConnectorStatusChanged": on_connector_status,
    "TransactionStarted": on_transaction_started,
    "TransactionStartRepeated": _touch,
    "TransactionStopped": on_transaction_stopped,
    "TransactionEndedByOperator": on_transaction_ended_by_operator,
    "TransactionEndedAsStale": on_transaction_ended_by_operator,  # the same: the connector runs nothing
    "MeterValuesReceived": _touch,
    "DataTransferReceived": _touch,
    "FirmwareStatusReported": on_firmware_status,
    "DiagnosticsStatusReported": on_diagnostics_status,
    "CallAnswered": _touch,
    "CallFailed": _touch,
    "LocalListVersionReported": on_local_list_version,
    "LocalListUpdated": on_local_list_version,
    # The security extension's messages from the charge point (domain/security_events.py, logs.py, ...).
    "SecurityEventReported": _touch,
    "LogStatusReported": _touch,
    "SignedFirmwareStatusReported": _touch,
}


def status_view(row: dict[str, Any], connectors: list[dict[str, Any]],
                last_critical: dict[str, Any] | None = None) -> dict[str, Any]:
    """A cp_status row and its connectors (and its latest critical security event), as the API shows them."""
    return {
        "id": row["charge_point_id"],
        "description": row["description"],
        "online": bool(row["online"]),
        "lastSeen": row["last_seen"],
        "vendor": row["vendor"],
        "model": row["model"],
        "serialNumber": row["serial_number"],
        "firmwareVersion": row["firmware_version"],
        "firmwareStatus": row["firmware_status"],
        "diagnosticsStatus": row["diagnostics_status"],
        "localListVersion": row["local_list_version"],
        "lastCriticalSecurityEvent": last_critical,
        "connectors": {
            str(c["connector_id"]): {
                "status": c["status"],
                "errorCode": c["error_code"],
                "info": c["info"],
                "vendorErrorCode": c["vendor_error_code"],
                "timestamp": c["status_timestamp"],
                "transactionId": c["transaction_id"],
            }
            for c in connectors
        },
    }


def charge_points_online(reader: Reader) -> dict[str, bool]:
    """Every registered charge point, and whether the read model last saw it online."""
    return {row["charge_point_id"]: bool(row["online"])
            for row in reader.query("SELECT charge_point_id, online FROM cp_status")}


def all_statuses(reader: Reader) -> list[dict[str, Any]]:
    """Every charge point's status as the API lists it: one query per table, not one per charge point."""
    statuses = reader.query("SELECT * FROM cp_status ORDER BY charge_point_id")
    by_charge_point: dict[str, list[dict[str, Any]]] = {}
    for connector in reader.query("SELECT * FROM cp_connectors ORDER BY charge_point_id, connector_id"):
        by_charge_point.setdefault(connector["charge_point_id"], []).append(connector)
    critical = security_events.latest_critical(reader)
    return [status_view(row, by_charge_point.get(row["charge_point_id"], []), critical.get(row["charge_point_id"]))
            for row in statuses]
