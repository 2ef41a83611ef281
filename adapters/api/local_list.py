"""The Local Authorization List a charge point holds, and bringing it to the IdTag registry."""

from __future__ import annotations

from aiohttp import web

from adapters.api.chargepoints import CHARGE_POINT_ERRORS
from adapters.api.commands import CALL_ERRORS
from adapters.api.parameters import charge_point_id_of, read_json_object, registered_anywhere
from adapters.api.responses import ApiError, json_response
from adapters.api.routing import Route
from adapters.service.startup import CHARGE_POINTS, LOCAL_LIST_SYNC
from domain.local_list import DIFFERENTIAL, FULL


async def get_local_list(request: web.Request) -> web.Response:
    cp = await request.app[CHARGE_POINTS].read(charge_point_id_of(request))
    held = cp.local_list
    return json_response(
        {
            "chargePointId": cp.id,
            "listVersion": cp.local_list_version,
            "known": held is not None,
            "localAuthorizationList": [held[key] for key in sorted(held)] if held is not None else None,
        }
    )


async def sync_local_list(request: web.Request) -> web.Response:
    charge_point_id = await registered_anywhere(request)
    body = await read_json_object(request)
    if body.get("updateType") not in (None, FULL, DIFFERENTIAL):
        raise ApiError(422, "updateType must be Full or Differential")
    outcome = await request.app[LOCAL_LIST_SYNC].sync(charge_point_id, full=body.get("updateType") == FULL)
    return json_response(outcome)


ROUTES = [
    Route("GET", "/api/chargepoints/{chargePointId}/local-list", get_local_list,
          "The local authorization list the charge point holds, as far as the CSMS knows",
          errors=CHARGE_POINT_ERRORS),
    Route(
        "POST", "/api/chargepoints/{chargePointId}/local-list/sync", sync_local_list,
        "Bring the charge point's local list to the IdTag registry (SendLocalList)",
        description="Differential when the CSMS knows the list the charge point holds, else Full; "
        "a VersionMismatch is followed by GetLocalListVersion and a Full update. Body (optional): "
        '{"updateType": "Full"} forces a Full update. Within the charge point\'s LocalAuthListMaxLength '
        "(a larger registry is refused with 409) and SendLocalListMaxLength (a longer update goes in parts), "
        "asked with GetConfiguration when not known.",
        errors={**CALL_ERRORS, 409: "the charge point is not connected, or the registry holds more tags than "
                "its LocalAuthListMaxLength (then with `tags` and `capacity`)"},
    ),
]
