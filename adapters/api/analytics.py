"""/api/analytics: energy, sessions and utilisation per charge point per day."""

from __future__ import annotations

import asyncio

from aiohttp import web

from adapters.api.freshness import fresh_read_models
from adapters.api.parameters import day_parameter, text_parameter
from adapters.api.responses import json_response
from adapters.api.routing import Query, Route
from projections import billing


async def daily_usage(request: web.Request) -> web.Response:
    read_models = await fresh_read_models(request)
    days = await asyncio.to_thread(
        billing.daily_usage,
        read_models,
        charge_point_id=text_parameter(request, "chargePointId"),
        since=day_parameter(request, "since"),
        until=day_parameter(request, "until"),
    )
    return json_response({"days": days})


ROUTES = [
    Route("GET", "/api/analytics/daily", daily_usage, "Energy, sessions and utilisation per charge point per day",
          errors={400: "a bad query parameter (the message names it)"},
          query=(
              Query("chargePointId", "string", "only this charge point's"),
              Query("since", "string", "YYYY-MM-DD (or a date-time, whose date counts): from this day"),
              Query("until", "string", "YYYY-MM-DD (or a date-time, whose date counts): before this day"),
          )),
]
