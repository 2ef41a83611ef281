"""POST /api/chargepoints/{id}/security-profile: raise a connected charge point's security profile."""

from __future__ import annotations

from aiohttp import web

from adapters.api.chargepoints import optional_profile
from adapters.api.parameters import read_json_object, registered_id
from adapters.api.responses import ApiError, json_response
from adapters.api.routing import Route
from adapters.api.views import charge_point_view
from adapters.service.startup import CHARGE_POINTS, SECURITY_PROFILES
from domain.security_profile import ProfileRefused


async def raise_security_profile(request: web.Request) -> web.Response:
    charge_point_id = await registered_id(request)
    body = await read_json_object(request)
    profile = optional_profile(body, "profile")
    if profile is None:
        raise ApiError(422, "profile must be 0, 1, 2 or 3")
    try:
        reply = await request.app[SECURITY_PROFILES].raise_to(charge_point_id, profile)
    except ProfileRefused as refused:
        raise ApiError(refused.status, refused.reason) from None
    cp = await request.app[CHARGE_POINTS].read(charge_point_id)
    return json_response({"status": reply.get("status"), "securityProfile": charge_point_view(cp)["securityProfile"]})


ROUTES = [
    Route(
        "POST", "/api/chargepoints/{chargePointId}/security-profile", raise_security_profile,
        "Raise a charge point's security profile through ChangeConfiguration SecurityProfile",
        description=(
            "Checks first what the profile needs (a password for 1 and 2; TLS served for 2 and 3; for 3 an "
            "installed CentralSystemRootCertificate and a charge point certificate this central system signed), "
            "then sends ChangeConfiguration SecurityProfile=N. On Accepted the profile is N and a connection "
            "that meets only a lower one is refused from then on. A profile is never lowered through OCPP "
            "(Whitepaper A00.FR.005): lower it with PUT /api/chargepoints/{chargePointId} securityProfile."
        ),
        body="SecurityProfileRaise", replies={200: "SecurityProfileRaised"},
        errors={
            400: "not a valid charge point identity, or the body is not a JSON object",
            404: "unknown charge point",
            409: "the charge point is not connected, is at this profile or a higher one already, or lacks what "
                 "the profile needs (the message says what)",
            422: "profile is not 0, 1, 2 or 3",
            502: "the charge point answered with a CALLERROR",
            504: "the charge point did not answer within the call timeout",
        },
    ),
]
