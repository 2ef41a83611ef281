"""Reading what an operator sent: path segments, query parameters, JSON bodies.

A bad value is a 400 (or 422 for a body field that breaks its rule) with a
message that names it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from adapters.api.responses import ApiError
from adapters.service.connections import is_charge_point_id
from adapters.service.startup import CHARGE_POINTS
from domain.timestamps import parse_ocpp_time

MAX_PAGE = 1000


def charge_point_id_of(request: web.Request) -> str:
    charge_point_id = request.match_info["chargePointId"]
    if not is_charge_point_id(charge_point_id):
        raise ApiError(400, "not a valid charge point identity")
    return charge_point_id


def registered_id(request: web.Request, charge_point_id: str | None = None) -> str:
    """The charge point of the path (or ``charge_point_id``); 404 unless it is registered."""
    if charge_point_id is None:
        charge_point_id = charge_point_id_of(request)
    if charge_point_id not in request.app[CHARGE_POINTS].registered:
        raise ApiError(404, f"unknown charge point {charge_point_id}")
    return charge_point_id


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


def required_int(request: web.Request, name: str, minimum: int = 0) -> int:
    text = request.query.get(name)
    if text is None:
        raise ApiError(400, f"{name} is required")
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None
    if value < minimum:
        raise ApiError(400, f"{name} must be {minimum} or more")
    return value


def path_int(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None


def moment_parameter(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        return parse_ocpp_time(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO 8601 date-time") from None
