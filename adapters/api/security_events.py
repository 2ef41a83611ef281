"""Security events (reported by charge points, or seen by the central system), from their read model."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from adapters.api.freshness import fresh_read_models
from adapters.api.parameters import MAX_PAGE, int_parameter, moment_parameter, registered_id, text_parameter
from adapters.api.responses import ApiError, json_response
from adapters.api.routing import Query, Route
from projections import security_events

FILTERS = (
    Query("type", "string", "only events of this type (e.g. TamperDetectionActivated)"),
    Query("since", "string", "ISO 8601: events whose timestamp (the charge point's) is at or after this moment"),
    Query("until", "string", "ISO 8601: events whose timestamp is before this moment"),
    Query("critical", "string", "true or false: only critical, or only other, events"),
    Query("after", "integer", "only events after this id (the id of the last event of the previous page)"),
    Query("limit", "integer", f"at most this many (default and most {MAX_PAGE})"),
)
BAD_FILTER = "a bad query parameter (the message names it)"


async def _security_events(request: web.Request, charge_point_id: str | None) -> web.Response:
    critical = request.query.get("critical")
    if critical not in (None, "true", "false"):
        raise ApiError(400, "critical must be true or false")
    filters: dict[str, Any] = {
        "type_": text_parameter(request, "type"),
        "since": moment_parameter(request, "since"),
        "until": moment_parameter(request, "until"),
        "critical": None if critical is None else critical == "true",
        "after": int_parameter(request, "after", 0),
        "limit": min(int_parameter(request, "limit", MAX_PAGE), MAX_PAGE),
    }
    read_models = await fresh_read_models(request)
    found = await asyncio.to_thread(security_events.find_security_events, read_models,
                                    charge_point_id=charge_point_id, **filters)
    return json_response({"securityEvents": found})


async def list_security_events(request: web.Request) -> web.Response:
    return await _security_events(request, text_parameter(request, "chargePointId"))


async def charge_point_security_events(request: web.Request) -> web.Response:
    return await _security_events(request, await registered_id(request))


DESCRIPTION = (
    "Each event: id (its place in this list, the paging cursor), chargePointId, version (in the charge point's "
    "history), source (charge_point: a SecurityEventNotification; central_system: seen by the CSMS itself), type, "
    "timestamp (when it happened, by the charge point's clock), techInfo, critical (the Security Whitepaper's "
    "critical types), receivedAt. Oldest first, by id; the next page is after=<the last id>."
)

ROUTES = [
    Route("GET", "/api/security-events", list_security_events, "Security events of every charge point",
          description=DESCRIPTION, replies={200: "SecurityEventList"}, errors={400: BAD_FILTER},
          query=(Query("chargePointId", "string", "only this charge point's"), *FILTERS)),
    Route("GET", "/api/chargepoints/{chargePointId}/security-events", charge_point_security_events,
          "A charge point's security events", description=DESCRIPTION, replies={200: "SecurityEventList"},
          errors={400: f"not a valid charge point identity, or {BAD_FILTER}", 404: "unknown charge point"},
          query=FILTERS),
]
