"""Receiving a file in a request body, raw or multipart, into the file store; listing and serving them."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.helpers import parse_mimetype

from adapters.api.responses import ApiError, json_response
from adapters.service.startup import CHARGE_POINTS, CLOCK, FILES
from adapters.store import BadFileName, FileTooLarge, Received, StoredFile, safe_name
from domain.chargepoint import ChargePoint
from domain.timestamps import format_ocpp_time

CHUNK = 64 * 1024
UPLOAD_ERRORS = {
    400: "a bad charge point identity or file name, or a multipart body that is malformed or holds no file",
    404: "unknown charge point",
    413: "the file is larger than --max-file-size",
}


def checked_name(name: str) -> str:
    try:
        return safe_name(name)
    except BadFileName as bad:
        raise ApiError(400, str(bad)) from None


async def receive_upload(request: web.Request, directory: Path, name: str | None,
                         unnamed: str = "diagnostics") -> Received:
    """Streams the body to a temporary file in ``directory``, not yet in place (``FileStore.place``).

    A multipart body's first file part names it when ``name`` does not; else ``unnamed`` and the time.
    """
    files = request.app[FILES]
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
        name = f"{unnamed}-" + format_ocpp_time(request.app[CLOCK]()).replace(":", "")
    try:
        return await files.receive(directory, checked_name(name), chunks)
    except FileTooLarge as too_large:
        raise ApiError(413, str(too_large)) from None


async def _first_file_part(request: web.Request) -> BodyPartReader:
    """The first part with a file name; other form fields are skipped."""
    if not parse_mimetype(request.headers.get(hdrs.CONTENT_TYPE, "")).parameters.get("boundary"):
        raise ApiError(400, f"the Content-Type {request.content_type} needs a boundary parameter")
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if isinstance(part, BodyPartReader) and part.filename:
                return part
    except ValueError as malformed:  # aiohttp's multipart reader says what it could not find
        raise ApiError(400, f"the multipart body is malformed: {malformed}") from None
    raise ApiError(400, "the multipart body holds no file")


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    try:
        while chunk := await part.read_chunk(CHUNK):
            yield chunk
    except ValueError as malformed:
        raise ApiError(400, f"the multipart body is malformed: {malformed}") from None


async def record_upload(request: web.Request, charge_point_id: str, directory: Path, unnamed: str,
                        record: Callable[[StoredFile, datetime], Callable[[ChargePoint], None]]) -> StoredFile:
    """Receives a charge point's upload, records its receipt on the charge point (``record(stored, now)``
    says how), then puts the file in place.

    One upload of a name at a time: the file under a name is the one its last
    receipt describes, and an upload that could not be recorded leaves no file.
    """
    files = request.app[FILES]
    # The location itself may be the target: the file name then comes with the multipart part.
    received = await receive_upload(request, directory, request.match_info.get("fileName"), unnamed)
    async with files.lock(received.target):
        try:
            await request.app[CHARGE_POINTS].change(charge_point_id, record(received.stored, request.app[CLOCK]()))
        except BaseException:
            await files.discard(received)
            raise
        await files.place(received)
    return received.stored


async def list_files(request: web.Request, charge_point_id: str, directory: Path, kind: str) -> web.Response:
    """The files a charge point uploaded to ``directory``, each with its download URL under ``kind``."""
    listing = await asyncio.to_thread(request.app[FILES].listing, directory)
    return json_response({
        "chargePointId": charge_point_id,
        "files": [file_view(stored, f"/api/chargepoints/{charge_point_id}/{kind}/{stored.name}")
                  for stored in listing],
    })


def download_file(request: web.Request, directory: Path, what: str) -> web.StreamResponse:
    path = request.app[FILES].find(directory, request.match_info["fileName"])
    if path is None:
        raise ApiError(404, f"no such {what} file")
    return web.FileResponse(
        path,
        headers={"Content-Type": "application/octet-stream",
                 "Content-Disposition": f'attachment; filename="{path.name}"'},
    )


def file_view(stored: StoredFile, url: str) -> dict[str, Any]:
    return {**stored.view(), "url": url}
