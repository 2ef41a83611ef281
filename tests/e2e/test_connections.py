"""Connections: a reconnect takes over, online and offline, and the central
system's own calls running alongside the charge point's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any, AsyncIterator

import aiohttp
import pytest

from tests.ocpp_client import ChargePointClient, Operator, event_field, shared_server, ws_base
from tests.raw_websocket import Queues, RawWebSocket, text_frame

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


# ---- back-pressure: a charge point that sends faster than it is answered -----------------------------

MAILBOX_FRAMES = 64  # README OCPP-J behaviour: "Each charge point's mailbox holds up to 64 frames"
# What aiohttp 3.14 holds in memory besides the mailbox, by its own limits (aiohttp/_websocket,
# DEFAULT_CHUNK_SIZE = 256 KiB): it stops reading the socket once 512 KiB of messages wait to be
# handed over, keeping at most one read (256 KiB) unparsed; and a WebSocket writer waits for the
# socket only after 256 KiB of frames, on top of the transport's 64 KiB high-water mark.
READER_BYTES = 2 * 2**18 + 2**18
WRITER_BYTES = 2**18 + 2**16
MOST_FRAMES = 200_000  # a flood the server read to the end was held in its memory: the test fails
STALL_DEADLINE = 60.0


def flood_frame(number: int) -> bytes:
    """A CALL of an unknown action: answered (NotImplemented, ~300 bytes) without touching the store,
    so nothing but the unread replies can slow the server down. Every frame has the same size."""
    return text_frame(json.dumps([2, f"flood-{number:07d}", "Flood" + "X" * 240, {"pad": "x" * 700}]))


def written_until_the_server_stops_reading(ws: RawWebSocket) -> tuple[int, bytes, Queues]:
    """Writes frames without reading any reply until TCP stops taking them: the socket is not writable
    and neither end's queues move. Returns (bytes written, the frames made, the queues then)."""
    frames, written, last = bytearray(), 0, None
    give_up = time.monotonic() + STALL_DEADLINE
    while time.monotonic() < give_up:
        if written == len(frames):
            made = len(frames) // len(flood_frame(0))
            assert made < MOST_FRAMES, f"the server read all {made} frames without answering: none pushed back"
            frames += b"".join(flood_frame(number) for number in range(made, made + 1000))
        sent = ws.send_some(memoryview(frames)[written:])
        written += sent
        if sent == 0 and not ws.writable(timeout=0.5):
            queues = ws.queues()
            if queues == last:
                return written, bytes(frames), queues
            last = queues
    raise AssertionError(f"the flood never came to rest within {STALL_DEADLINE} s")


async def test_a_charge_point_that_sends_faster_than_it_is_answered_is_slowed_down_by_tcp(server, operator):
    await operator.register("CONN-FLOOD")
    # A small receive window: the replies it does not read back up quickly.
    ws = RawWebSocket(server.port, "/ocpp/CONN-FLOOD", receive_buffer=4096)
    try:
        frame_size = len(flood_frame(0))
        written_at_stall, frames, stalled = written_until_the_server_stops_reading(ws)
        # Now it reads, and finishes the frame it was writing when TCP pushed back.
        sent = -(-written_at_stall // frame_size)  # frames begun
        written, replies = written_at_stall, []
        give_up = time.monotonic() + STALL_DEADLINE
        while len(replies) < sent:
            assert time.monotonic() < give_up, f"{len(replies)} of {sent} frames answered"
            written += ws.send_some(memoryview(frames)[written:sent * frame_size])
            replies += ws.read_frames(timeout=1.0)
        ws.send_some(memoryview(text_frame(json.dumps([2, "after-flood", "Heartbeat", {}]))))
        after: list[str] = []
        while not after:
            assert time.monotonic() < give_up, "the Heartbeat after the flood was not answered"
            after = ws.read_frames(timeout=1.0)
    finally:
        ws.close()

    # While it did not read, the server stopped reading: bytes waited in both kernels.
    assert stalled.client_unsent > 0 and stalled.server_unread > 0, stalled
    # Frames the server had read, less those whose replies were in the kernels by then, are all it
    # held in memory: the mailbox and aiohttp's own buffers, however long the flood.
    reply_size = len(replies[0].encode()) + 4  # a server frame of 126 to 65535 bytes has a 4-byte header
    read_by_server = (written_at_stall - stalled.client_unsent - stalled.server_unread) / frame_size
    held = read_by_server - (stalled.server_unsent + stalled.client_unread) / reply_size
    # The mailbox, the frame being answered and the one waiting for room, then aiohttp's buffers.
    bound = MAILBOX_FRAMES + 2 + (READER_BYTES / frame_size + 1) + (WRITER_BYTES / reply_size + 1)
    assert held <= bound, (f"the server held {held:.0f} frames ({read_by_server:.0f} read of "
                           f"{written_at_stall / frame_size:.0f} sent), more than the {bound:.0f} its buffers allow")
    # Every frame was answered, in order, and the connection lives on.
    assert {len(reply.encode()) + 4 for reply in replies} == {reply_size}
    assert [json.loads(reply)[1:3] for reply in replies] == [
        [f"flood-{number:07d}", "NotImplemented"] for number in range(sent)
    ]
    assert [json.loads(reply)[:2] for reply in after] == [[3, "after-flood"]]
