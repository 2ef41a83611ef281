"""The operator REST API: charge points, id tags, commands, history.

Every /api route needs ``Authorization: Bearer TOKEN``. Errors are JSON
``{"error": "..."}``; no stack trace leaves the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any
from weakref import WeakKeyDictionary

from aiohttp import web

from adapters.actors import CallRejected, CallTimeout, NotConnected, NotRegistered
from adapters.central import CHARGE_POINT_ID, CentralSystem
from adapters.http import (
    MAX_PAGE,
    ROUTE_TABLE,
    ApiError,
    Query,
    Route,
    int_parameter,
    json_response,
    optional_string,
    read_json_object,
)
from adapters.ocppj import CENTRAL_SYSTEM_ACTIONS, OcppError
from adapters.openapi import build_document
from adapters.read_api import fresh_read_models
from adapters.views import charge_point_status, event_view
from adapters.websocket import CENTRAL, ocpp_endpoint
from domain.idtags import IdTagRejected
from domain.redaction import recorded_reply
from projections.status import status_view

log = logging.getLogger(__name__)

# Operator commands in progress per charge point (sent and unanswered, or
# queued behind one), per running central system.
_PENDING: WeakKeyDictionary[CentralSystem, Counter[str]] = WeakKeyDictionary()


def pending_commands(central: CentralSystem) -> Counter[str]:
    return _PENDING.setdefault(central, Counter())


def central_of(request: web.Request) -> CentralSystem:
    return request.app[CENTRAL]


def charge_point_id_of(request: web.Request) -> str:
    charge_point_id = request.match_info["chargePointId"]
    if not CHARGE_POINT_ID.match(charge_point_id):
        raise ApiError(400, "not a valid charge point identity")
    return charge_point_id


async def load_charge_point(central: CentralSystem, charge_point_id: str) -> Any:
    actor = central.actors.get(charge_point_id)
    if actor is not None and actor.handle.aggregate is not None and not actor.handle.committing:
        return actor.handle.aggregate  # committed state, in memory
    # Nobody holds it, or a change is on its way to disk: read what is durable.
    cp = await asyncio.to_thread(central.store.load_charge_point, charge_point_id)
    if cp is None:
        raise ApiError(404, f"unknown charge point {charge_point_id}")
    return cp


# ---- handlers ---------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    central = central_of(request)
    return json_response(
        {
            "status": "ok",
            "connectedChargePoints": len(central.actors),
            "committedEvents": central.committer.committed_events,
            "commitBatches": central.committer.batches,
        }
    )


async def put_charge_point(request: web.Request) -> web.Response:
    central = central_of(request)
    charge_point_id = charge_point_id_of(request)
    body = await read_json_object(request)
    description = optional_string(body, "description")
    password = optional_string(body, "password")
    if password is not None and not 8 <= len(password) <= 40:
        # OCPP 1.6 security whitepaper: a Basic-auth password is 16-40 characters;
        # we accept 8 for test benches that cannot do better.
        raise ApiError(422, "password must be 8 to 40 characters")
    created = await central.register(charge_point_id, description, password)
    return json_response(await status_of(central, charge_point_id), 201 if created else 200)


async def status_of(central: CentralSystem, charge_point_id: str) -> dict[str, Any]:
    cp = await load_charge_point(central, charge_point_id)
    return charge_point_status(cp, pending_commands(central)[charge_point_id])


async def list_charge_points(request: web.Request) -> web.Response:
    """Every charge point's status, from the status read model: one query, not N loads."""
    central = await fresh_read_models(request)
    statuses, connectors = await asyncio.to_thread(
        lambda: (
            central.read_models.query("SELECT * FROM cp_status ORDER BY charge_point_id"),
            central.read_models.query("SELECT * FROM cp_connectors ORDER BY charge_point_id, connector_id"),
        )
    )
    by_charge_point: dict[str, list[dict[str, Any]]] = {}
    for connector in connectors:
        by_charge_point.setdefault(connector["charge_point_id"], []).append(connector)
    views = [status_view(row, by_charge_point.get(row["charge_point_id"], [])) for row in statuses]
    return json_response({"chargePoints": views})


async def get_charge_point(request: web.Request) -> web.Response:
    return json_response(await status_of(central_of(request), charge_point_id_of(request)))


async def charge_point_events(request: web.Request) -> web.Response:
    central = central_of(request)
    charge_point_id = charge_point_id_of(request)
    after = int_parameter(request, "after", 0)
    limit = min(int_parameter(request, "limit", MAX_PAGE), MAX_PAGE)
    await load_charge_point(central, charge_point_id)
    events = await asyncio.to_thread(
        lambda: [event_view(e) for e in central.store.history(charge_point_id, after=after, limit=limit)]
    )
    return json_response({"events": events})


def validate_command(central: CentralSystem, action: str, payload: dict[str, Any]) -> None:
    """422 when the payload breaks the action's OCPP schema; nothing is sent then."""
    try:
        central.schemas.validate_request(action, payload)
    except OcppError as failure:
        raise ApiError(422, f"invalid {action} payload: {failure.description}", code=failure.code) from None


async def call_charge_point(central: CentralSystem, charge_point_id: str, action: str,
                            payload: dict[str, Any]) -> dict[str, Any]:
    """CentralSystem.call with its failures as the API answers them (409, 404, 504, 502)."""
    validate_command(central, action, payload)
    pending = pending_commands(central)
    pending[charge_point_id] += 1
    try:
        return await central.call(charge_point_id, action, payload)
    except NotConnected:
        raise ApiError(409, f"{charge_point_id} is not connected") from None
    except NotRegistered:
        raise ApiError(404, f"unknown charge point {charge_point_id}") from None
    except CallTimeout:
        raise ApiError(
            504, f"{charge_point_id} did not answer {action} within {central.settings.call_timeout:g} s"
        ) from None
    except CallRejected as rejected:
        raise ApiError(
            502,
            f"{charge_point_id} answered {action} with {rejected.code}",
            errorCode=rejected.code,
            errorDescription=rejected.description,
            errorDetails=rejected.details,
        ) from None
    finally:
        pending[charge_point_id] -= 1
        if not pending[charge_point_id]:
            del pending[charge_point_id]


async def send_command(request: web.Request) -> web.Response:
    central = central_of(request)
    charge_point_id = charge_point_id_of(request)
    action = request.match_info["action"]
    if action not in CENTRAL_SYSTEM_ACTIONS:
        raise ApiError(404, f"unknown action {action!r}", actions=sorted(CENTRAL_SYSTEM_ACTIONS))
    if charge_point_id not in central.registered:
        raise ApiError(404, f"unknown charge point {charge_point_id}")
    payload = await read_json_object(request)
    reply = await call_charge_point(central, charge_point_id, action, payload)
    # A secret a charge point reports (it should not) is not passed on either.
    return json_response(recorded_reply(action, reply))


async def put_id_tag(request: web.Request) -> web.Response:
    central = central_of(request)
    id_tag = request.match_info["idTag"]
    body = await read_json_object(request)
    status = optional_string(body, "status") or "Accepted"
    expiry = optional_string(body, "expiryDate")
    parent = optional_string(body, "parentIdTag")
    existed = central.authorizer.registry.find(id_tag) is not None
    try:
        entry = await central.authorizer.change(lambda registry: registry.save_tag(id_tag, status, expiry, parent))
    except IdTagRejected as rejected:
        raise ApiError(422, str(rejected)) from None
    return json_response(entry, 200 if existed else 201)


async def list_id_tags(request: web.Request) -> web.Response:
    registry = central_of(request).authorizer.registry
    return json_response({"idTags": sorted(registry.tags.values(), key=lambda e: e["idTag"].lower())})


async def get_id_tag(request: web.Request) -> web.Response:
    entry = central_of(request).authorizer.registry.find(request.match_info["idTag"])
    if entry is None:
        raise ApiError(404, "unknown idTag")
    return json_response(entry)


async def delete_id_tag(request: web.Request) -> web.Response:
    id_tag = request.match_info["idTag"]
    deleted = await central_of(request).authorizer.change(lambda registry: registry.delete_tag(id_tag))
    if not deleted:
        raise ApiError(404, "unknown idTag")
    return web.Response(status=204)


async def openapi_document(request: web.Request) -> web.Response:
    return json_response(document_of(request.app))


def document_of(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document of everything ``app`` serves."""
    table: list[Route] = app[ROUTE_TABLE]
    routes = list(table)
    listed = {(route.method, route.path) for route in routes}
    routes += [route for route in SERVED_ELSEWHERE if (route.method, route.path) not in listed]
    return build_document(routes)


CHARGE_POINT_ERRORS = {400: "not a valid charge point identity", 404: "unknown charge point"}
BODY_ERRORS = {400: "the body is not a JSON object", 422: "a field breaks its rule"}

ROUTES = [
    Route("GET", "/health", health, "Liveness and store figures (no token needed)", replies={200: "Health"}),
    Route("GET", "/api/openapi.json", openapi_document, "This API as an OpenAPI 3 document"),
    Route(
        "GET", "/api/chargepoints", list_charge_points, "All charge points with their status",
        replies={200: "ChargePointList"},
    ),
    Route(
        "PUT", "/api/chargepoints/{chargePointId}", put_charge_point, "Register or update a charge point",
        body="ChargePointRegistration", replies={200: "ChargePointStatus", 201: "ChargePointStatus"},
        errors={400: "not a valid charge point identity, or the body is not a JSON object",
                422: "a field breaks its rule"},
    ),
    Route(
        "GET", "/api/chargepoints/{chargePointId}", get_charge_point, "A charge point's status",
        replies={200: "ChargePointStatus"}, errors=CHARGE_POINT_ERRORS,
    ),
    Route(
        "GET", "/api/chargepoints/{chargePointId}/events", charge_point_events,
        "A charge point's full history, oldest first",
        replies={200: "EventList"},
        errors={**CHARGE_POINT_ERRORS, 400: "a bad identity or paging parameter"},
        query=(
            Query("after", "integer", "only events after this version"),
            Query("limit", "integer", f"at most this many events (and never more than {MAX_PAGE})"),
        ),
    ),
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
    Route("GET", "/api/idtags", list_id_tags, "All id tags", replies={200: "IdTagList"}),
    Route(
        "PUT", "/api/idtags/{idTag}", put_id_tag, "Create or update an id tag",
        body="IdTagChange", replies={200: "IdTag", 201: "IdTag"}, errors=BODY_ERRORS,
    ),
    Route("GET", "/api/idtags/{idTag}", get_id_tag, "One id tag", replies={200: "IdTag"},
          errors={404: "unknown idTag"}),
    Route("DELETE", "/api/idtags/{idTag}", delete_id_tag, "Delete an id tag", replies={204: None},
          errors={404: "unknown idTag"}),
]

# Routes that other modules register themselves, described here so the
# document covers everything the server answers.
SERVED_ELSEWHERE = [
    Route(
        "GET", "/ocpp/{chargePointId}", ocpp_endpoint,
        "The OCPP-J 1.6 WebSocket endpoint of a charge point",
        description=(
            "A WebSocket upgrade offering the subprotocol ocpp1.6. A charge point registered with a password "
            "presents HTTP Basic auth (its id and password: OCPP 1.6 security profile 1)."
        ),
        replies={101: None},
        errors={
            400: "not a valid identity, or the subprotocol ocpp1.6 was not offered",
            401: "this charge point needs HTTP Basic auth, or the password is wrong",
            404: "unknown charge point (and auto-registration is off)",
        },
    ),
]
