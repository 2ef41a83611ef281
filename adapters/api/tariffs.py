"""/api/tariffs: the prices sessions are billed at, each in force from the moment it is set."""

from __future__ import annotations

from aiohttp import web

from adapters.api.parameters import read_json_object, registered_id
from adapters.api.responses import ApiError, json_response
from adapters.api.routing import Route
from adapters.service.startup import CLOCK, TARIFFS
from domain.tariffs import DEFAULT_SCOPE, TariffRejected, parse_tariff


async def list_tariffs(request: web.Request) -> web.Response:
    book = request.app[TARIFFS].current
    return json_response({"tariffs": {scope: tariff for scope, tariff in sorted(book.current.items())}})


async def put_default_tariff(request: web.Request) -> web.Response:
    return await _set_tariff(request, DEFAULT_SCOPE)


async def put_charge_point_tariff(request: web.Request) -> web.Response:
    charge_point_id = await registered_id(request)
    if charge_point_id == DEFAULT_SCOPE:
        # Its own scope is the default tariff's: setting it would reprice every charge point.
        raise ApiError(409, f"a charge point named {DEFAULT_SCOPE!r} is billed with the default tariff;"
                            " set that with PUT /api/tariffs/default")
    return await _set_tariff(request, charge_point_id)


async def _set_tariff(request: web.Request, scope: str) -> web.Response:
    try:
        tariff = parse_tariff(await read_json_object(request))
    except TariffRejected as rejected:
        raise ApiError(422, str(rejected)) from None
    now = request.app[CLOCK]()
    await request.app[TARIFFS].change(lambda book: book.set_tariff(scope=scope, tariff=tariff, effective_from=now))
    return json_response(dict(tariff, scope=scope, effectiveFrom=now))


ROUTES = [
    Route("GET", "/api/tariffs", list_tariffs, "The tariffs in force"),
    Route("PUT", "/api/tariffs/default", put_default_tariff, "Set the default tariff from now on"),
    Route("PUT", "/api/chargepoints/{chargePointId}/tariff", put_charge_point_tariff,
          "Set a charge point's own tariff from now on"),
]
