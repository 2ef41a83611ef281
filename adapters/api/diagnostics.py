"""Diagnostics files: the upload target of GetDiagnostics (for charge points), and their download."""

from __future__ import annotations

import asyncio

from aiohttp import web

from adapters.api.chargepoints import CHARGE_POINT_ERRORS
from adapters.api.parameters import registered_id
from adapters.api.responses import ApiError, error, json_response
from adapters.api.routing import Route
from adapters.api.uploads import UPLOAD_ERRORS, file_view, receive_upload
from adapters.service.connections import Refused
from adapters.service.passwords import basic_credentials
from adapters.service.startup import CHARGE_POINTS, CLOCK, CONNECTIONS, FILES, UPLOAD_TOKENS


async def upload_diagnostics(request: web.Request) -> web.Response:
    charge_point_id = await registered_id(request)
    refused = await _refusal(request, charge_point_id)
    if refused is not None:
        return refused
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


async def _refusal(request: web.Request, charge_point_id: str) -> web.Response | None:
    """None when the upload may go ahead: a valid token in its path, or the charge point's own Basic auth.

    Anything else is a 401, before a byte of the body is read.
    """
    token = request.match_info.get("token")
    reason = "an upload needs the location of a GetDiagnostics request, or the charge point's Basic auth"
    retry_after = None
    if token is not None:
        if await request.app[UPLOAD_TOKENS].valid(charge_point_id, token):
            return None
        reason = "this upload location is unknown or has expired"
    elif basic_credentials(authorization := request.headers.get("Authorization")) is not None:
        if await request.app[CHARGE_POINTS].password_hash(charge_point_id) is not None:
            try:  # as at its WebSocket handshake: the same password, the same back-off for wrong ones
                await request.app[CONNECTIONS].admit(charge_point_id, authorization, request.remote or "")
                return None
            except Refused as refused:
                if refused.status != 401:
                    return error(refused.status, refused.reason)
                reason, retry_after = refused.reason, refused.retry_after
    response = error(401, reason)
    response.headers["WWW-Authenticate"] = 'Basic realm="diagnostics"'
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


async def put_diagnostics(request: web.Request) -> web.Response:
    return await upload_diagnostics(request)


async def post_diagnostics(request: web.Request) -> web.Response:
    return await upload_diagnostics(request)


async def post_diagnostics_form(request: web.Request) -> web.Response:
    return await upload_diagnostics(request)


async def list_diagnostics(request: web.Request) -> web.Response:
    charge_point_id = await registered_id(request)
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
    charge_point_id = await registered_id(request)
    files = request.app[FILES]
    path = files.find(files.diagnostics_dir(charge_point_id), request.match_info["fileName"])
    if path is None:
        raise ApiError(404, "no such diagnostics file")
    return web.FileResponse(
        path,
        headers={"Content-Type": "application/octet-stream",
                 "Content-Disposition": f'attachment; filename="{path.name}"'},
    )


TOKEN_ERRORS = {**UPLOAD_ERRORS, 401: "no valid upload token in the path (unknown or expired)"}
BASIC_ERRORS = {**UPLOAD_ERRORS, 401: "no Basic auth with the charge point's id and password (or a wrong one)"}

ROUTES = [
    Route("PUT", "/diagnostics/{chargePointId}/{token}/{fileName}", put_diagnostics,
          "Upload target of one GetDiagnostics (its location, with the token): raw or multipart body",
          errors=TOKEN_ERRORS, replies={201: None}),
    Route("POST", "/diagnostics/{chargePointId}/{token}/{fileName}", post_diagnostics,
          "Upload target of one GetDiagnostics (its location, with the token): raw or multipart body",
          errors=TOKEN_ERRORS, replies={201: None}),
    Route("POST", "/diagnostics/{chargePointId}/{token}/", post_diagnostics_form,
          "Upload target of one GetDiagnostics (its location); the file name from the multipart part",
          errors=TOKEN_ERRORS, replies={201: None}),
    Route("PUT", "/diagnostics/{chargePointId}/{fileName}", put_diagnostics,
          "Diagnostics upload with the charge point's HTTP Basic auth: raw or multipart body", errors=BASIC_ERRORS,
          replies={201: None}),
    Route("POST", "/diagnostics/{chargePointId}/{fileName}", post_diagnostics,
          "Diagnostics upload with the charge point's HTTP Basic auth: raw or multipart body", errors=BASIC_ERRORS,
          replies={201: None}),
    Route("POST", "/diagnostics/{chargePointId}/", post_diagnostics_form,
          "Diagnostics upload with the charge point's HTTP Basic auth; the file name from the multipart part",
          errors=BASIC_ERRORS, replies={201: None}),
    Route("GET", "/api/chargepoints/{chargePointId}/diagnostics", list_diagnostics,
          "Diagnostics files the charge point uploaded", errors=CHARGE_POINT_ERRORS),
    Route("GET", "/api/chargepoints/{chargePointId}/diagnostics/{fileName}", download_diagnostics,
          "Download one diagnostics file", errors={**CHARGE_POINT_ERRORS, 404: "unknown charge point or file"}),
]
