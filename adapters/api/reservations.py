"""Reservations (OCPP 1.6 Reservation profile): list, reserve, cancel."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from adapters.api.commands import CALL_ERRORS, send_checked, validate_command
from adapters.api.freshness import fresh_read_models
from adapters.api.parameters import list_filters, path_int, read_json_object, registered_id
from adapters.api.responses import json_response
from adapters.api.routing import Query, Route
from adapters.service.startup import CHARGE_POINTS, COMMANDS
from domain.reservation_book import STATUSES
from projections.reservations import find_reservations


async def list_reservations(request: web.Request) -> web.Response:
    status, charge_point_id = await list_filters(request, STATUSES)
    read_models = await fresh_read_models(request)
    found = await asyncio.to_thread(find_reservations, read_models, charge_point_id, status)
    return json_response({"reservations": found})


async def make_reservation(request: web.Request) -> web.Response:
    charge_point_id = await registered_id(request)
    body = await read_json_object(request)
    payload: dict[str, Any] = {"reservationId": 0, **body}
    validate_command(request, "ReserveNow", payload)  # before an id is spent on it
    if "reservationId" not in body:
        payload["reservationId"] = await request.app[COMMANDS].allocate_reservation_id()
    reply = await send_checked(request, charge_point_id, "ReserveNow", payload)
    reservation = await _reservation(request, charge_point_id, payload["reservationId"])
    return json_response({**(reservation or {"chargePointId": charge_point_id}), "replyStatus": reply["status"]})


async def cancel_reservation(request: web.Request) -> web.Response:
    charge_point_id = await registered_id(request)
    reservation_id = path_int(request, "reservationId")
    reply = await send_checked(request, charge_point_id, "CancelReservation", {"reservationId": reservation_id})
    return json_response(
        {"replyStatus": reply["status"], "reservation": await _reservation(request, charge_point_id, reservation_id)}
    )


async def _reservation(request: web.Request, charge_point_id: str, reservation_id: int) -> dict[str, Any] | None:
    """The reservation as the charge point's aggregate holds it now."""
    cp = await request.app[CHARGE_POINTS].read(charge_point_id)
    reservation = cp.reservations.get(reservation_id)
    return {"chargePointId": cp.id, **reservation} if reservation is not None else None


ROUTES = [
    Route(
        "GET", "/api/reservations", list_reservations, "Reservations with their status",
        errors={400: "an unknown status", 404: "unknown charge point"},
        query=(
            Query("chargePointId", "string", "only this charge point's"),
            Query("status", "string", "Pending, Accepted, Rejected, Used, Cancelled or Expired"),
        ),
    ),
    Route(
        "POST", "/api/chargepoints/{chargePointId}/reservations", make_reservation,
        "Reserve a connector (ReserveNow); the CSMS allocates reservationId when it is left out",
        errors=CALL_ERRORS,
    ),
    Route("DELETE", "/api/chargepoints/{chargePointId}/reservations/{reservationId}", cancel_reservation,
          "Cancel a reservation (CancelReservation)", errors=CALL_ERRORS),
]
