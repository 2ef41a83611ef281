"""POST /api/chargepoints/{id}/commands/{Action}: any CSMS-initiated OCPP 1.6 call."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from adapters.api.parameters import charge_point_id_of, read_json_object, registered_anywhere
from adapters.api.responses import ApiError, json_response
from adapters.api.routing import Route
from adapters.ocpp.admissibility import refuse_inadmissible
from adapters.ocpp.endpoint import SCHEMAS
from adapters.ocpp.framing import OcppError
from adapters.ocpp.schemas import CENTRAL_SYSTEM_ACTIONS
from adapters.service.startup import COMMANDS, UPLOAD_TOKENS
from domain.redaction import recorded_reply

# What every route that sends a call may answer besides 200.
CALL_ERRORS = {
    400: "not a valid charge point identity",
    404: "unknown charge point",
    409: "the charge point is not connected",
    422: "the request breaks a rule or its OCPP schema; nothing was sent",
    502: "the charge point answered with a CALLERROR",
    504: "the charge point did not answer within the call timeout",
}


def validate_command(request: web.Request, action: str, payload: dict[str, Any]) -> None:
    """422 when the payload breaks the action's OCPP schema, or holds what no store can (a date-time
    out of range, a NUL): nothing is sent then."""
    try:
        request.app[SCHEMAS].validate_request(action, payload)
        refuse_inadmissible(action, payload, request.app[SCHEMAS])
    except OcppError as failure:
        raise ApiError(422, f"invalid {action} payload: {failure.description}", code=failure.code) from None


async def send_checked(request: web.Request, charge_point_id: str, action: str,
                            payload: dict[str, Any]) -> dict[str, Any]:
    """The payload checked against its schema, then sent; the service's failures answer for themselves."""
    validate_command(request, action, payload)
    payload = await request.app[UPLOAD_TOKENS].with_location(charge_point_id, action, payload)
    return await request.app[COMMANDS].send(charge_point_id, action, payload)


async def send_command(request: web.Request) -> web.Response:
    charge_point_id = charge_point_id_of(request)
    action = request.match_info["action"]
    if action not in CENTRAL_SYSTEM_ACTIONS:
        raise ApiError(404, f"unknown action {action!r}", actions=sorted(CENTRAL_SYSTEM_ACTIONS))
    await registered_anywhere(request, charge_point_id)
    payload = await read_json_object(request)
    reply = await send_checked(request, charge_point_id, action, payload)
    # A secret a charge point reports (it should not) is not passed on either.
    return json_response(recorded_reply(action, reply))


ROUTES = [
    Route(
        "POST",
        "/api/chargepoints/{chargePointId}/commands/{action}",
        send_command,
        "Send a CSMS-initiated OCPP 1.6 call and return the charge point's reply",
        description=(
            "The body is the OCPP request payload of the action, validated against its OCPP 1.6 schema before "
            "anything is sent. The reply is the charge point's CALLRESULT payload. Commands to one charge point "
            "queue: only one call is outstanding at a time. Every call becomes history on the charge point "
            "(CallSent, then CallAnswered, CallFailed or CallTimedOut)."
        ),
        body="OcppRequest",
        replies={200: "OcppResponse"},
        errors={
            400: "the body is not a JSON object, or not a valid charge point identity",
            404: "unknown action or charge point",
            409: "the charge point is not connected",
            422: "the payload breaks the action's OCPP schema, or a rule of the central system refuses it "
            "(a charging profile that cannot apply, a reservation already expired); nothing was sent",
            502: "the charge point answered with a CALLERROR, or with a reply that breaks its schema",
            504: "the charge point did not answer within the call timeout",
        },
    ),
]
