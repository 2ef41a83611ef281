"""For auditors: a charge point's full history, and its state at any moment."""

from __future__ import annotations

from aiohttp import web

from adapters.api.chargepoints import CHARGE_POINT_ERRORS
from adapters.api.parameters import MAX_PAGE, charge_point_id_of, int_parameter, moment_parameter
from adapters.api.responses import ApiError, json_response
from adapters.api.routing import Query, Route
from adapters.api.views import charge_point_view, event_view
from adapters.service.startup import CHARGE_POINTS, CLOCK


async def charge_point_events(request: web.Request) -> web.Response:
    charge_point_id = charge_point_id_of(request)
    after = int_parameter(request, "after", 0)
    limit = min(int_parameter(request, "limit", MAX_PAGE), MAX_PAGE)
    events = await request.app[CHARGE_POINTS].history(charge_point_id, after=after, limit=limit)
    return json_response({"events": [event_view(event) for event in events]})


async def charge_point_state(request: web.Request) -> web.Response:
    charge_point_id = charge_point_id_of(request)
    moment = moment_parameter(request, "at")
    aggregate, applied = await request.app[CHARGE_POINTS].state_at(charge_point_id, moment)
    if aggregate is None:
        raise ApiError(404, f"{charge_point_id} was not registered yet at {moment.isoformat() if moment else ''}")
    return json_response({"at": moment or request.app[CLOCK](), "eventsApplied": applied,
                          "state": charge_point_view(aggregate)})


ROUTES = [
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
    Route("GET", "/api/chargepoints/{chargePointId}/state", charge_point_state,
          "The charge point's state as it was at ?at=ISO8601 (default now)",
          errors={**CHARGE_POINT_ERRORS, 400: "a bad identity, or at is not a date-time within 0001-9999 in UTC"},
          query=(Query("at", "string", "ISO 8601 moment (default now)"),)),
]
