"""The official OCPP 1.6 JSON schemas: which actions exist, and checking payloads.

Payloads are validated against the schemas shipped in the ``ocpp`` package,
compiled once per action and kept. For requests (JSON as received),
jsonschema-rs (Rust) answers "valid?" about six times faster than
fastjsonschema, so it decides the common case; fastjsonschema, whose errors
name the failed rule, explains an invalid payload and has the last word.
jsonschema-rs is never looser on these schemas (a property test checks)
except for "uri" formats (it takes a bare "x:"), so schemas with one, and
replies we build in Python (Decimals, datetimes), use fastjsonschema alone.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Callable

import fastjsonschema
import jsonschema_rs

from adapters.ocpp.framing import OcppError, Payload

# Schema rule that failed -> the OCPP-J error code that names it (section 4.2.3).
ERROR_FOR_RULE = {
    "required": "OccurenceConstraintViolation",
    "minItems": "OccurenceConstraintViolation",
    "maxItems": "OccurenceConstraintViolation",
    "type": "TypeConstraintViolation",
    "additionalProperties": "FormationViolation",
}
PROPERTY_RULES_DEFAULT = "PropertyConstraintViolation"  # enum, maxLength, format, ...

CHARGE_POINT_ACTIONS = frozenset(
    {
        "Authorize",
        "BootNotification",
        "DataTransfer",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
        # The Security Whitepaper's (its schemas ship in the ocpp package too).
        "LogStatusNotification",
        "SecurityEventNotification",
        "SignCertificate",
        "SignedFirmwareStatusNotification",
    }
)
CENTRAL_SYSTEM_ACTIONS = frozenset(
    {
        "CancelReservation",
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "ClearChargingProfile",
        "DataTransfer",
        "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics",
        "GetLocalListVersion",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "TriggerMessage",
        "UnlockConnector",
        "UpdateFirmware",
        # The Security Whitepaper's.
        "CertificateSigned",
        "DeleteCertificate",
        "ExtendedTriggerMessage",
        "GetInstalledCertificateIds",
        "GetLog",
        "InstallCertificate",
        "SignedUpdateFirmware",
    }
)


Validator = Callable[[Payload], Any]
Check = Callable[[Payload], bool]
# Where a value sits in a payload: property names, None for "every item of an array".
SchemaPath = tuple[str | None, ...]


def fast_check(schema: dict[str, Any]) -> Check | None:
    """jsonschema-rs's "valid?" for a schema, where it may decide alone (no "uri" format)."""
    if '"format": "uri"' in json.dumps(schema):
        return None
    # The OCPP 1.6 schemas are draft 4; formats (date-time) are checked too.
    is_valid: Check = jsonschema_rs.Draft4Validator(schema, validate_formats=True).is_valid
    return is_valid


class Schemas:
    """The compiled OCPP 1.6 schemas, one per action and direction, made on first use."""

    def __init__(self) -> None:
        self._validators: dict[str, Validator] = {}
        self._is_valid: dict[str, Check] = {}
        self._date_times: dict[str, tuple[SchemaPath, ...]] = {}
        self._folder = resources.files("ocpp") / "v16" / "schemas"

    def _validator(self, name: str) -> Validator:
        validator = self._validators.get(name)
        if validator is None:
            schema = self.schema(name)
            validator = self._validators[name] = fastjsonschema.compile(schema)
            is_valid = fast_check(schema)
            if is_valid is not None:
                self._is_valid[name] = is_valid
        return validator

    def schema(self, name: str) -> dict[str, Any]:
        schema: dict[str, Any] = json.loads((self._folder / f"{name}.json").read_text(encoding="utf-8"))
        return schema

    def validate_request(self, action: str, payload: Payload) -> None:
        """A request as parsed from JSON (a charge point's CALL, an operator's command)."""
        is_valid = self._is_valid.get(action)
        if is_valid is not None and is_valid(payload):
            return
        self._check(action, payload)

    def date_time_paths(self, action: str) -> tuple[SchemaPath, ...]:
        """Where the action's request holds date-times ("format": "date-time")."""
        paths = self._date_times.get(action)
        if paths is None:
            paths = self._date_times[action] = tuple(_date_time_paths(self.schema(action), ()))
        return paths

    def validate_response(self, action: str, payload: Payload) -> None:
        self._check(f"{action}Response", payload)

    def _check(self, name: str, payload: Payload) -> None:
        try:
            self._validator(name)(payload)
        except fastjsonschema.JsonSchemaValueException as error:
            raise OcppError(error_code_for(error), _describe(error), {"path": error.name}) from None

    def warm(self) -> None:
        """Compiles every schema now rather than on a charge point's first call."""
        for action in CHARGE_POINT_ACTIONS | CENTRAL_SYSTEM_ACTIONS:
            self._validator(action)
            self._validator(f"{action}Response")


def inline_definitions(schema: Any, root: dict[str, Any] | None = None) -> Any:
    """The schema with each "$ref" to its "definitions" replaced by the definition itself.

    The Security Whitepaper's schemas (draft 6) name their enums in "definitions";
    the core profile's (draft 4) write everything in place. OpenAPI and the tests'
    payload generators want it in place.
    """
    root = schema if root is None else root
    if isinstance(schema, list):
        return [inline_definitions(item, root) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return inline_definitions(root["definitions"][schema["$ref"].rsplit("/", 1)[-1]], root)
    return {key: inline_definitions(value, root) for key, value in schema.items() if key != "definitions"}


def _date_time_paths(schema: dict[str, Any], path: SchemaPath) -> list[SchemaPath]:
    if schema.get("format") == "date-time":
        return [path]
    found = []
    for name, inner in schema.get("properties", {}).items():
        found += _date_time_paths(inner, (*path, name))
    if isinstance(schema.get("items"), dict):
        found += _date_time_paths(schema["items"], (*path, None))
    return found


def error_code_for(error: fastjsonschema.JsonSchemaValueException) -> str:
    if error.rule == "type" and error.name == "data":
        return "FormationViolation"  # the payload itself is not an object
    return ERROR_FOR_RULE.get(error.rule or "", PROPERTY_RULES_DEFAULT)


def _describe(error: fastjsonschema.JsonSchemaValueException) -> str:
    return error.message.replace("data.", "").replace("data ", "payload ", 1)
