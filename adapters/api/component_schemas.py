"""The OpenAPI document's own component schemas: the API's objects (OCPP payloads: the ocpp package's)."""

from __future__ import annotations

from typing import Any

from adapters.api import security_schemas
from adapters.api.security_schemas import SECURITY_SCHEMAS

NULLABLE_STRING = {"type": "string", "nullable": True}
NULLABLE_TIME = {"type": "string", "format": "date-time", "nullable": True}

API_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "what went wrong, for a person to read"},
            "code": {"type": "string", "description": "the OCPP-J error code of a payload that breaks its schema"},
            "actions": {"type": "array", "items": {"type": "string"}, "description": "the actions there are"},
        },
    },
    "CallError": {
        "type": "object",
        "description": "The charge point answered with a CALLERROR (or with a reply that breaks its schema).",
        "required": ["error", "errorCode", "errorDescription", "errorDetails"],
        "properties": {
            "error": {"type": "string"},
            "errorCode": {"type": "string", "description": "OCPP-J error code, e.g. NotSupported"},
            "errorDescription": {"type": "string"},
            "errorDetails": {"type": "object"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["ok"]},
            "connectedChargePoints": {"type": "integer"},
            "committedEvents": {"type": "integer"},
            "commitBatches": {"type": "integer"},
        },
    },
    "Nodes": {"type": "object", "required": ["thisNode", "nodes"], "properties": {
        "thisNode": {"type": "string", "description": "the node that answered"},
        "projectionsLeader": {"type": "boolean", "description": "the node that answered builds the read models"},
        "nodes": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "started": {"type": "string", "format": "date-time"},
            "lastRenewal": {"type": "string", "format": "date-time"},
            "healthy": {"type": "boolean", "description": "renewed its leases within the lease time"},
            "chargePointCount": {"type": "integer"},
            "chargePointIds": {"type": "array", "items": {"type": "string"}},
            "projectionsLeader": {"type": "boolean",
                                  "description": "applies events to the read models (one node at a time)"},
        }}},
    }},
    "ChargePointRegistration": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "description": {"type": "string"},
            "password": {
                "type": "string",
                "minLength": 8,
                "maxLength": 40,
                "description": "HTTP Basic-auth password of the charge point (OCPP 1.6 security profile 1)",
            },
            "securityProfile": SECURITY_SCHEMAS["SecurityProfile"],
            "certificateName": {**NULLABLE_STRING, "maxLength": 64, "description": "the CN its client "
                                "certificate must have (default, or null: the charge point id)"},
        },
    },
    "Connector": {
        "type": "object",
        "required": [
            "status", "errorCode", "info", "vendorErrorCode", "timestamp", "transactionId",
            "availability", "unlockStatus",
        ],
        "properties": {
            "status": {**NULLABLE_STRING, "description": "from the last StatusNotification"},
            "errorCode": NULLABLE_STRING,
            "info": NULLABLE_STRING,
            "vendorErrorCode": NULLABLE_STRING,
            "timestamp": NULLABLE_TIME,
            "transactionId": {"type": "integer", "nullable": True, "description": "the transaction in progress"},
            "availability": {
                "type": "string",
                "enum": ["Inoperative", "Operative"],
                "nullable": True,
                "description": "from the last ChangeAvailability the charge point accepted or scheduled",
            },
            "unlockStatus": {**NULLABLE_STRING, "description": "the answer to the last UnlockConnector"},
        },
    },
    "ConfigurationEntry": {
        "type": "object",
        "properties": {
            "value": {**NULLABLE_STRING, "description": "secret keys read <hidden>"},
            "readonly": {"type": "boolean"},
            "status": {"type": "string", "description": "answer to the last ChangeConfiguration of this key"},
        },
    },
    "ChargePointStatus": {
        "type": "object",
        "required": [
            "id", "description", "registered", "autoRegistered", "hasPassword", "securityProfile",
            "certificateName", "online", "lastSeen",
            "vendor", "model", "serialNumber", "firmwareVersion", "bootInfo", "firmwareStatus",
            "diagnosticsStatus", "localListVersion", "connectors", "openTransactions", "configuration",
            "commandOutcomes", "pendingCommands", "version", "installedCertificates", "chargePointCertificate",
            *security_schemas.STATUS_PROPERTIES,
        ],
        "properties": {
            "id": {"type": "string"},
            "description": {"type": "string"},
            "registered": {"type": "boolean"},
            "autoRegistered": {"type": "boolean"},
            "hasPassword": {"type": "boolean"},
            "securityProfile": SECURITY_SCHEMAS["SecurityProfile"],
            "certificateName": {"type": "string", "description": "the CN its client certificate must have"},
            "online": {"type": "boolean"},
            "lastSeen": NULLABLE_TIME,
            "vendor": NULLABLE_STRING,
            "model": NULLABLE_STRING,
            "serialNumber": NULLABLE_STRING,
            "firmwareVersion": NULLABLE_STRING,
            "bootInfo": {"type": "object", "nullable": True, "description": "the last BootNotification"},
            "firmwareStatus": NULLABLE_STRING,
            "diagnosticsStatus": NULLABLE_STRING,
            "localListVersion": {"type": "integer", "nullable": True},
            "connectors": {
                "type": "object",
                "description": 'keyed by connector id as a string: "0" is the charge point as a whole',
                "additionalProperties": {"$ref": "#/components/schemas/Connector"},
            },
            "openTransactions": {"type": "array", "items": {"type": "integer"}},
            "configuration": {
                "type": "object",
                "description": "configuration keys learned from GetConfiguration and accepted ChangeConfiguration",
                "additionalProperties": {"$ref": "#/components/schemas/ConfigurationEntry"},
            },
            "commandOutcomes": {
                "type": "object",
                "description": "the latest answer to Reset, ClearCache, TriggerMessage, GetDiagnostics and "
                "UpdateFirmware, keyed by action",
                "additionalProperties": {"type": "object"},
            },
            "pendingCommands": {
                "type": "integer",
                "description": "operator commands sent and unanswered, or queued behind one",
            },
            "version": {"type": "integer", "description": "the version of the charge point's history"},
            "installedCertificates": {"type": "object", "description": "by certificateType, the CertificateHashData "
                                      "it reported or accepted", "additionalProperties": {"type": "array"}},
            "chargePointCertificate": {"type": "object", "nullable": True, "description": "the latest certificate "
                                       "this CSMS signed that it accepted: serialNumber, fingerprint, subject, ..."},
            **security_schemas.STATUS_PROPERTIES,
        },
    },
    "ChargePointList": {
        "type": "object",
        "required": ["chargePoints"],
        "properties": {"chargePoints": {"type": "array", "items": {"$ref": "#/components/schemas/ChargePointStatus"}}},
    },
    "Event": {
        "type": "object",
        "required": ["version", "timestamp", "type", "data"],
        "properties": {
            "version": {"type": "integer"},
            "timestamp": {"type": "string", "format": "date-time"},
            "type": {"type": "string", "description": "e.g. Booted, CallSent, CallAnswered, CallFailed, CallTimedOut"},
            "data": {"type": "object", "description": "the event's fields, camelCase"},
        },
    },
    "EventList": {
        "type": "object",
        "required": ["events"],
        "properties": {"events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}},
    },
    "IdTagChange": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["Accepted", "Blocked", "Expired", "Invalid"], "default": "Accepted"},
            "expiryDate": {"type": "string", "format": "date-time"},
            "parentIdTag": {"type": "string", "maxLength": 20},
            "maxConcurrentTransactions": {
                "type": "integer", "nullable": True, "minimum": 1, "default": 1,
                "description": "transactions the tag may run at once; null: unlimited",
            },
        },
    },
    "IdTag": {
        "type": "object",
        "required": ["idTag", "status", "maxConcurrentTransactions"],
        "properties": {
            "idTag": {"type": "string", "maxLength": 20},
            "status": {"type": "string", "enum": ["Accepted", "Blocked", "Expired", "Invalid"]},
            "expiryDate": {"type": "string", "format": "date-time"},
            "parentIdTag": {"type": "string", "maxLength": 20},
            "maxConcurrentTransactions": {
                "type": "integer", "nullable": True, "minimum": 1,
                "description": "transactions the tag may run at once (StartTransaction answers ConcurrentTx"
                               " beyond it); null: unlimited",
            },
        },
    },
    "TransactionEnd": {
        "type": "object",
        "required": ["reason"],
        "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 255,
                                  "description": "why the operator ends the transaction; recorded in its history"}},
    },
    "IdTagList": {
        "type": "object",
        "required": ["idTags"],
        "properties": {"idTags": {"type": "array", "items": {"$ref": "#/components/schemas/IdTag"}}},
    },
}
