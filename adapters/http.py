"""The HTTP toolkit every API module shares: JSON replies, errors, token, routes.

Errors are JSON ``{"error": "..."}`` with a clear message; no stack trace
ever leaves the server.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

import orjson
from aiohttp import web

log = logging.getLogger(__name__)

API_TOKEN = web.AppKey("api_token", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_PAGE = 1000


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(body, default=str), status=status, content_type="application/json"
    )


def error(status: int, message: str, **extra: Any) -> web.Response:
    return json_response({"error": message, **extra}, status)


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as failure:
        return error(failure.status, failure.message, **failure.extra)
    except web.HTTPException as failure:
        if failure.status < 400:
            raise
        return error(failure.status, failure.reason)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error(500, "internal error; the server log has the details")


@web.middleware
async def bearer_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        expected = request.app[API_TOKEN]
        given = request.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
            return web.Response(
                body=orjson.dumps({"error": "missing or wrong bearer token"}),
                status=401,
                content_type="application/json",
                headers={"WWW-Authenticate": "Bearer"},
            )
    return await handler(request)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as failure:
        raise ApiError(400, f"the body is not valid JSON: {failure}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def optional_string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ApiError(422, f"{name} must be a string")
    return value


def int_parameter(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None
    if value < 0:
        raise ApiError(400, f"{name} must not be negative")
    return value


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
