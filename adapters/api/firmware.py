"""Firmware images: stored by operators, downloaded by charge points, and the rollout's state."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from adapters.api.freshness import fresh_read_models
from adapters.api.responses import ApiError, json_response
from adapters.api.routing import Route
from adapters.api.uploads import checked_name, file_view, receive_upload
from adapters.service.firmware_rollout import rollout
from adapters.service.startup import CHARGE_POINTS, FILES, SETTINGS, SIGNED_IMAGES
from adapters.store import StoredFile
from projections import status


def _download_url(request: web.Request, stored: StoredFile) -> str:
    # The configured public URL, never the request's Host header: an operator's
    # client (or whoever sits between) must not choose where charge points download from.
    return f"{request.app[SETTINGS].public_url}/firmware/{stored.name}"


def _image_view(request: web.Request, stored: StoredFile, signature: dict[str, Any] | None) -> dict[str, Any]:
    view = file_view(stored, _download_url(request, stored))
    view["signature"] = None if signature is None else {
        "algorithm": signature["algorithm"], "signature": signature["signature"],
        "signingCertificate": signature["signingCertificate"]}
    return view


async def put_firmware(request: web.Request) -> web.Response:
    files = request.app[FILES]
    name = checked_name(request.match_info["name"])
    existed = files.find(files.firmware_dir(), name) is not None
    received = await receive_upload(request, files.firmware_dir(), name)
    # Signed once, here, when a signing key is configured (adapters/service/signed_images.py).
    signature = await request.app[SIGNED_IMAGES].store(received)
    return json_response(_image_view(request, received.stored, signature), 200 if existed else 201)


async def list_firmware(request: web.Request) -> web.Response:
    files, images = request.app[FILES], request.app[SIGNED_IMAGES]
    listing = await asyncio.to_thread(files.listing, files.firmware_dir())
    return json_response({"firmware": [_image_view(request, stored, await images.signature(stored.name))
                                       for stored in listing]})


async def delete_firmware(request: web.Request) -> web.Response:
    files = request.app[FILES]
    name = request.match_info["name"]
    async with files.lock(files.firmware_dir() / checked_name(name)):
        if not await asyncio.to_thread(files.delete, files.firmware_dir(), name):
            raise ApiError(404, "no such firmware image")
        await request.app[SIGNED_IMAGES].forget(name)
    return web.Response(status=204)


async def download_firmware(request: web.Request) -> web.StreamResponse:
    files = request.app[FILES]
    path = files.find(files.firmware_dir(), request.match_info["name"])
    if path is None:
        raise ApiError(404, "no such firmware image")
    return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})


async def firmware_rollout(request: web.Request) -> web.Response:
    # Every node's charge points: the status read model lists them all, while this node's
    # memory knows only those registered here or before it started.
    read_models = await fresh_read_models(request)
    registered = await asyncio.to_thread(status.charge_points_online, read_models)
    return json_response(await rollout(request.app[CHARGE_POINTS], sorted(registered)))


ROUTES = [
    Route("GET", "/api/firmware", list_firmware, "Firmware images stored for charge points"),
    Route("GET", "/api/firmware/rollout", firmware_rollout,
          "Per charge point: firmware version, the last UpdateFirmware and SignedUpdateFirmware and how they went"),
    Route("PUT", "/api/firmware/{name}", put_firmware,
          "Store a firmware image (the raw body); signed as it is stored when a signing key is configured",
          errors={400: "a bad file name", 413: "the image is larger than --max-file-size"},
          replies={200: None, 201: None}),
    Route("DELETE", "/api/firmware/{name}", delete_firmware, "Delete a firmware image",
          errors={404: "no such image"}, replies={204: None}),
    Route("GET", "/firmware/{name}", download_firmware, "A firmware image, for charge points (no token)",
          errors={404: "no such image"}),
]
