"""Logs a charge point uploads for a GetLog (for charge points, with the location's token), and their download."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from aiohttp import web

from adapters.api.chargepoints import CHARGE_POINT_ERRORS
from adapters.api.diagnostics import unauthorized
from adapters.api.parameters import registered_id
from adapters.api.responses import json_response
from adapters.api.routing import Route
from adapters.api.uploads import UPLOAD_ERRORS, download_file, list_files, record_upload
from adapters.service.startup import FILES, UPLOAD_TOKENS
from adapters.service.upload_tokens import LOGS
from adapters.store import StoredFile
from domain import logs
from domain.chargepoint import ChargePoint


async def upload_log(request: web.Request) -> web.Response:
    """Only with the token of a GetLog location: refused with 401 before a byte of the body is read."""
    charge_point_id = await registered_id(request)
    grant = await request.app[UPLOAD_TOKENS].grant(charge_point_id, request.match_info["token"], LOGS)
    if grant is None:
        return unauthorized("this upload location is unknown or has expired; a log upload needs the location "
                            "of a GetLog request", "logs")
    request_id, log_type = grant.detail.get("requestId"), grant.detail.get("logType")

    def record(stored: StoredFile, now: datetime) -> Callable[[ChargePoint], None]:
        return lambda cp: logs.record_log_upload(cp, stored.name, stored.size, stored.sha256 or "", request_id,
                                                 log_type, now)

    directory = request.app[FILES].logs_dir(charge_point_id)
    stored = await record_upload(request, charge_point_id, directory, "log", record)
    return json_response({"fileName": stored.name, "size": stored.size, "sha256": stored.sha256,
                          "requestId": request_id, "logType": log_type}, 201)


async def put_log(request: web.Request) -> web.Response:
    return await upload_log(request)


async def post_log(request: web.Request) -> web.Response:
    return await upload_log(request)


async def post_log_form(request: web.Request) -> web.Response:
    return await upload_log(request)


async def list_logs(request: web.Request) -> web.Response:
    charge_point_id = await registered_id(request)
    return await list_files(request, charge_point_id, request.app[FILES].logs_dir(charge_point_id), "logs")


async def download_log(request: web.Request) -> web.StreamResponse:
    charge_point_id = await registered_id(request)
    return download_file(request, request.app[FILES].logs_dir(charge_point_id), "log")


TOKEN_ERRORS = {**UPLOAD_ERRORS, 401: "no valid GetLog upload token in the path (unknown, expired or another kind)"}

ROUTES = [
    Route("PUT", "/logs/{chargePointId}/{token}/{fileName}", put_log,
          "Upload target of one GetLog (its remoteLocation, with the token): raw or multipart body",
          errors=TOKEN_ERRORS, replies={201: None}),
    Route("POST", "/logs/{chargePointId}/{token}/{fileName}", post_log,
          "Upload target of one GetLog (its remoteLocation, with the token): raw or multipart body",
          errors=TOKEN_ERRORS, replies={201: None}),
    Route("POST", "/logs/{chargePointId}/{token}/", post_log_form,
          "Upload target of one GetLog (its remoteLocation); the file name from the multipart part",
          errors=TOKEN_ERRORS, replies={201: None}),
    Route("GET", "/api/chargepoints/{chargePointId}/logs", list_logs,
          "Log files the charge point uploaded for GetLog requests", errors=CHARGE_POINT_ERRORS),
    Route("GET", "/api/chargepoints/{chargePointId}/logs/{fileName}", download_log,
          "Download one log file", errors={**CHARGE_POINT_ERRORS, 404: "unknown charge point or file"}),
]
