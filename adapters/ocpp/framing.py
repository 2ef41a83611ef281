"""OCPP-J framing (OCPP-J 1.6 section 4): CALL, CALLRESULT and CALLERROR frames."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

CALL, CALLRESULT, CALLERROR = 2, 3, 4

Payload = dict[str, Any]

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
