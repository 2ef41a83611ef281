"""Routes and what the OpenAPI document says of each: every module of the API lists its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from aiohttp import web

from adapters.api.responses import Handler


@dataclass(frozen=True)
class Query:
    """A query parameter of a route, for the OpenAPI document."""

    name: str
    type: str  # a JSON Schema type: "integer" or "string"
    description: str


@dataclass(frozen=True, eq=False)
class Route:
    """One HTTP route and what the OpenAPI document says about it.

    ``body`` and the values of ``replies`` name schemas of the document's
    components; ``errors`` maps each error status the route answers to when.
    """

    method: str
    path: str
    handler: Handler
    summary: str
    body: str | None = None
    replies: Mapping[int, str | None] = field(default_factory=lambda: {200: None})
    errors: Mapping[int, str] = field(default_factory=dict)
    query: tuple[Query, ...] = ()
    description: str = ""


ROUTE_TABLE = web.AppKey("route_table", list[Route])


def add_routes(app: web.Application, routes: list[Route]) -> None:
    """Registers routes and remembers them, so the OpenAPI document lists exactly these."""
    if ROUTE_TABLE not in app:
        app[ROUTE_TABLE] = []
    app[ROUTE_TABLE].extend(routes)
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler)
