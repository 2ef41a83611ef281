"""Connections: a reconnect takes over, online and offline, and the central
system's own calls running alongside the charge point's.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any, AsyncIterator

import aiohttp
import pytest

from tests.ocpp_client import ChargePointClient, Operator, event_field, shared_server, ws_base

server = shared_server()


@pytest.fixture
async def operator(server: Any) -> AsyncIterator[Operator]:
    async with Operator(server.http) as operator:
        yield operator


async def test_a_second_connection_takes_over_and_the_old_socket_is_closed(server, operator):
    await operator.register("CONN-TAKEOVER")
    async with ChargePointClient(ws_base(server), "CONN-TAKEOVER") as old:
        await old.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "Old"})
        async with ChargePointClient(ws_base(server), "CONN-TAKEOVER") as new:
            await old.closed.wait()
            await new.call("Heartbeat", {})
            with pytest.raises(ConnectionError):
                await old.call("Heartbeat", {})
            status = await operator.get("/api/chargepoints/CONN-TAKEOVER")

    assert status["online"] is True
    assert await operator.event_types("CONN-TAKEOVER") == [
        "Registered", "Connected", "Booted", "Disconnected", "Connected", "HeartbeatReceived", "Disconnected",
    ]


async def test_a_refused_connection_does_not_take_over(server, operator):
    await operator.register("CONN-KEEP", password="Right-Password-1")
    async with ChargePointClient(ws_base(server), "CONN-KEEP", password="Right-Password-1") as cp:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await ChargePointClient(ws_base(server), "CONN-KEEP", password="Wrong-Password-1").connect()
        await cp.call("Heartbeat", {})
        assert not cp.closed.is_set()

    assert refused.value.status == 401
    assert await operator.event_types("CONN-KEEP") == [
        "Registered", "CredentialsChanged", "Connected", "HeartbeatReceived", "Disconnected",
    ]


async def test_online_and_offline_are_shown_in_the_status(server, operator):
    await operator.register("CONN-ONLINE")
    assert (await operator.get("/api/chargepoints/CONN-ONLINE"))["online"] is False
    async with ChargePointClient(ws_base(server), "CONN-ONLINE") as cp:
        await cp.call("Heartbeat", {})
        online = await operator.get("/api/chargepoints/CONN-ONLINE")
        listed = {c["id"]: c for c in (await operator.get("/api/chargepoints"))["chargePoints"]}
    offline = await operator.get("/api/chargepoints/CONN-ONLINE")
    listed_later = {c["id"]: c for c in (await operator.get("/api/chargepoints"))["chargePoints"]}

    assert online["online"] is True and listed["CONN-ONLINE"]["online"] is True
    assert offline["online"] is False and listed_later["CONN-ONLINE"]["online"] is False
    assert online["lastSeen"] is not None


async def test_the_charge_points_calls_are_answered_while_a_central_system_call_is_outstanding(server, operator):
    await operator.register("CONN-BOTH")
    async with ChargePointClient(ws_base(server), "CONN-BOTH") as cp:
        request = {"key": ["HeartbeatInterval"]}
        command = asyncio.ensure_future(operator.command("CONN-BOTH", "GetConfiguration", request))
        call = await cp.next_call()
        assert call[2:] == ["GetConfiguration", request]
        # The charge point talks before it answers; it is served meanwhile.
        beat = await cp.call("Heartbeat", {}, message_id="both-beat")
        status = await cp.call(
            "StatusNotification", {"connectorId": 1, "status": "Available", "errorCode": "NoError"},
            message_id="both-status",
        )
        assert not command.done()
        configuration = {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]}
        await cp.reply(call, configuration)
        http_status, body = await command

    assert "currentTime" in beat and status == {}
    assert (http_status, body) == (200, configuration)
    events = await operator.events("CONN-BOTH")
    assert [e["type"] for e in events] == [
        "Registered", "Connected", "CallSent", "HeartbeatReceived", "ConnectorStatusChanged", "CallAnswered",
        "Disconnected",
    ]
    sent, answered = events[2], events[5]
    assert event_field(sent, "messageId") == event_field(answered, "messageId") == call[1]
    assert event_field(answered, "reply") == configuration


async def test_a_central_system_call_answered_with_a_call_error_is_a_502_and_recorded(server, operator):
    await operator.register("CONN-REFUSE")
    async with ChargePointClient(ws_base(server), "CONN-REFUSE") as cp:
        command = asyncio.ensure_future(operator.command("CONN-REFUSE", "Reset", {"type": "Soft"}))
        call = await cp.next_call()
        await cp.reply_error(call, "NotSupported", "no resets here")
        http_status, body = await command
        # The call is over: the next command goes out and is answered.
        command = asyncio.ensure_future(operator.command("CONN-REFUSE", "ClearCache", {}))
        call = await cp.next_call()
        await cp.reply(call, {"status": "Accepted"})
        assert await command == (200, {"status": "Accepted"})

    assert http_status == 502 and body["errorCode"] == "NotSupported"
    types = await operator.event_types("CONN-REFUSE")
    assert types == ["Registered", "Connected", "CallSent", "CallFailed", "CallSent", "CallAnswered", "Disconnected"]


async def test_a_command_to_a_charge_point_that_is_not_connected_is_a_409(server, operator):
    await operator.register("CONN-AWAY")
    status, _ = await operator.command("CONN-AWAY", "ClearCache", {})

    assert status == 409
    assert await operator.event_types("CONN-AWAY") == ["Registered"]


async def test_a_charge_point_that_leaves_during_a_central_system_call_fails_it_with_409(server, operator):
    await operator.register("CONN-LEAVE")
    async with ChargePointClient(ws_base(server), "CONN-LEAVE") as cp:
        command = asyncio.ensure_future(operator.command("CONN-LEAVE", "Reset", {"type": "Hard"}))
        call = await cp.next_call()
    http_status, _ = await asyncio.wait_for(command, 10)

    assert http_status == 409
    events = await operator.events("CONN-LEAVE")
    assert [e["type"] for e in events[:3]] == ["Registered", "Connected", "CallSent"]
    assert sorted(e["type"] for e in events[3:]) == ["CallFailed", "Disconnected"]
    failed = next(e for e in events if e["type"] == "CallFailed")
    assert event_field(failed, "messageId") == call[1]


async def test_a_peer_that_stops_answering_pings_is_closed_and_recorded_offline(store_url, server_factory):
    pinging = server_factory.start(store_url, "--ping-interval", "0.5")
    async with Operator(pinging.http) as operator:
        await operator.register("CONN-DEAD")
        async with aiohttp.ClientSession() as session:
            # autoping=False: this client never answers a ping, like a peer gone dark.
            async with session.ws_connect(f"{ws_base(pinging)}/ocpp/CONN-DEAD", protocols=("ocpp1.6",),
                                          autoping=False) as ws:
                seen = []
                async for message in ws:  # ends when the server gives up on us
                    seen.append(message.type)
        assert aiohttp.WSMsgType.PING in seen
        # The server records the disconnection once its handler ends; wait for
        # that outcome (bounded), not for a guessed time.
        deadline = asyncio.get_running_loop().time() + 15
        while (await operator.get("/api/chargepoints/CONN-DEAD"))["online"]:
            assert asyncio.get_running_loop().time() < deadline, "never recorded offline"
            await asyncio.sleep(0.05)
        assert (await operator.event_types("CONN-DEAD"))[-2:] == ["Connected", "Disconnected"]


async def test_two_simultaneous_reconnects_leave_one_connection(server, operator):
    await operator.register("CONN-RACE")
    first = ChargePointClient(ws_base(server), "CONN-RACE")
    await first.connect()
    second, third = ChargePointClient(ws_base(server), "CONN-RACE"), ChargePointClient(ws_base(server), "CONN-RACE")
    await asyncio.gather(second.connect(), third.connect())  # when both take over at once

    await asyncio.wait_for(first.closed.wait(), 20)
    # Exactly one of the two survives: the other was taken over in turn.
    _, waiting = await asyncio.wait([asyncio.ensure_future(second.closed.wait()),
                                     asyncio.ensure_future(third.closed.wait())],
                                    timeout=20, return_when=asyncio.FIRST_COMPLETED)
    for task in waiting:
        task.cancel()
    survivor = third if second.closed.is_set() else second
    assert not survivor.closed.is_set()
    assert (await survivor.call("Heartbeat", {}))["currentTime"]
    for client in (first, second, third):
        await client.close()
    types = [t for t in await operator.event_types("CONN-RACE") if t in ("Connected", "Disconnected")]
    assert types == ["Connected", "Disconnected"] * 3  # never two connections at once


async def test_a_flood_of_wrong_passwords_makes_that_charge_point_wait_and_spares_the_others(store_url, server_factory):
    flooded = server_factory.start(store_url)  # a server of its own: its back-off state is this test's alone
    async with Operator(flooded.http) as operator:
        await operator.register("CONN-GUESSED", password="Right-Password-1")
        await operator.register("CONN-OTHER", password="Other-Password-1")
        await operator.register("CONN-OPEN")

        async def guess() -> int:
            try:
                await ChargePointClient(ws_base(flooded), "CONN-GUESSED", password="Wrong-Password-1").connect()
            except aiohttp.WSServerHandshakeError as refused:
                return refused.status
            return 101

        guesses = await asyncio.gather(*(guess() for _ in range(10)))  # given ten wrong guesses at once
        async with aiohttp.ClientSession() as session:  # when the right password comes next
            async with session.get(
                f"{flooded.http}/ocpp/CONN-GUESSED",
                headers={"Sec-WebSocket-Protocol": "ocpp1.6", "Connection": "Upgrade", "Upgrade": "websocket",
                         "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                         "Authorization": "Basic " + base64.b64encode(b"CONN-GUESSED:Right-Password-1").decode()},
            ) as waiting:
                retry_after = waiting.headers.get("Retry-After")
                status = waiting.status
        async with ChargePointClient(ws_base(flooded), "CONN-OPEN") as open_cp:  # then the others get in
            await open_cp.call("Heartbeat", {})
        async with ChargePointClient(ws_base(flooded), "CONN-OTHER", password="Other-Password-1") as other:
            await other.call("Heartbeat", {})

    assert guesses == [401] * 10
    assert status == 401 and retry_after is not None and 1 <= int(retry_after) <= 60
