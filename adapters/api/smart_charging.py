"""Smart charging: the profiles a charge point accepted, and the composite schedule they give."""

from __future__ import annotations

from aiohttp import web

from adapters.api.chargepoints import CHARGE_POINT_ERRORS
from adapters.api.parameters import charge_point_id_of, moment_parameter, required_int
from adapters.api.responses import ApiError, json_response
from adapters.api.routing import Query, Route
from adapters.service.startup import CHARGE_POINTS, CLOCK
from domain.charging import UNITS


async def list_charging_profiles(request: web.Request) -> web.Response:
    cp = await request.app[CHARGE_POINTS].read(charge_point_id_of(request))
    return json_response({"chargePointId": cp.id, "chargingProfiles": cp.charging_profiles})


async def get_composite_schedule(request: web.Request) -> web.Response:
    cp = await request.app[CHARGE_POINTS].read(charge_point_id_of(request))
    connector_id = required_int(request, "connectorId")
    duration = required_int(request, "duration")
    unit = request.query.get("chargingRateUnit")
    if unit is not None and unit not in UNITS:
        raise ApiError(400, "chargingRateUnit must be A or W")
    start = moment_parameter(request, "start") or request.app[CLOCK]()
    return json_response({"status": "Accepted", **cp.composite_schedule(connector_id, start, duration, unit)})


ROUTES = [
    Route("GET", "/api/chargepoints/{chargePointId}/charging-profiles", list_charging_profiles,
          "The charging profiles the charge point accepted and has not cleared", errors=CHARGE_POINT_ERRORS),
    Route(
        "GET", "/api/chargepoints/{chargePointId}/composite-schedule", get_composite_schedule,
        "The composite schedule the CSMS computes from the installed profiles",
        description="Shaped like GetCompositeSchedule.conf; a period whose limit is null has no limit.",
        errors={**CHARGE_POINT_ERRORS, 400: "a missing or bad query parameter"},
        query=(
            Query("connectorId", "integer", "the connector; 0 for the charge point as a whole (required)"),
            Query("duration", "integer", "seconds from the start (required)"),
            Query("chargingRateUnit", "string", "A or W (default: the profiles' own unit)"),
            Query("start", "string", "ISO 8601 start of the schedule (default now)"),
        ),
    ),
]
