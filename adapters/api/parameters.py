"""Reading what an operator sent: path segments, query parameters, JSON bodies.

A bad value is a 400 (or 422 for a body field that breaks its rule) with a
message that names it. A value is taken only when both stores can hold it:
integers are 64-bit signed, moments lie within Python's datetime range once
in UTC (PostgreSQL's timestamptz holds all of those), and text has no NUL.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any, Iterable

import orjson
from aiohttp import web

from adapters.api.responses import ApiError
from adapters.service.connections import is_charge_point_id
from adapters.service.startup import CHARGE_POINTS
from domain.timestamps import parse_ocpp_time

MAX_PAGE = 1000
# What an integer column holds in both stores (SQLite INTEGER, PostgreSQL bigint).
SMALLEST_INT = -(2**63)
LARGEST_INT = 2**63 - 1
DIGITS = re.compile(r"[+-]?[0-9]+")


def charge_point_id_of(request: web.Request) -> str:
    charge_point_id = request.match_info["chargePointId"]
    if not is_charge_point_id(charge_point_id):
        raise ApiError(400, "not a valid charge point identity")
    return charge_point_id


async def registered_id(request: web.Request, charge_point_id: str | None = None) -> str:
    """The charge point of the path (or ``charge_point_id``); 404 unless it is registered
    (on any node: one registered on another node since this one started is asked of the store)."""
    if charge_point_id is None:
        charge_point_id = charge_point_id_of(request)
    # An id no charge point can have (a NUL, say, from a query) is not asked of the store.
    if not is_charge_point_id(charge_point_id) or not await request.app[CHARGE_POINTS].exists(charge_point_id):
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
    if (field := _nul_field(body, "")) is not None:
        # No store's text holds a NUL: refused here, once for every route that reads a body.
        raise ApiError(422, f"{field} must not contain a NUL character")
    return body


def _nul_field(value: Any, path: str) -> str | None:
    """The path (``a.b[0]``) of the first key or string in ``value`` that holds a NUL, else None."""
    if isinstance(value, str):
        return (path or "the body") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            field = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return field
            if (found := _nul_field(item, field)) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _nul_field(item, f"{path}[{index}]")) is not None:
                return found
    return None


def optional_string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ApiError(422, f"{name} must be a string")
    return value


def _integer(name: str, text: str, minimum: int = SMALLEST_INT) -> int:
    """``text`` as an integer from ``minimum`` up to the largest 64-bit one; else a 400 naming ``name``."""
    if not DIGITS.fullmatch(text):
        raise ApiError(400, f"{name} must be an integer")
    significant = text.lstrip("+-").lstrip("0")
    # More digits than any 64-bit integer has: out of range (and never handed to int()).
    value = int(text) if len(significant) <= 19 else (SMALLEST_INT - 1 if text[0] == "-" else LARGEST_INT + 1)
    if value < minimum:
        raise ApiError(400, f"{name} must not be negative" if minimum == 0 else f"{name} must be {minimum} or more")
    if value > LARGEST_INT:
        raise ApiError(400, f"{name} must be at most {LARGEST_INT}")
    return value


def int_parameter(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    return _integer(name, text, minimum=0)


def required_int(request: web.Request, name: str, minimum: int = 0) -> int:
    text = request.query.get(name)
    if text is None:
        raise ApiError(400, f"{name} is required")
    return _integer(name, text, minimum)


def path_int(request: web.Request, name: str) -> int:
    return _integer(name, request.match_info[name])


async def list_filters(request: web.Request, statuses: Iterable[str]) -> tuple[str | None, str | None]:
    """A list route's ``status`` (one of ``statuses``, else 400) and ``chargePointId`` (registered, else 404)."""
    status = request.query.get("status")
    if status is not None and status not in statuses:
        raise ApiError(400, f"status must be one of {', '.join(statuses)}")
    charge_point_id = request.query.get("chargePointId")
    if charge_point_id is not None:
        await registered_id(request, charge_point_id)
    return status, charge_point_id


def text_parameter(request: web.Request, name: str) -> str | None:
    """A text query parameter; a NUL character, which no store's text holds, is a 400."""
    text = request.query.get(name)
    if text is not None and "\x00" in text:
        raise ApiError(400, f"{name} must not contain a NUL character")
    return text


def moment_parameter(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        moment = parse_ocpp_time(text)
        moment.astimezone(UTC)  # in range in UTC too, as the stores compare it
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO 8601 date-time") from None
    except OverflowError:
        # A leap second at the end of 9999, or an offset that carries past year 1 or 9999.
        raise ApiError(400, f"{name} is out of range: it must lie between 0001-01-01 and 9999-12-31 in UTC") from None
    return moment


def day_parameter(request: web.Request, name: str) -> str | None:
    """A day as YYYY-MM-DD, given as a date or as a date-time (whose own date counts)."""
    text = request.query.get(name)
    if text is None:
        return None
    if len(text) > 10:
        moment = moment_parameter(request, name)
        assert moment is not None
        return moment.date().isoformat()
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO 8601 date (YYYY-MM-DD) or date-time") from None
