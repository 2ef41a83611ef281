"""What the OpenAPI document says of the security extension's routes and views (openapi.py gathers them)."""

from __future__ import annotations

from typing import Any

SECURITY_SCHEMAS: dict[str, Any] = {
    "SecurityProfile": {
        "type": "integer",
        "enum": [0, 1, 2, 3],
        "description": "how the charge point must connect: 0 plain, 1 Basic auth, 2 TLS + Basic auth, 3 TLS + "
        "client certificate; unset, 1 with a password, else 0. Lowered only by an operator (PUT), and recorded",
    },
    "SecurityProfileRaise": {
        "type": "object",
        "required": ["profile"],
        "properties": {"profile": {"type": "integer", "enum": [0, 1, 2, 3]}},
    },
    "CertificateRequestRejection": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"reason": {"type": "string", "description": "why, recorded with the rejection"}},
    },
    "CsmsRootInstallation": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"certificate": {"type": "string", "maxLength": 5500, "description": "a PEM X.509 "
                                       "certificate to install instead of the root of the CA this CSMS signs with"}},
    },
    "CertificateRequestList": {
        "type": "object",
        "required": ["certificateRequests"],
        "properties": {"certificateRequests": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "chargePointId", "subject", "keyType", "received", "status"],
            "properties": {name: {"type": "string"} for name in (
                "id", "chargePointId", "subject", "keyType", "received", "status", "approval", "reason",
                "serialNumber", "fingerprint", "chargePointAnswer", "decidedAt")},
        }}},
    },
    "SecurityProfileRaised": {
        "type": "object",
        "required": ["status", "securityProfile"],
        "properties": {
            "status": {"type": "string", "description": "the charge point's ChangeConfiguration answer"},
            "securityProfile": {"type": "integer", "description": "its profile now"},
        },
    },
}

NULLABLE_OBJECT = {"type": "object", "nullable": True}

# Keys the security extension adds to a charge point's status (adapters/api/views.py).
STATUS_PROPERTIES: dict[str, Any] = {
    "lastCriticalSecurityEvent": {
        **NULLABLE_OBJECT,
        "description": "the latest critical SecurityEventNotification: type, timestamp, techInfo, receivedAt",
    },
    "logStatus": {"type": "string", "nullable": True, "description": "the last LogStatusNotification status"},
    "logUpload": {
        **NULLABLE_OBJECT,
        "description": "the latest GetLog: requestId, logType, status and filename of its answer, lastStatus, "
        "and the file uploaded for it (fileName, size, sha256, receivedAt)",
    },
    "signedFirmware": {
        **NULLABLE_OBJECT,
        "description": "the latest SignedUpdateFirmware: requestId, location, retrieveDateTime, sentAt, answer, "
        "state (pending, installing, installed, failed), lastStatus (SignedFirmwareStatusNotification)",
    },
}

SCHEMAS: dict[str, Any] = {
    "SecurityEvent": {
        "type": "object",
        "required": ["id", "chargePointId", "version", "source", "type", "timestamp", "techInfo", "critical",
                     "receivedAt"],
        "properties": {
            "id": {"type": "integer", "description": "its place in the list of every charge point's events"},
            "chargePointId": {"type": "string"},
            "version": {"type": "integer", "description": "the event's version in the charge point's history"},
            "source": {"type": "string", "enum": ["charge_point", "central_system"]},
            "type": {"type": "string"},
            "timestamp": {"type": "string", "format": "date-time", "description": "when it happened"},
            "techInfo": {"type": "string", "nullable": True},
            "critical": {"type": "boolean"},
            "receivedAt": {"type": "string", "format": "date-time"},
        },
    },
    "SecurityEventList": {
        "type": "object",
        "required": ["securityEvents"],
        "properties": {"securityEvents": {"type": "array", "items": {"$ref": "#/components/schemas/SecurityEvent"}}},
    },
}
