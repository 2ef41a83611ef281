"""Routes of the OCPP feature profiles beyond Core.

Smart charging (installed profiles, composite schedule), reservations, the
local authorization list, firmware images and the rollout view, and
diagnostics files. The calls themselves go through CentralSystem.call, so
they are checked, recorded and learned from like any command; the file
routes for charge points (/firmware, /diagnostics) need no token.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, AsyncIterator

from aiohttp import BodyPartReader, web

from adapters.api import call_charge_point, central_of, charge_point_id_of, load_charge_point, validate_command
from adapters.central import CentralSystem
from adapters.files import BadFileName, FileStore, FileTooLarge, StoredFile, safe_name
from adapters.http import ApiError, Query, Route, json_response, read_json_object
from adapters.read_api import fresh_read_models, moment_parameter
from domain import reservation_book as reservations
from domain.chargepoint import ChargePoint
from domain.charging import composite_schedule
from domain.local_list import (
    CAPACITY_KEY,
    FULL,
    PER_MESSAGE_KEY,
    in_messages,
    list_from_registry,
    list_limits,
    plan_update,
)
from domain.timestamps import format_ocpp_time, parse_ocpp_time
from projections import reservations as reservations_read_model

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
CHARGE_POINT_ERRORS = {400: "not a valid charge point identity", 404: "unknown charge point"}
CALL_ERRORS = {
    **CHARGE_POINT_ERRORS,
    409: "the charge point is not connected",
    422: "the request breaks a rule or its OCPP schema; nothing was sent",
    502: "the charge point answered with a CALLERROR",
    504: "the charge point did not answer within the call timeout",
}


def registered_id(request: web.Request) -> str:
    charge_point_id = charge_point_id_of(request)
    if charge_point_id not in central_of(request).registered:
        raise ApiError(404, f"unknown charge point {charge_point_id}")
    return charge_point_id


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


# ---- smart charging -------------------------------------------------------------


async def list_charging_profiles(request: web.Request) -> web.Response:
    cp = await load_charge_point(central_of(request), charge_point_id_of(request))
    return json_response({"chargePointId": cp.id, "chargingProfiles": cp.charging_profiles})


async def get_composite_schedule(request: web.Request) -> web.Response:
    central = central_of(request)
    cp = await load_charge_point(central, charge_point_id_of(request))
    connector_id = required_int(request, "connectorId")
    duration = required_int(request, "duration")
    unit = request.query.get("chargingRateUnit")
    if unit is not None and unit not in ("A", "W"):
        raise ApiError(400, "chargingRateUnit must be A or W")
    start = moment_parameter(request, "start") or central.now()
    transaction_id = cp.connectors.get(connector_id, {}).get("transactionId")
    transaction = cp.open_transactions.get(transaction_id) if transaction_id is not None else None
    # Relative profiles count from the start of the connector's transaction (3.13.1).
    transaction_start = parse_ocpp_time(transaction["startTimestamp"]) if transaction else None
    schedule = composite_schedule(
        cp.charging_profiles, connector_id, start, duration, unit, transaction_start,
        transaction_id if transaction else None,
    )
    return json_response({"status": "Accepted", **schedule})


# ---- reservations -------------------------------------------------------------------


def reservation_view(cp: ChargePoint, reservation: dict[str, Any]) -> dict[str, Any]:
    return {"chargePointId": cp.id, **reservation}


async def list_reservations(request: web.Request) -> web.Response:
    central = central_of(request)
    conditions: list[str] = []
    params: list[Any] = []
    wanted_status = request.query.get("status")
    if wanted_status is not None:
        if wanted_status not in reservations.STATUSES:
            raise ApiError(400, f"status must be one of {', '.join(reservations.STATUSES)}")
        conditions.append("status = ?")
        params.append(wanted_status)
    charge_point_id = request.query.get("chargePointId")
    if charge_point_id is not None:
        if charge_point_id not in central.registered:
            raise ApiError(404, f"unknown charge point {charge_point_id}")
        conditions.append("charge_point_id = ?")
        params.append(charge_point_id)
    await fresh_read_models(request)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = await asyncio.to_thread(
        central.read_models.query,
        f"SELECT * FROM reservations {where} ORDER BY requested_at, reservation_id",
        params,
    )
    return json_response({"reservations": [reservations_read_model.reservation_view(row) for row in rows]})


async def make_reservation(request: web.Request) -> web.Response:
    central = central_of(request)
    charge_point_id = registered_id(request)
    body = await read_json_object(request)
    payload: dict[str, Any] = {"reservationId": 0, **body}
    validate_command(central, "ReserveNow", payload)  # before an id is spent on it
    if "reservationId" not in body:
        payload["reservationId"] = await central.allocate_reservation_id()
    reply = await call_charge_point(central, charge_point_id, "ReserveNow", payload)
    cp = await load_charge_point(central, charge_point_id)
    reservation = cp.reservations.get(payload["reservationId"], {})
    return json_response({**reservation_view(cp, reservation), "replyStatus": reply["status"]})


async def cancel_reservation(request: web.Request) -> web.Response:
    central = central_of(request)
    charge_point_id = registered_id(request)
    try:
        reservation_id = int(request.match_info["reservationId"])
    except ValueError:
        raise ApiError(400, "reservationId must be an integer") from None
    reply = await call_charge_point(central, charge_point_id, "CancelReservation", {"reservationId": reservation_id})
    cp = await load_charge_point(central, charge_point_id)
    reservation = cp.reservations.get(reservation_id)
    return json_response(
        {"replyStatus": reply["status"], "reservation": reservation_view(cp, reservation) if reservation else None}
    )


# ---- local authorization list ----------------------------------------------------------


async def get_local_list(request: web.Request) -> web.Response:
    cp = await load_charge_point(central_of(request), charge_point_id_of(request))
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
    """Brings the charge point's list to the IdTag registry: Differential when it can.

    Within the charge point's limits: a registry larger than its list can hold
    is refused (409), and a long update goes in parts of SendLocalListMaxLength.
    """
    central = central_of(request)
    charge_point_id = registered_id(request)
    body = await read_json_object(request)
    if body.get("updateType") not in (None, "Full", "Differential"):
        raise ApiError(422, "updateType must be Full or Differential")
    configuration = await central.execute(charge_point_id, lambda cp: dict(cp.configuration))
    capacity, per_message = await _local_list_limits(central, charge_point_id, configuration)
    desired = list_from_registry(central.authorizer.registry.tags.values())
    if capacity is not None and len(desired) > capacity:
        raise ApiError(
            409, f"the IdTag registry holds {len(desired)} tags; {charge_point_id} keeps at most {capacity} "
                 f"({CAPACITY_KEY})", tags=len(desired), capacity=capacity,
        )
    # Read after the limits' round trip, so a list sent meanwhile is taken into account.
    version, held = await central.execute(charge_point_id, lambda cp: (cp.local_list_version, cp.local_list))
    update = plan_update(desired, held, version, full=body.get("updateType") == FULL)
    if update is None:
        return json_response({"status": "UpToDate", "listVersion": version, "attempts": []})
    attempts = await _send_in_messages(central, charge_point_id, update, per_message)
    if attempts[-1]["status"] == "VersionMismatch":
        # The charge point's list moved on without us: ask its version, then send it all.
        reported = await call_charge_point(central, charge_point_id, "GetLocalListVersion", {})
        update = plan_update(desired, None, reported["listVersion"], full=True)
        assert update is not None
        attempts += await _send_in_messages(central, charge_point_id, update, per_message)
    return json_response({**attempts[-1], "attempts": attempts})


async def _local_list_limits(
    central: CentralSystem, charge_point_id: str, configuration: dict[str, Any]
) -> tuple[int | None, int | None]:
    """The list's limits as the configuration knows them; asked for (GetConfiguration) when it does not."""
    known = {key.lower() for key in configuration}
    if CAPACITY_KEY.lower() in known and PER_MESSAGE_KEY.lower() in known:
        return list_limits(configuration)
    try:
        reply = await call_charge_point(
            central, charge_point_id, "GetConfiguration", {"key": [CAPACITY_KEY, PER_MESSAGE_KEY]}
        )
    except ApiError as error:
        if error.status != 502:
            raise
        return None, None  # no usable answer (a CALLERROR, an invalid reply): send as if it had no limits
    return list_limits({entry["key"]: entry for entry in reply.get("configurationKey", [])})


async def _send_in_messages(
    central: CentralSystem, charge_point_id: str, update: dict[str, Any], per_message: int | None
) -> list[dict[str, Any]]:
    """Sends the update's parts in order; stops at the first part not Accepted."""
    attempts: list[dict[str, Any]] = []
    for part in in_messages(update, per_message):
        attempts.append(await _send_list(central, charge_point_id, part))
        if attempts[-1]["status"] != "Accepted":
            break
    return attempts


async def _send_list(central: CentralSystem, charge_point_id: str, update: dict[str, Any]) -> dict[str, Any]:
    reply = await call_charge_point(central, charge_point_id, "SendLocalList", update)
    return {
        "status": reply["status"],
        "updateType": update["updateType"],
        "listVersion": update["listVersion"],
        "entries": len(update["localAuthorizationList"]),
    }


# ---- files --------------------------------------------------------------------------------


def files_of(request: web.Request) -> FileStore:
    settings = central_of(request).settings
    return FileStore(settings.data_dir, settings.max_file_size)


def checked_name(name: str) -> str:
    try:
        return safe_name(name)
    except BadFileName as bad:
        raise ApiError(400, str(bad)) from None


async def _store_upload(files: FileStore, directory: Path, name: str | None, request: web.Request) -> StoredFile:
    if request.content_length is not None and request.content_length > files.max_size:
        raise ApiError(413, f"larger than the limit of {files.max_size} bytes")
    chunks: AsyncIterator[bytes]
    if request.content_type.startswith("multipart/"):
        part = await _first_file_part(request)
        name = name or part.filename
        chunks = _part_chunks(part)
    else:
        chunks = request.content.iter_chunked(CHUNK)
    if not name:
        name = "diagnostics-" + format_ocpp_time(central_of(request).now()).replace(":", "")
    try:
        return await files.save(directory, checked_name(name), chunks)
    except FileTooLarge as too_large:
        raise ApiError(413, str(too_large)) from None


async def _first_file_part(request: web.Request) -> BodyPartReader:
    """The first part with a file name; other form fields are skipped."""
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and part.filename:
            return part
    raise ApiError(400, "the multipart body holds no file")


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


def _file_view(stored: StoredFile, url: str) -> dict[str, Any]:
    return {**stored.view(), "url": url}


async def put_firmware(request: web.Request) -> web.Response:
    files = files_of(request)
    name = checked_name(request.match_info["name"])
    existed = files.find(files.firmware_dir(), name) is not None
    stored = await _store_upload(files, files.firmware_dir(), name, request)
    location = str(request.url.with_path(f"/firmware/{stored.name}").with_query(None))
    return json_response(_file_view(stored, location), 200 if existed else 201)


async def list_firmware(request: web.Request) -> web.Response:
    files = files_of(request)
    listing = await asyncio.to_thread(files.listing, files.firmware_dir())
    return json_response(
        {
            "firmware": [
                _file_view(stored, str(request.url.with_path(f"/firmware/{stored.name}").with_query(None)))
                for stored in listing
            ]
        }
    )


async def delete_firmware(request: web.Request) -> web.Response:
    files = files_of(request)
    if not await asyncio.to_thread(files.delete, files.firmware_dir(), request.match_info["name"]):
        raise ApiError(404, "no such firmware image")
    return web.Response(status=204)


async def download_firmware(request: web.Request) -> web.StreamResponse:
    files = files_of(request)
    path = files.find(files.firmware_dir(), request.match_info["name"])
    if path is None:
        raise ApiError(404, "no such firmware image")
    return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})


async def firmware_rollout(request: web.Request) -> web.Response:
    central = central_of(request)
    rows = []
    for charge_point_id in sorted(central.registered):
        cp = await load_charge_point(central, charge_point_id)
        update = cp.firmware_update
        rows.append(
            {
                "chargePointId": cp.id,
                "online": cp.online,
                "firmwareVersion": (cp.boot_info or {}).get("firmwareVersion"),
                "firmwareStatus": cp.firmware_status,
                "state": update["state"] if update else None,
                "lastUpdate": {k: v for k, v in update.items() if k != "messageId"} if update else None,
            }
        )
    counts: dict[str, int] = {}
    for row in rows:
        if row["state"] is not None:
            counts[row["state"]] = counts.get(row["state"], 0) + 1
    return json_response({"chargePoints": rows, "counts": counts})


async def upload_diagnostics(request: web.Request) -> web.Response:
    central = central_of(request)
    charge_point_id = registered_id(request)
    files = files_of(request)
    name = request.match_info.get("fileName")
    stored = await _store_upload(files, files.diagnostics_dir(charge_point_id), name, request)
    await central.execute(
        charge_point_id,
        lambda cp: cp.receive_diagnostics_file(
            file_name=stored.name, size=stored.size, sha256=stored.sha256 or "", received_at=central.now()
        ),
    )
    return json_response({"fileName": stored.name, "size": stored.size, "sha256": stored.sha256}, 201)


async def put_diagnostics(request: web.Request) -> web.Response:
    return await upload_diagnostics(request)


async def post_diagnostics(request: web.Request) -> web.Response:
    return await upload_diagnostics(request)


async def post_diagnostics_form(request: web.Request) -> web.Response:
    # The location itself as the target: the file name comes with the multipart part.
    return await upload_diagnostics(request)


async def list_diagnostics(request: web.Request) -> web.Response:
    charge_point_id = registered_id(request)
    files = files_of(request)
    listing = await asyncio.to_thread(files.listing, files.diagnostics_dir(charge_point_id))
    return json_response(
        {
            "chargePointId": charge_point_id,
            "files": [
                _file_view(stored, f"/api/chargepoints/{charge_point_id}/diagnostics/{stored.name}")
                for stored in listing
            ],
        }
    )


async def download_diagnostics(request: web.Request) -> web.StreamResponse:
    charge_point_id = registered_id(request)
    files = files_of(request)
    path = files.find(files.diagnostics_dir(charge_point_id), request.match_info["fileName"])
    if path is None:
        raise ApiError(404, "no such diagnostics file")
    return web.FileResponse(
        path,
        headers={"Content-Type": "application/octet-stream",
                 "Content-Disposition": f'attachment; filename="{path.name}"'},
    )


UPLOAD_ERRORS = {
    400: "a bad charge point identity or file name, or a multipart body without a file",
    404: "unknown charge point",
    413: "the file is larger than --max-file-size",
}

ROUTES = [
    Route("GET", "/api/chargepoints/{chargePointId}/charging-profiles", list_charging_profiles,
          "The charging profiles the charge point accepted and has not cleared", errors=CHARGE_POINT_ERRORS),
    Route(
        "GET", "/api/chargepoints/{chargePointId}/composite-schedule", get_composite_schedule,
        "The composite schedule the CSMS computes from the installed profiles",
        description="Shaped like GetCompositeSchedule.conf; a period whose limit is null has no limit.",
        errors={**CHARGE_POINT_ERRORS, 400: "a missing or bad query parameter"},
        query=(
            Query("connectorId", "integer", "the connector; 0 for the charge point as a whole (required)"),
            Query("duration", "integer", "seconds from the start (required)"),
            Query("chargingRateUnit", "string", "A or W (default: the profiles' own unit)"),
            Query("start", "string", "ISO 8601 start of the schedule (default now)"),
        ),
    ),
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
    Route("GET", "/api/firmware", list_firmware, "Firmware images stored for charge points"),
    Route("GET", "/api/firmware/rollout", firmware_rollout,
          "Per charge point: firmware version, the last UpdateFirmware and how it went"),
    Route("PUT", "/api/firmware/{name}", put_firmware, "Store a firmware image (the raw body)",
          errors={400: "a bad file name", 413: "the image is larger than --max-file-size"},
          replies={200: None, 201: None}),
    Route("DELETE", "/api/firmware/{name}", delete_firmware, "Delete a firmware image",
          errors={404: "no such image"}, replies={204: None}),
    Route("GET", "/firmware/{name}", download_firmware, "A firmware image, for charge points (no token)",
          errors={404: "no such image"}),
    Route("PUT", "/diagnostics/{chargePointId}/{fileName}", put_diagnostics,
          "Upload target of GetDiagnostics: raw or multipart body (no token)", errors=UPLOAD_ERRORS,
          replies={201: None}),
    Route("POST", "/diagnostics/{chargePointId}/{fileName}", post_diagnostics,
          "Upload target of GetDiagnostics: raw or multipart body (no token)", errors=UPLOAD_ERRORS,
          replies={201: None}),
    Route("POST", "/diagnostics/{chargePointId}/", post_diagnostics_form,
          "Upload target of GetDiagnostics; the file name from the multipart part (no token)",
          errors=UPLOAD_ERRORS, replies={201: None}),
    Route("GET", "/api/chargepoints/{chargePointId}/diagnostics", list_diagnostics,
          "Diagnostics files the charge point uploaded", errors=CHARGE_POINT_ERRORS),
    Route("GET", "/api/chargepoints/{chargePointId}/diagnostics/{fileName}", download_diagnostics,
          "Download one diagnostics file", errors={**CHARGE_POINT_ERRORS, 404: "unknown charge point or file"}),
]
