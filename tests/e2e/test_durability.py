"""Persist before you answer: what a charge point was told survives a crash,
and a restart keeps all history and never hands out a transactionId twice.

Each test has its own server on its own store, since it kills or restarts it.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from tests.ocpp_client import ChargePointClient, Operator, event_field, ws_base

STREAMERS = ("DUR-KILL-A", "DUR-KILL-B", "DUR-KILL-C")
FRAMES_PER_CHARGE_POINT = 300  # most pass the snapshot mark, so the restart loads snapshots too
ANSWERS_BEFORE_KILL = 660


def stream_request(charge_point_id: str, number: int) -> tuple[str, dict[str, Any]]:
    """A mix of the charge point's messages, each one distinct."""
    kind = number % 4
    if kind == 0:
        return "Heartbeat", {}
    if kind == 1:
        return "StatusNotification", {"connectorId": number % 3, "status": "Available", "errorCode": "NoError",
                                      "info": f"{charge_point_id} {number}"}
    if kind == 2:
        return "MeterValues", {"connectorId": 1, "meterValue": [
            {"timestamp": "2025-07-01T00:00:00Z", "sampledValue": [{"value": str(number)}]}]}
    return "StartTransaction", {"connectorId": 2, "idTag": "DUR-TAG", "meterStart": number,
                                "timestamp": "2025-07-01T00:00:00Z"}


def start_request(number: int, connector_id: int = 1) -> dict[str, Any]:
    return {"connectorId": connector_id, "idTag": "DUR-TAG", "meterStart": number,
            "timestamp": f"2025-08-01T10:00:{number:02d}Z"}


async def test_every_answered_message_survives_a_crash_mid_stream(store_url, server_factory):
    server = server_factory.start(store_url)
    async with Operator(server.http) as operator:
        await operator.save_id_tag("DUR-TAG", "Accepted")
        for charge_point_id in STREAMERS:
            await operator.register(charge_point_id)
    clients = [ChargePointClient(ws_base(server), charge_point_id) for charge_point_id in STREAMERS]
    for client in clients:
        await client.connect()
    before_crash = [(await clients[0].call("StartTransaction", start_request(n)))["transactionId"] for n in range(3)]

    answered: dict[str, list[Any]] = {}
    enough = asyncio.Event()

    async def send(client: ChargePointClient, number: int) -> None:
        action, payload = stream_request(client.id, number)
        try:
            answer = await client.call_frame(action, payload, message_id=f"{client.id}-{number}")
        except ConnectionError:
            return  # never answered: it may or may not be stored, but never twice
        answered[answer[1]] = answer
        if len(answered) >= ANSWERS_BEFORE_KILL:
            enough.set()

    # Everything sent at once, without waiting: the server is mid-stream when it dies.
    stream = [asyncio.ensure_future(send(client, number))
              for number in range(FRAMES_PER_CHARGE_POINT) for client in clients]
    await enough.wait()
    server.kill()
    await asyncio.gather(*stream)
    for client in clients:
        await client.close()

    server.start()
    async with Operator(server.http) as operator:
        histories = {charge_point_id: await operator.events(charge_point_id) for charge_point_id in STREAMERS}
        statuses = [await operator.get(f"/api/chargepoints/{charge_point_id}") for charge_point_id in STREAMERS]
        async with ChargePointClient(ws_base(server), STREAMERS[0]) as cp:
            after_crash = [(await cp.call("StartTransaction", start_request(n, 3)))["transactionId"] for n in range(3)]

    assert len(answered) >= ANSWERS_BEFORE_KILL
    assert all(answer[0] == 3 for answer in answered.values())
    stored = Counter(
        event_field(event, "messageId")
        for history in histories.values() for event in history
        # A stale transaction's end is what a StartTransaction caused, not an exchange of its own.
        if event["type"] not in ("Registered", "Connected", "Disconnected", "TransactionEndedAsStale")
    )
    missing = [message_id for message_id in answered if stored[message_id] != 1]
    assert not missing, f"answered but not stored exactly once: {missing[:10]}"
    assert max(stored.values()) == 1
    # The crash left them online in the store; the restart knows better.
    assert [status["online"] for status in statuses] == [False, False, False]
    for history in histories.values():
        assert history[-1]["type"] == "Disconnected"
    started_in_stream = [answer[2]["transactionId"] for answer in answered.values() if "transactionId" in answer[2]]
    assert started_in_stream, "the stream started no transaction before the crash"
    all_ids = before_crash + started_in_stream + after_crash
    assert len(set(all_ids)) == len(all_ids)


async def test_a_clean_restart_keeps_all_history_and_never_reuses_a_transaction_id(store_url, server_factory):
    server = server_factory.start(store_url)
    ids: list[int] = []
    async with Operator(server.http) as operator:
        await operator.save_id_tag("DUR-TAG", "Accepted")
        for charge_point_id in ("DUR-RESTART-A", "DUR-RESTART-B"):
            await operator.register(charge_point_id)
        async with ChargePointClient(ws_base(server), "DUR-RESTART-A") as a, \
                ChargePointClient(ws_base(server), "DUR-RESTART-B") as b:
            await a.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "Durable"})
            for number in range(3):
                ids.append((await a.call("StartTransaction", start_request(number, 1 + number)))["transactionId"])
                ids.append((await b.call("StartTransaction", start_request(number, 1 + number)))["transactionId"])
            await b.call("StopTransaction", {"transactionId": ids[-1], "meterStop": 99,
                                             "timestamp": "2025-08-01T11:00:00Z"})
            # Enough history on A that its state is loaded from a snapshot after the restart.
            beats = [asyncio.ensure_future(a.call("Heartbeat", {})) for _ in range(220)]
            await asyncio.gather(*beats)
        before = {cp: (await operator.events(cp), await operator.get(f"/api/chargepoints/{cp}"))
                  for cp in ("DUR-RESTART-A", "DUR-RESTART-B")}

    server.restart()
    async with Operator(server.http) as operator:
        after = {cp: (await operator.events(cp), await operator.get(f"/api/chargepoints/{cp}"))
                 for cp in ("DUR-RESTART-A", "DUR-RESTART-B")}
        async with ChargePointClient(ws_base(server), "DUR-RESTART-A") as a, \
                ChargePointClient(ws_base(server), "DUR-RESTART-B") as b:
            # A retry of a StartTransaction from before the restart is still recognised.
            retried = (await a.call("StartTransaction", start_request(0, 1)))["transactionId"]
            # The tag is still charging on A, so a start elsewhere is concurrent.
            refused = await b.call("StartTransaction", start_request(9, 7))
            concurrent = refused["idTagInfo"]["status"]
            new_ids = []
            for number in range(3, 6):
                new_ids.append((await a.call("StartTransaction", start_request(number, 5)))["transactionId"])
                new_ids.append((await b.call("StartTransaction", start_request(number, 5)))["transactionId"])

    assert after == before
    assert len(after["DUR-RESTART-A"][0]) > 220
    assert after["DUR-RESTART-A"][1]["vendor"] == "Acme"
    assert sorted(after["DUR-RESTART-A"][1]["openTransactions"]) == sorted(ids[0::2])
    assert retried == ids[0]
    assert concurrent == "ConcurrentTx"
    all_ids = ids + new_ids + [refused["transactionId"]]
    assert len(set(all_ids)) == len(all_ids) == 13


async def test_a_clean_stop_closes_connected_charge_points_and_records_it(store_url, server_factory):
    server = server_factory.start(store_url)
    async with Operator(server.http) as operator:
        for charge_point_id in ("DUR-STOP-A", "DUR-STOP-B"):
            await operator.register(charge_point_id)
    clients = [ChargePointClient(ws_base(server), charge_point_id) for charge_point_id in ("DUR-STOP-A", "DUR-STOP-B")]
    for client in clients:
        await client.connect()
        await client.call("Heartbeat", {})

    # SIGTERM, waited for off the event loop so the clients can answer the server's close.
    server.process.terminate()
    exit_code = await asyncio.to_thread(server.process.wait, 30)
    for client in clients:
        await client.closed.wait()
        await client.close()

    server.start()
    async with Operator(server.http) as operator:
        histories = [await operator.events(client.id) for client in clients]
    assert exit_code == 0
    for history in histories:
        assert [e["type"] for e in history] == ["Registered", "Connected", "HeartbeatReceived", "Disconnected"]
        # Recorded by the stopping server itself, not repaired by the next start.
        assert "restarted" not in json.dumps(history[-1]["data"])


async def test_a_stop_at_a_leap_second_does_not_keep_the_server_from_restarting(store_url, server_factory):
    server = server_factory.start(store_url)
    async with Operator(server.http) as operator:
        await operator.save_id_tag("DUR-TAG", "Accepted")
        await operator.register("DUR-LEAP")
    async with ChargePointClient(ws_base(server), "DUR-LEAP") as cp:
        started = await cp.call("StartTransaction", start_request(1))
        stop = {"transactionId": started["transactionId"], "meterStop": 500, "timestamp": "2016-12-31T23:59:60Z"}
        assert await cp.call("StopTransaction", stop) == {}

    server.restart()
    async with Operator(server.http) as operator:
        types = await operator.event_types("DUR-LEAP")
    assert types[-2:] == ["TransactionStopped", "Disconnected"]
