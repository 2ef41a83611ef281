"""Diagnostics files: the upload target of GetDiagnostics (for charge points), and their download."""

from __future__ import annotations

import asyncio

from aiohttp import web

from adapters.api.chargepoints import CHARGE_POINT_ERRORS
from adapters.api.parameters import registered_id
from adapters.api.responses import ApiError, json_response
from adapters.api.routing import Route
from adapters.api.uploads import UPLOAD_ERRORS, file_view, receive_upload
from adapters.service.startup import CHARGE_POINTS, CLOCK, FILES


async def upload_diagnostics(request: web.Request) -> web.Response:
    charge_point_id = registered_id(request)
    files = request.app[FILES]
    # The location itself may be the target: the file name then comes with the multipart part.
    received = await receive_upload(request, files.diagnostics_dir(charge_point_id), request.match_info.get("fileName"))
    stored = received.stored
    # Recorded, then put in place, one upload of a name at a time: the file
    # under a name is the one its last DiagnosticsUploaded describes, and an
    # upload that could not be recorded leaves no file.
    async with files.lock(received.target):
        try:
            now = request.app[CLOCK]()
            await request.app[CHARGE_POINTS].change(
                charge_point_id,
                lambda cp: cp.record_diagnostics_upload(
                    file_name=stored.name, size=stored.size, sha256=stored.sha256 or "", received_at=now
                ),
            )
        except BaseException:
            await files.discard(received)
            raise
        await files.place(received)
    return json_response({"fileName": stored.name, "size": stored.size, "sha256": stored.sha256}, 201)


async def put_diagnostics(request: web.Request) -> web.Response:
    return await upload_diagnostics(request)


async def post_diagnostics(request: web.Request) -> web.Response:
    return await upload_diagnostics(request)


async def post_diagnostics_form(request: web.Request) -> web.Response:
    return await upload_diagnostics(request)


async def list_diagnostics(request: web.Request) -> web.Response:
    charge_point_id = registered_id(request)
    files = request.app[FILES]
    listing = await asyncio.to_thread(files.listing, files.diagnostics_dir(charge_point_id))
    return json_response(
        {
            "chargePointId": charge_point_id,
            "files": [
                file_view(stored, f"/api/chargepoints/{charge_point_id}/diagnostics/{stored.name}")
                for stored in listing
            ],
        }
    )


async def download_diagnostics(request: web.Request) -> web.StreamResponse:
    charge_point_id = registered_id(request)
    files = request.app[FILES]
    path = files.find(files.diagnostics_dir(charge_point_id), request.match_info["fileName"])
    if path is None:
        raise ApiError(404, "no such diagnostics file")
    return web.FileResponse(
        path,
        headers={"Content-Type": "application/octet-stream",
                 "Content-Disposition": f'attachment; filename="{path.name}"'},
    )


ROUTES = [
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
