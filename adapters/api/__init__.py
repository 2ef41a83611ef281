"""The operator REST API: one module per resource, each listing its routes.

Every /api route needs ``Authorization: Bearer TOKEN``. Errors are JSON
``{"error": "..."}``; no stack trace leaves the server. Handlers parse the
request, ask the service layer or a read model, and shape the reply.
"""

from __future__ import annotations

from aiohttp import web

from adapters.api import (
    analytics,
    certificates,
    chargepoints,
    commands,
    diagnostics,
    document,
    firmware,
    health,
    history,
    idtags,
    local_list,
    logs,
    nodes,
    reservations,
    security_events,
    security_profile,
    smart_charging,
    tariffs,
    transactions,
)
from adapters.api.responses import errors_as_json
from adapters.api.routing import Route, add_routes
from adapters.api.token import API_TOKEN, bearer_token

ROUTES: list[Route] = [
    *health.ROUTES,
    *document.ROUTES,
    *chargepoints.ROUTES,
    *history.ROUTES,
    *commands.ROUTES,
    *security_profile.ROUTES,
    *idtags.ROUTES,
    *transactions.ROUTES,
    *tariffs.ROUTES,
    *analytics.ROUTES,
    *smart_charging.ROUTES,
    *reservations.ROUTES,
    *local_list.ROUTES,
    *firmware.ROUTES,
    *diagnostics.ROUTES,
    *certificates.ROUTES,
    *logs.ROUTES,
    *security_events.ROUTES,
    *nodes.ROUTES,
]
MIDDLEWARES = (errors_as_json, bearer_token)


def add_api(app: web.Application, api_token: str) -> None:
    """Serves the REST API (and the file routes for charge points) on ``app``."""
    app[API_TOKEN] = api_token
    add_routes(app, ROUTES)
