"""The server driven by a second client stack: `websockets` for OCPP, the standard library for HTTP.

The other end-to-end tests use aiohttp's client against aiohttp's server; a
bug the two share (a header, a handshake, a frame) would pass them all. Here
no HTTP or WebSocket code is shared with the server.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.ocpp_client import API_TOKEN, shared_server

server = shared_server()  # --call-timeout 2, one per store kind for this module

BOOT = {"chargePointVendor": "Acme", "chargePointModel": "Wallbox 2"}


def rest(server: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One REST request over http.client: (status, parsed JSON body)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
        connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = connection.getresponse()
        text = response.read().decode()
        return response.status, json.loads(text) if text else None
    finally:
        connection.close()


async def rest_async(server: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return await asyncio.to_thread(rest, server, method, path, body)


async def register(server: Any, charge_point_id: str, **body: Any) -> None:
    status, reply = await rest_async(server, "PUT", f"/api/chargepoints/{charge_point_id}", body)
    assert status == 201, (status, reply)


def url(server: Any, charge_point_id: str) -> str:
    return f"ws://127.0.0.1:{server.port}/ocpp/{charge_point_id}"


async def call(ws: ClientConnection, message_id: str, action: str, payload: dict[str, Any]) -> list[Any]:
    await ws.send(json.dumps([2, message_id, action, payload]))
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def test_a_charge_points_day_over_websockets_and_its_bill_over_http_client(server):
    await register(server, "SECOND-DAY")
    status, _ = await rest_async(server, "PUT", "/api/idtags/SECOND-TAG", {"status": "Accepted"})
    assert status == 201

    async with connect(url(server, "SECOND-DAY"), subprotocols=["ocpp1.6"]) as ws:
        subprotocol = ws.subprotocol
        booted = await call(ws, "b1", "BootNotification", BOOT)
        beat = await call(ws, "h1", "Heartbeat", {})
        started = await call(ws, "s1", "StartTransaction", {
            "connectorId": 1, "idTag": "SECOND-TAG", "meterStart": 1000, "timestamp": "2030-01-01T10:00:00Z"})
        transaction_id = started[2]["transactionId"]
        stopped = await call(ws, "s2", "StopTransaction", {
            "transactionId": transaction_id, "meterStop": 5500, "timestamp": "2030-01-01T11:00:00Z"})

    assert subprotocol == "ocpp1.6"
    assert booted[:2] == [3, "b1"] and booted[2]["status"] == "Accepted" and booted[2]["interval"] == 300
    assert beat[:2] == [3, "h1"] and beat[2]["currentTime"].endswith("Z")
    assert started[2]["idTagInfo"]["status"] == "Accepted"
    assert stopped == [3, "s2", {}]
    status, billed = await rest_async(server, "GET", f"/api/transactions/{transaction_id}")
    assert status == 200
    assert (billed["chargePointId"], billed["energyWh"], billed["status"]) == ("SECOND-DAY", 4500, "completed")


@pytest.mark.parametrize("case, status", [
    ("unknown charge point", 404),
    ("no ocpp1.6 subprotocol", 400),
    ("wrong password", 401),
])
async def test_a_refused_handshake_gets_its_status(server, case, status):
    charge_point_id = f"SECOND-NO-{status}"
    if case != "unknown charge point":
        await register(server, charge_point_id, password="a-password-of-16+chars")
    subprotocols = [] if case == "no ocpp1.6 subprotocol" else ["ocpp1.6"]
    credentials = base64.b64encode(f"{charge_point_id}:not-the-password-at-all".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}"}

    with pytest.raises(InvalidStatus) as refused:
        async with connect(url(server, charge_point_id), subprotocols=subprotocols,
                           additional_headers=headers):
            pass

    assert refused.value.response.status_code == status


async def test_a_bad_frame_gets_its_callerror_and_the_connection_lives_on(server):
    await register(server, "SECOND-BAD")
    async with connect(url(server, "SECOND-BAD"), subprotocols=["ocpp1.6"]) as ws:
        wrong_type = await call(ws, "x1", "StatusNotification", {"connectorId": "1", "errorCode": "NoError",
                                                                 "status": "Available"})
        unknown = await call(ws, "x2", "MakeCoffee", {})
        beat = await call(ws, "x3", "Heartbeat", {})

    assert wrong_type[:3] == [4, "x1", "TypeConstraintViolation"]
    assert unknown[:3] == [4, "x2", "NotImplemented"]
    assert beat[:2] == [3, "x3"]


async def test_an_operators_command_over_http_client_reaches_the_websockets_charge_point(server):
    await register(server, "SECOND-CMD")
    async with connect(url(server, "SECOND-CMD"), subprotocols=["ocpp1.6"]) as ws:
        command = asyncio.ensure_future(
            rest_async(server, "POST", "/api/chargepoints/SECOND-CMD/commands/Reset", {"type": "Soft"}))
        sent = json.loads(await asyncio.wait_for(ws.recv(), 10))
        await ws.send(json.dumps([3, sent[1], {"status": "Accepted"}]))
        status, reply = await command

    assert sent[0] == 2 and sent[2:] == ["Reset", {"type": "Soft"}]
    assert (status, reply) == (200, {"status": "Accepted"})
