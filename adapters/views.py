"""How aggregates and events look in the API: OCPP's camelCase names."""

from __future__ import annotations

from typing import Any

from domain.chargepoint import ChargePoint

BOOT_FIELDS = {
    "vendor": "chargePointVendor",
    "model": "chargePointModel",
    "serialNumber": "chargePointSerialNumber",
    "firmwareVersion": "firmwareVersion",
}


def charge_point_status(cp: ChargePoint) -> dict[str, Any]:
    boot = cp.boot_info or {}
    return {
        "id": cp.id,
        "description": cp.description,
        "registered": True,
        "autoRegistered": cp.auto_registered,
        "hasPassword": cp.has_password,
        "online": cp.online,
        "lastSeen": cp.last_seen,
        **{name: boot.get(field) for name, field in BOOT_FIELDS.items()},
        "bootInfo": cp.boot_info,
        "firmwareStatus": cp.firmware_status,
        "diagnosticsStatus": cp.diagnostics_status,
        "localListVersion": cp.local_list_version,
        "connectors": {
            str(connector_id): {
                "status": connector.get("status"),
                "errorCode": connector.get("errorCode"),
                "info": connector.get("info"),
                "vendorErrorCode": connector.get("vendorErrorCode"),
                "timestamp": connector.get("timestamp"),
                "transactionId": connector.get("transactionId"),
                **({"availability": cp.availability[connector_id]} if connector_id in cp.availability else {}),
            }
            for connector_id, connector in sorted(cp.connectors.items())
        },
        "openTransactions": sorted(cp.open_transactions),
        "configuration": cp.configuration,
        "version": cp.version,
    }


def event_view(event: Any) -> dict[str, Any]:
    data = {
        name: value
        for name, value in vars(event).items()
        if name not in ("originator_id", "originator_version", "timestamp", "originator_topic")
    }
    return {
        "version": event.originator_version,
        "timestamp": event.timestamp,
        "type": type(event).__name__,
        "data": data,
    }
