"""GET /api/openapi.json: the OpenAPI document of everything the server answers."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from adapters.api.openapi import build_document
from adapters.api.responses import json_response
from adapters.api.routing import ROUTE_TABLE, Route
from adapters.ocpp.endpoint import ocpp_endpoint


async def openapi_document(request: web.Request) -> web.Response:
    return json_response(document_of(request.app))


def document_of(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document of everything ``app`` serves."""
    table: list[Route] = app[ROUTE_TABLE]
    routes = list(table)
    listed = {(route.method, route.path) for route in routes}
    routes += [route for route in SERVED_ELSEWHERE if (route.method, route.path) not in listed]
    return build_document(routes)


ROUTES = [Route("GET", "/api/openapi.json", openapi_document, "This API as an OpenAPI 3 document")]

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
