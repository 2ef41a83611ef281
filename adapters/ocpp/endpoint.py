"""The OCPP-J WebSocket endpoint: ws://HOST:PORT/ocpp/{chargePointId}."""

from __future__ import annotations

import logging
from typing import AsyncIterator

from aiohttp import WSMsgType, web

from adapters.ocpp.actor import ChargePointActor
from adapters.ocpp.schemas import Schemas
from adapters.security.peer_certificates import transport_of
from adapters.service.connections import Refused
from adapters.service.startup import CHARGE_POINTS, CLOCK, CONNECTIONS, FACTS, SETTINGS

log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"
SCHEMAS = web.AppKey("schemas", Schemas)


def offered_subprotocols(request: web.Request) -> list[str]:
    header = request.headers.get("Sec-WebSocket-Protocol", "")
    return [name.strip() for name in header.split(",") if name.strip()]


async def ocpp_endpoint(request: web.Request) -> web.StreamResponse:
    app = request.app
    connections = app[CONNECTIONS]
    charge_point_id = request.match_info["chargePointId"]
    if SUBPROTOCOL not in offered_subprotocols(request):
        # OCPP-J 1.6 section 3.1.2: without an agreed subprotocol we may not talk.
        return web.Response(status=400, text=f"offer the WebSocket subprotocol {SUBPROTOCOL}\n")
    try:
        transport = transport_of(request.transport.get_extra_info("ssl_object") if request.transport else None)
        await connections.admit(charge_point_id, request.headers.get("Authorization"), request.remote or "",
                                transport)
    except Refused as refused:
        log.info("refused %s: %s", charge_point_id, refused.reason)
        headers = {"WWW-Authenticate": 'Basic realm="OCPP"'} if refused.status == 401 else {}
        if refused.retry_after is not None:
            headers["Retry-After"] = str(refused.retry_after)
        return web.Response(status=refused.status, text=refused.reason + "\n", headers=headers)

    settings = app[SETTINGS]
    ws = web.WebSocketResponse(
        protocols=(SUBPROTOCOL,),
        heartbeat=settings.ping_interval,  # pings find dead peers; aiohttp closes them
        max_msg_size=settings.max_frame_size,
        # We answer a close ourselves, after the disconnection is recorded, so a
        # charge point whose close completed knows its history is complete.
        autoclose=False,
    )
    await ws.prepare(request)

    async def send(frame: bytes) -> None:
        if ws.closed:
            raise ConnectionResetError(f"{charge_point_id} is no longer connected")
        await ws.send_frame(frame, WSMsgType.TEXT)

    actor = ChargePointActor(
        charge_point_id, send, ws.close, charge_points=app[CHARGE_POINTS], facts=app[FACTS], schemas=app[SCHEMAS],
        call_timeout=settings.call_timeout, clock=app[CLOCK],
    )
    try:
        await connections.connect(actor, request.remote or "")
    except Exception:
        log.exception("could not record the connection of %s; closing it", charge_point_id)
        await ws.close(code=1011, message=b"central system unavailable, try again")
        return ws
    reason = "connection closed"
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await actor.receive(message.data)  # waits while its mailbox is full
            elif message.type == WSMsgType.BINARY:
                log.warning("%s: dropped a binary frame; OCPP-J uses text", charge_point_id)
            elif message.type == WSMsgType.CLOSE:
                reason = f"closed by the charge point (code {message.data})"
                break
            elif message.type == WSMsgType.ERROR:
                reason = f"connection error: {ws.exception()}"
                break
    finally:
        await connections.disconnect(actor, reason)
        await ws.close()
    return ws


async def close_connections(app: web.Application) -> None:
    """Closes every charge point's socket when the server stops.

    aiohttp waits up to its shutdown timeout (60 s) for running handlers before
    the cleanup contexts run, and an open WebSocket never ends by itself; closed
    here, each handler records its disconnection and ends at once.
    """
    connections = app.get(CONNECTIONS)
    if connections is not None:
        await connections.close_sockets()


async def compiled_schemas(app: web.Application) -> AsyncIterator[None]:
    schemas = app[SCHEMAS] = Schemas()
    schemas.warm()  # every schema compiled now rather than on a charge point's first call
    yield


def add_endpoint(app: web.Application) -> None:
    app.cleanup_ctx.append(compiled_schemas)
    app.router.add_get("/ocpp/{chargePointId}", ocpp_endpoint)
    app.on_shutdown.append(close_connections)
