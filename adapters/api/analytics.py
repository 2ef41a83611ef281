"""/api/analytics: energy, sessions and utilisation per charge point per day."""

from __future__ import annotations

import asyncio

from aiohttp import web

from adapters.api.freshness import fresh_read_models
from adapters.api.responses import json_response
from adapters.api.routing import Route
from projections import billing


async def daily_usage(request: web.Request) -> web.Response:
    read_models = await fresh_read_models(request)
    query = request.query
    days = await asyncio.to_thread(
        billing.daily_usage,
        read_models,
        charge_point_id=query.get("chargePointId"),
        since=query["since"][:10] if "since" in query else None,
        until=query["until"][:10] if "until" in query else None,
    )
    return json_response({"days": days})


ROUTES = [
    Route("GET", "/api/analytics/daily", daily_usage, "Energy, sessions and utilisation per charge point per day"),
]
