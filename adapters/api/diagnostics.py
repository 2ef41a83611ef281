"""Diagnostics files: the upload target of GetDiagnostics (for charge points), and their download."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from aiohttp import web

from adapters.api.chargepoints import CHARGE_POINT_ERRORS
from adapters.api.parameters import registered_id
from adapters.api.responses import error, json_response
from adapters.api.routing import Route
from adapters.api.uploads import UPLOAD_ERRORS, download_file, list_files, record_upload
from adapters.service.connections import Refused
from adapters.service.passwords import basic_credentials
from adapters.service.startup import CHARGE_POINTS, CONNECTIONS, FILES, UPLOAD_TOKENS
from adapters.service.upload_tokens import DIAGNOSTICS
from adapters.store import StoredFile
from domain.chargepoint import ChargePoint


async def upload_diagnostics(request: web.Request) -> web.Response:
    charge_point_id = await registered_id(request)
    refused = await _refusal(request, charge_point_id)
    if refused is not None:
        return refused

    def record(stored: StoredFile, now: datetime) -> Callable[[ChargePoint], None]:
        return lambda cp: cp.record_diagnostics_upload(file_name=stored.name, size=stored.size,
                                                       sha256=stored.sha256 or "", received_at=now)

    directory = request.app[FILES].diagnostics_dir(charge_point_id)
    stored = await record_upload(request, charge_point_id, directory, "diagnostics", record)
    return json_response({"fileName": stored.name, "size": stored.size, "sha256": stored.sha256}, 201)


async def _refusal(request: web.Request, charge_point_id: str) -> web.Response | None:
    """None when the upload may go ahead: a valid token in its path, or the charge point's own Basic auth.

    Anything else is a 401, before a byte of the body is read.
    """
    token = request.match_info.get("token")
    reason = "an upload needs the location of a GetDiagnostics request, or the charge point's Basic auth"
    retry_after = None
    if token is not None:
        if await request.app[UPLOAD_TOKENS].valid(charge_point_id, token, DIAGNOSTICS):
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
    return unauthorized(reason, "diagnostics", retry_after)


def unauthorized(reason: str, realm: str, retry_after: int | None = None) -> web.Response:
    response = error(401, reason)
    response.headers["WWW-Authenticate"] = f'Basic realm="{realm}"'
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
    return await list_files(request, charge_point_id, request.app[FILES].diagnostics_dir(charge_point_id),
                            "diagnostics")


async def download_diagnostics(request: web.Request) -> web.StreamResponse:
    charge_point_id = await registered_id(request)
    return download_file(request, request.app[FILES].diagnostics_dir(charge_point_id), "diagnostics")


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
