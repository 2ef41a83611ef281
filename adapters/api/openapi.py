"""The OpenAPI 3 document of the REST API, built from the route table itself.

Command bodies and replies are described with the official OCPP 1.6 JSON
schemas that ship in the ``ocpp`` package, the very schemas the API validates
with, so the document cannot drift from what the server accepts.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import metadata, resources
from typing import Any, Iterable, Iterator

from adapters.api.routing import Route
from adapters.ocpp.schemas import CENTRAL_SYSTEM_ACTIONS, inline_definitions
from adapters.service.connections import CHARGE_POINT_ID

PARAMETER = re.compile(r"{(\w+)}")
OCPP_SCHEMAS = resources.files("ocpp") / "v16" / "schemas"
OPENAPI_VERSION = "3.0.3"

REPLY_TEXT = {
    101: "switching to the WebSocket protocol",
    200: "success",
    201: "created",
    204: "done; no content",
}
ERROR_TEXT = {
    401: "missing or wrong bearer token",
    500: "an unexpected failure; the server log has the details, the reply none",
}
# Error replies whose body says more than the plain Error schema.
ERROR_SCHEMA = {502: "CallError"}

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
        "nodes": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "started": {"type": "string", "format": "date-time"},
            "lastRenewal": {"type": "string", "format": "date-time"},
            "healthy": {"type": "boolean", "description": "renewed its leases within the lease time"},
            "chargePointCount": {"type": "integer"},
            "chargePointIds": {"type": "array", "items": {"type": "string"}},
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
            "id", "description", "registered", "autoRegistered", "hasPassword", "online", "lastSeen",
            "vendor", "model", "serialNumber", "firmwareVersion", "bootInfo", "firmwareStatus",
            "diagnosticsStatus", "localListVersion", "connectors", "openTransactions", "configuration",
            "commandOutcomes", "pendingCommands", "version",
        ],
        "properties": {
            "id": {"type": "string"},
            "description": {"type": "string"},
            "registered": {"type": "boolean"},
            "autoRegistered": {"type": "boolean"},
            "hasPassword": {"type": "boolean"},
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


def build_document(routes: Iterable[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for route in routes:
        for path, operation in _operations(route):
            # One handler may serve several methods (PUT and POST of an upload):
            # operation ids must still be unique.
            operation_id = operation["operationId"]
            if operation_id in operation_ids:
                operation_id = f"{operation_id}_{route.method.lower()}"
            base, number = operation_id, 1
            while operation_id in operation_ids:
                number += 1
                operation_id = f"{base}_{number}"
            operation_ids.add(operation_id)
            operation["operationId"] = operation_id
            paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "AmpLedger CSMS",
            "version": _version(),
            "description": "The operator API of an event-sourced OCPP 1.6-J central system. "
            "Every /api route needs `Authorization: Bearer TOKEN`; errors are JSON `{\"error\": \"...\"}`.",
        },
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic", "description": "a charge point's id and password"},
            },
            "schemas": {**API_SCHEMAS, **command_schemas()},
        },
    }


def _operations(route: Route) -> Iterator[tuple[str, dict[str, Any]]]:
    yield route.path, _operation(route, route.path, route.body, route.replies, route.handler.__name__)
    if "{action}" in route.path:
        # One concrete path per OCPP action as well, each with its own schemas,
        # so clients generated from the document get one typed call per action.
        for action in sorted(CENTRAL_SYSTEM_ACTIONS):
            path = route.path.replace("{action}", action)
            replies = {status: f"{action}Response" if status == 200 else schema
                       for status, schema in route.replies.items()}
            operation = _operation(route, path, f"{action}Request", replies, f"{route.handler.__name__}_{action}")
            operation["summary"] = f"Send {action}"
            yield path, operation


def _operation(
    route: Route, path: str, body: str | None, replies: Any, operation_id: str
) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, schema in replies.items():
        responses[str(status)] = _response(REPLY_TEXT.get(status, "success"), schema)
    errors = dict(route.errors)
    if path.startswith("/api/"):
        errors.setdefault(401, ERROR_TEXT[401])
    errors.setdefault(500, ERROR_TEXT[500])
    for status, text in sorted(errors.items()):
        responses[str(status)] = _response(text, ERROR_SCHEMA.get(status, "Error"))
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": operation_id,
        "tags": [_tag(route.path)],
        "responses": responses,
    }
    if route.description:
        operation["description"] = route.description
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _parameter_schema(name)}
        for name in PARAMETER.findall(path)
    ]
    parameters += [
        {"name": query.name, "in": "query", "required": False, "description": query.description,
         "schema": {"type": query.type}}
        for query in route.query
    ]
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"content": {"application/json": {"schema": _ref(body)}}}
    if not path.startswith("/api/"):
        operation["security"] = []
    return operation


def _response(text: str, schema: str | None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": text}
    if schema is not None:
        response["content"] = {"application/json": {"schema": _ref(schema)}}
    return response


def _ref(schema: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{schema}"}


def _tag(path: str) -> str:
    if "/commands/" in path:
        return "commands"
    if path.startswith("/api/chargepoints"):
        return "charge points"
    if path.startswith("/api/idtags"):
        return "id tags"
    if path.startswith("/ocpp/"):
        return "OCPP"
    return "service"


def _parameter_schema(name: str) -> dict[str, Any]:
    if name == "action":
        return {"type": "string", "enum": sorted(CENTRAL_SYSTEM_ACTIONS)}
    if name == "chargePointId":
        return {"type": "string", "pattern": CHARGE_POINT_ID.pattern}
    if name == "idTag":
        return {"type": "string", "maxLength": 20}
    return {"type": "string"}


@cache
def command_schemas() -> dict[str, Any]:
    """``{Action}Request``, ``{Action}Response`` for every CSMS-initiated action, and their unions."""
    schemas: dict[str, Any] = {}
    for action in sorted(CENTRAL_SYSTEM_ACTIONS):
        schemas[f"{action}Request"] = ocpp_schema(action)
        schemas[f"{action}Response"] = ocpp_schema(f"{action}Response")
    actions = sorted(CENTRAL_SYSTEM_ACTIONS)
    schemas["OcppRequest"] = {
        "description": "The request payload of the action named in the path: its {Action}Request schema.",
        "anyOf": [_ref(f"{action}Request") for action in actions],
    }
    schemas["OcppResponse"] = {
        "description": "The charge point's reply to the action named in the path: its {Action}Response schema.",
        "anyOf": [_ref(f"{action}Response") for action in actions],
    }
    return schemas


def ocpp_schema(name: str) -> dict[str, Any]:
    """An OCPP 1.6 JSON schema as an OpenAPI 3.0 schema object."""
    schema: dict[str, Any] = inline_definitions(json.loads((OCPP_SCHEMAS / f"{name}.json").read_text(encoding="utf-8")))
    # The core profile's schemas have a title ("ResetRequest"); the Security Whitepaper's none.
    schema.setdefault("title", name if name.endswith("Response") else f"{name}Request")
    return _without(schema, NOT_OPENAPI)


# Draft-04/06 bookkeeping and the security schemas' code-generator hints, which OpenAPI 3.0 schema objects forbid.
NOT_OPENAPI = frozenset({"$schema", "id", "$id", "javaType", "additionalItems"})


def _without(node: Any, keys: frozenset[str]) -> Any:
    if isinstance(node, list):
        return [_without(item, keys) for item in node]
    if isinstance(node, dict):
        return {key: _without(value, keys) for key, value in node.items() if key not in keys}
    return node


def _version() -> str:
    try:
        return metadata.version("ampledger")
    except metadata.PackageNotFoundError:
        return "0"
