"""OCPP-J framing (OCPP-J 1.6 section 4): frames, schema validation, CALLERRORs.

Payloads are validated against the official OCPP 1.6 JSON schemas shipped in
the ``ocpp`` package, compiled once per action and kept. For requests (JSON
as received), jsonschema-rs (Rust) answers "valid?" about six times faster
than fastjsonschema, so it decides the common case; fastjsonschema, whose
errors name the failed rule, explains an invalid payload and has the last
word. jsonschema-rs is never looser on these schemas (a property test checks)
except for "uri" formats (it takes a bare "x:"), so schemas with one, and
replies we build in Python (Decimals, datetimes), use fastjsonschema alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable

import fastjsonschema
import jsonschema_rs
import orjson

CALL, CALLRESULT, CALLERROR = 2, 3, 4

Payload = dict[str, Any]

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
    }
)


class OcppError(Exception):
    """An error to answer with a CALLERROR."""

    def __init__(self, code: str, description: str, details: Payload | None = None) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.details = details or {}


class UnparseableFrame(Exception):
    """A frame without a message id we could answer to: logged and dropped."""


@dataclass(frozen=True, slots=True)
class Call:
    message_id: str
    action: str
    payload: Payload


@dataclass(frozen=True, slots=True)
class CallResult:
    message_id: str
    payload: Payload


@dataclass(frozen=True, slots=True)
class CallError:
    message_id: str
    code: str
    description: str
    details: Payload


Frame = Call | CallResult | CallError


def parse_frame(text: str | bytes) -> Frame:
    """Reads one OCPP-J frame; raises UnparseableFrame or OcppError (with an id)."""
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise UnparseableFrame(f"not JSON: {error}") from None
    if not isinstance(message, list) or len(message) < 3:
        raise UnparseableFrame("not an OCPP-J array")
    type_id, message_id = message[0], message[1]
    if not isinstance(message_id, str) or not 0 < len(message_id) <= 36:
        raise UnparseableFrame("no usable message id")
    if type_id == CALL:
        if len(message) != 4 or not isinstance(message[2], str):
            raise OcppError("FormationViolation", "a CALL is [2, id, action, payload]", {"messageId": message_id})
        if not isinstance(message[3], dict):
            raise OcppError("FormationViolation", "the payload must be a JSON object", {"messageId": message_id})
        return Call(message_id, message[2], message[3])
    if type_id == CALLRESULT:
        if len(message) != 3 or not isinstance(message[2], dict):
            raise UnparseableFrame("a CALLRESULT is [3, id, payload]")
        return CallResult(message_id, message[2])
    if type_id == CALLERROR:
        if len(message) != 5:
            raise UnparseableFrame("a CALLERROR is [4, id, code, description, details]")
        details = message[4] if isinstance(message[4], dict) else {}
        return CallError(message_id, str(message[2]), str(message[3]), details)
    raise OcppError("ProtocolError", f"unknown message type {type_id!r}", {"messageId": message_id})


def call_frame(message_id: str, action: str, payload: Payload) -> bytes:
    return orjson.dumps([CALL, message_id, action, payload])


def result_frame(message_id: str, payload: Payload) -> bytes:
    return orjson.dumps([CALLRESULT, message_id, payload], default=_encode_extra)


def error_frame(message_id: str, code: str, description: str, details: Payload | None = None) -> bytes:
    return orjson.dumps([CALLERROR, message_id, code, description[:255], details or {}])


def _encode_extra(value: Any) -> Any:
    # Decimal energy values may end up in replies derived from state.
    return str(value)


Validator = Callable[[Payload], Any]
Check = Callable[[Payload], bool]


class Schemas:
    """The compiled OCPP 1.6 schemas, one per action and direction, made on first use."""

    def __init__(self) -> None:
        self._validators: dict[str, Validator] = {}
        self._is_valid: dict[str, Check] = {}
        self._folder = resources.files("ocpp") / "v16" / "schemas"

    def _validator(self, name: str) -> Validator:
        validator = self._validators.get(name)
        if validator is None:
            schema = self.schema(name)
            validator = self._validators[name] = fastjsonschema.compile(schema)
            if '"format": "uri"' not in json.dumps(schema):
                # The OCPP 1.6 schemas are draft 4; formats (date-time) are checked too.
                self._is_valid[name] = jsonschema_rs.Draft4Validator(schema, validate_formats=True).is_valid
        return validator

    def fast_check(self, name: str) -> Check | None:
        """jsonschema-rs's "valid?" for a schema, where it may decide alone."""
        self._validator(name)
        return self._is_valid.get(name)

    def schema(self, name: str) -> dict[str, Any]:
        schema: dict[str, Any] = json.loads((self._folder / f"{name}.json").read_text(encoding="utf-8"))
        return schema

    def validate_request(self, action: str, payload: Payload) -> None:
        """A request as parsed from JSON (a charge point's CALL, an operator's command)."""
        is_valid = self._is_valid.get(action)
        if is_valid is not None and is_valid(payload):
            return
        self._check(action, payload)

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


def error_code_for(error: fastjsonschema.JsonSchemaValueException) -> str:
    if error.rule == "type" and error.name == "data":
        return "FormationViolation"  # the payload itself is not an object
    return ERROR_FOR_RULE.get(error.rule or "", PROPERTY_RULES_DEFAULT)


def _describe(error: fastjsonschema.JsonSchemaValueException) -> str:
    return error.message.replace("data.", "").replace("data ", "payload ", 1)
