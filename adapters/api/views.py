"""How a charge point and its events look in the API and `csms replay`: OCPP's camelCase names."""

from __future__ import annotations

import re
from typing import Any

from domain.chargepoint import ChargePoint
from domain.logs import log_status
from domain.redaction import recorded_reply, recorded_request
from domain.replies import command_outcomes
from domain.security_profile import certificate_name_of, profile_of
from domain.state_shapes import new_connector

BOOT_FIELDS = {
    "vendor": "chargePointVendor",
    "model": "chargePointModel",
    "serialNumber": "chargePointSerialNumber",
    "firmwareVersion": "firmwareVersion",
}
EVENT_BOOKKEEPING = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})
SNAKE = re.compile(r"_([a-z0-9])")


def charge_point_view(cp: ChargePoint, pending_commands: int = 0) -> dict[str, Any]:
    boot = cp.boot_info or {}
    return {
        "id": cp.id,
        "description": cp.description,
        "registered": True,
        "autoRegistered": cp.auto_registered,
        "hasPassword": cp.has_password,
        "securityProfile": profile_of(cp),
        "certificateName": certificate_name_of(cp),
        "online": cp.online,
        "lastSeen": cp.last_seen,
        **{name: boot.get(field) for name, field in BOOT_FIELDS.items()},
        "bootInfo": cp.boot_info,
        "firmwareStatus": cp.firmware_status,
        "diagnosticsStatus": cp.diagnostics_status,
        "localListVersion": cp.local_list_version,
        "connectors": connectors_view(cp),
        "openTransactions": sorted(cp.open_transactions),
        "configuration": cp.configuration,
        "commandOutcomes": command_outcomes(cp),
        # The security extension's.
        "lastCriticalSecurityEvent": cp.last_critical_security_event,
        "logStatus": log_status(cp),
        "logUpload": cp.log_upload,
        "signedFirmware": cp.signed_firmware_update,
        "pendingCommands": pending_commands,
        "version": cp.version,
        "installedCertificates": cp.installed_certificates,
        "chargePointCertificate": cp.charge_point_certificate,
    }


def connectors_view(cp: ChargePoint) -> dict[str, dict[str, Any]]:
    """Every connector the charge point reported or the CSMS changed, keyed "0", "1", ..."""
    known = sorted(set(cp.connectors) | set(cp.availability))
    view = {}
    for connector_id in known:
        connector = cp.connectors.get(connector_id, new_connector())
        view[str(connector_id)] = {
            "status": connector.get("status"),
            "errorCode": connector.get("errorCode"),
            "info": connector.get("info"),
            "vendorErrorCode": connector.get("vendorErrorCode"),
            "timestamp": connector.get("timestamp"),
            "transactionId": connector.get("transactionId"),
            "availability": cp.availability.get(connector_id),
            "unlockStatus": connector.get("unlockStatus"),
        }
    return view


def event_view(event: Any) -> dict[str, Any]:
    # Payloads inside (request, reply) are OCPP's own and already camelCase;
    # the event's own field names are Python's, so they are renamed.
    fields = {name: value for name, value in vars(event).items() if name not in EVENT_BOOKKEEPING}
    action = fields.get("action")
    if isinstance(action, str):
        # A secret that reached history (written before secrets were hidden
        # whatever their spelling, or reported by a charge point) is not shown.
        if isinstance(fields.get("request"), dict):
            fields["request"] = recorded_request(action, fields["request"])
        if isinstance(fields.get("reply"), dict):
            fields["reply"] = recorded_reply(action, fields["reply"])
    data = {camel_case(name): value for name, value in fields.items()}
    return {
        "version": event.originator_version,
        "timestamp": event.timestamp,
        "type": type(event).__name__,
        "data": data,
    }


def camel_case(name: str) -> str:
    return SNAKE.sub(lambda match: match.group(1).upper(), name)

