"""The bearer token every /api route needs, compared in constant time."""

from __future__ import annotations

import hmac

import orjson
from aiohttp import web

from adapters.api.responses import Handler

API_TOKEN = web.AppKey("api_token", str)


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
