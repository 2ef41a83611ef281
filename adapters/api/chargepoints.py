"""/api/chargepoints: register a charge point, list them, and read one."""

from __future__ import annotations

import asyncio

from aiohttp import web

from adapters.api.freshness import fresh_read_models
from adapters.api.parameters import charge_point_id_of, optional_string, read_json_object
from adapters.api.responses import ApiError, json_response
from adapters.api.routing import Route
from adapters.api.views import charge_point_view
from adapters.service.security_profiles import UNCHANGED
from adapters.service.startup import CHARGE_POINTS, COMMANDS, SECURITY_PROFILES
from domain.security_profile import ProfileRefused
from projections import status

CHARGE_POINT_ERRORS = {400: "not a valid charge point identity", 404: "unknown charge point"}


async def put_charge_point(request: web.Request) -> web.Response:
    charge_point_id = charge_point_id_of(request)
    body = await read_json_object(request)
    description = optional_string(body, "description")
    password = optional_string(body, "password")
    if password is not None and not 8 <= len(password) <= 40:
        # OCPP 1.6 security whitepaper: a Basic-auth password is 16-40 characters;
        # we accept 8 for test benches that cannot do better.
        raise ApiError(422, "password must be 8 to 40 characters")
    profile = optional_profile(body, "securityProfile")
    certificate_name = optional_string(body, "certificateName") if "certificateName" in body else UNCHANGED
    profiles = request.app[SECURITY_PROFILES]
    try:
        await profiles.check_registration(charge_point_id, profile, password is not None)
        created = await request.app[CHARGE_POINTS].register(charge_point_id, description, password)
        await profiles.configure(charge_point_id, profile, certificate_name)
    except ProfileRefused as refused:
        raise ApiError(refused.status, refused.reason) from None
    return json_response(await _view(request, charge_point_id), 201 if created else 200)


def optional_profile(body: dict[str, object], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value not in (0, 1, 2, 3):
        raise ApiError(422, f"{name} must be 0, 1, 2 or 3")
    return value


async def list_charge_points(request: web.Request) -> web.Response:
    """Every charge point's status, from the status read model: one query, not N loads."""
    read_models = await fresh_read_models(request)
    return json_response({"chargePoints": await asyncio.to_thread(status.all_statuses, read_models)})


async def get_charge_point(request: web.Request) -> web.Response:
    return json_response(await _view(request, charge_point_id_of(request)))


async def _view(request: web.Request, charge_point_id: str) -> dict[str, object]:
    cp = await request.app[CHARGE_POINTS].read(charge_point_id)
    return charge_point_view(cp, request.app[COMMANDS].pending(charge_point_id))


ROUTES = [
    Route(
        "GET", "/api/chargepoints", list_charge_points, "All charge points with their status",
        replies={200: "ChargePointList"},
    ),
    Route(
        "PUT", "/api/chargepoints/{chargePointId}", put_charge_point, "Register or update a charge point",
        body="ChargePointRegistration", replies={200: "ChargePointStatus", 201: "ChargePointStatus"},
        errors={400: "not a valid charge point identity, or the body is not a JSON object",
                422: "a field breaks its rule (a password of 8 to 40 characters; securityProfile 0-3, 1 and 2 "
                     "with a password, 0 without, 2 and 3 only when the server serves TLS)"},
    ),
    Route(
        "GET", "/api/chargepoints/{chargePointId}", get_charge_point, "A charge point's status",
        replies={200: "ChargePointStatus"}, errors=CHARGE_POINT_ERRORS,
    ),
]
