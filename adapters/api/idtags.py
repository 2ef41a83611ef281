"""/api/idtags: the IdTag registry that Authorize and StartTransaction answer from."""

from __future__ import annotations

from aiohttp import web

from adapters.api.parameters import optional_string, read_json_object
from adapters.api.responses import ApiError, json_response
from adapters.api.routing import Route
from adapters.service.startup import AUTHORIZER
from domain.idtags import DEFAULT_MAX_CONCURRENT_TRANSACTIONS, IdTagRejected, tag_view

BODY_ERRORS = {400: "the body is not a JSON object", 422: "a field breaks its rule"}


async def put_id_tag(request: web.Request) -> web.Response:
    authorizer = request.app[AUTHORIZER]
    id_tag = request.match_info["idTag"]
    body = await read_json_object(request)
    status = optional_string(body, "status") or "Accepted"
    expiry = optional_string(body, "expiryDate")
    parent = optional_string(body, "parentIdTag")
    # Absent: the default; null: unlimited. The registry checks the value.
    limit = body.get("maxConcurrentTransactions", DEFAULT_MAX_CONCURRENT_TRANSACTIONS)
    existed = authorizer.registry.find(id_tag) is not None
    try:
        entry = await authorizer.change(lambda registry: registry.save_tag(id_tag, status, expiry, parent, limit))
    except IdTagRejected as rejected:
        raise ApiError(422, str(rejected)) from None
    return json_response(tag_view(entry), 200 if existed else 201)


async def list_id_tags(request: web.Request) -> web.Response:
    registry = request.app[AUTHORIZER].registry
    entries = sorted(registry.tags.values(), key=lambda e: e["idTag"].lower())
    return json_response({"idTags": [tag_view(entry) for entry in entries]})


async def get_id_tag(request: web.Request) -> web.Response:
    entry = request.app[AUTHORIZER].registry.find(request.match_info["idTag"])
    if entry is None:
        raise ApiError(404, "unknown idTag")
    return json_response(tag_view(entry))


async def delete_id_tag(request: web.Request) -> web.Response:
    id_tag = request.match_info["idTag"]
    deleted = await request.app[AUTHORIZER].change(lambda registry: registry.delete_tag(id_tag))
    if not deleted:
        raise ApiError(404, "unknown idTag")
    return web.Response(status=204)


ROUTES = [
    Route("GET", "/api/idtags", list_id_tags, "All id tags", replies={200: "IdTagList"}),
    Route(
        "PUT", "/api/idtags/{idTag}", put_id_tag, "Create or update an id tag",
        body="IdTagChange", replies={200: "IdTag", 201: "IdTag"}, errors=BODY_ERRORS,
    ),
    Route("GET", "/api/idtags/{idTag}", get_id_tag, "One id tag", replies={200: "IdTag"},
          errors={404: "unknown idTag"}),
    Route("DELETE", "/api/idtags/{idTag}", delete_id_tag, "Delete an id tag", replies={204: None},
          errors={404: "unknown idTag"}),
]
