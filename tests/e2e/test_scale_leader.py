"""Several nodes on one PostgreSQL database: the read models are built by one node, timers run once.

Real `csms serve` nodes on a fresh database each (the fixtures of
test_scale_out.py): exactly one leads the read models; both answer reads
alike, each one's own writes at once; the leader killed with SIGKILL, the
other leads within seconds and catches up with nothing counted twice; and a
reservation expires on the node its charge point is connected to, only.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e import test_scale_out as scale_out
from tests.e2e.test_scale_out import eventually, nodes_of
from tests.ocpp_client import ChargePointClient, Operator, ws_base

# Each test's own PostgreSQL database, and its nodes on it (leases of 3 s).
postgres_url, start_node = scale_out.postgres_url, scale_out.start_node


async def metric(node: Any, name: str) -> int | None:
    """This node's value of a /metrics line, or None when it does not answer."""
    try:
        async with Operator(node.http) as operator:
            assert operator.session is not None
            async with operator.session.get(f"{node.http}/metrics") as response:
                text = await response.text()
    except OSError:
        return None
    found = re.search(rf'^{name}{{node="[^"]*"}} (\d+)$', text, re.MULTILINE)
    assert found is not None, text
    return int(found.group(1))


async def leaders(*nodes: Any) -> list[str]:
    """The leaders as every node's /metrics and /api/nodes tell; [] while they disagree (a takeover)."""
    named = []
    for node in nodes:
        async with Operator(node.http) as operator:
            listing = await operator.get("/api/nodes")
        leading = await metric(node, "csms_read_model_leader")
        if leading != int(listing["projectionsLeader"]):
            return []
        assert listing["nodes"] and {entry["name"] for entry in listing["nodes"]} >= {listing["thisNode"]}
        named.append(sorted(entry["name"] for entry in listing["nodes"] if entry["projectionsLeader"]))
    return named[0] if all(each == named[0] for each in named) else []


async def one_leader(*nodes: Any) -> str | None:
    named = await leaders(*nodes)
    return named[0] if len(named) == 1 else None


async def charge(cp: ChargePointClient, start: datetime, meter_start: int, meter_stop: int) -> int:
    started = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "LEAD-TAG", "meterStart": meter_start,
                                                 "timestamp": start.isoformat()})
    transaction_id = int(started["transactionId"])
    await cp.call("StopTransaction", {"transactionId": transaction_id, "meterStop": meter_stop,
                                      "timestamp": (start + timedelta(minutes=30)).isoformat()})
    return transaction_id


async def read_models_of(node: Any, charge_point_ids: list[str]) -> dict[str, Any]:
    async with Operator(node.http) as operator:
        transactions = (await operator.get("/api/transactions?limit=1000"))["transactions"]
        daily = (await operator.get("/api/analytics/daily"))
        states = {cp: await operator.get(f"/api/chargepoints/{cp}") for cp in charge_point_ids}
    mine = sorted((t for t in transactions if t["chargePointId"] in charge_point_ids),
                  key=lambda t: t["transactionId"])
    return {"transactions": mine, "daily": daily, "states": states}


async def test_one_node_leads_the_read_models_and_both_answer_alike_with_their_own_writes_at_once(start_node):
    a, b = start_node("node-a"), start_node("node-b")
    leader = await eventually(lambda: one_leader(a, b), "one leader, as both nodes tell")
    follower = b if leader == "node-a" else a
    assert await metric(follower, "csms_read_model_leader") == 0
    start = datetime(2031, 1, 2, 10, tzinfo=UTC)
    async with Operator(a.http) as operator:
        await operator.save_id_tag("LEAD-TAG")
        for charge_point_id in ("LEAD-A", "LEAD-B"):
            await operator.register(charge_point_id)
    async with ChargePointClient(ws_base(a), "LEAD-A") as on_a, ChargePointClient(ws_base(b), "LEAD-B") as on_b:
        for round_ in range(3):
            for cp in (on_a, on_b):
                transaction_id = await charge(cp, start + timedelta(hours=round_), 1000 * round_, 1000 * round_ + 500)
                node = a if cp is on_a else b
                # Read your own writes, on the leader and on the follower alike.
                async with Operator(node.http) as operator:
                    bill = await operator.get(f"/api/transactions/{transaction_id}")
                assert (bill["chargePointId"], bill["energyWh"]) == (cp.id, 500)
    seen_by_a = await read_models_of(a, ["LEAD-A", "LEAD-B"])
    assert seen_by_a == await read_models_of(b, ["LEAD-A", "LEAD-B"])
    assert [t["chargePointId"] for t in seen_by_a["transactions"]].count("LEAD-B") == 3
    assert await one_leader(a, b) == leader


async def test_when_the_leader_is_killed_the_other_leads_within_seconds_and_counts_nothing_twice(start_node):
    a, b = start_node("node-a"), start_node("node-b")
    leader = await eventually(lambda: one_leader(a, b), "one leader")
    dead, survivor = (a, b) if leader == "node-a" else (b, a)
    start = datetime(2031, 2, 3, 10, tzinfo=UTC)
    async with Operator(survivor.http) as operator:
        await operator.save_id_tag("LEAD-TAG")
        for charge_point_id in ("LEAD-KILL-1", "LEAD-KILL-2"):
            await operator.register(charge_point_id)
    async with ChargePointClient(ws_base(dead), "LEAD-KILL-1") as first:
        await charge(first, start, 0, 700)
    async with ChargePointClient(ws_base(survivor), "LEAD-KILL-2") as second:
        await charge(second, start, 0, 300)
        dead.kill()
        # Written while nobody leads: the new leader applies them.
        for round_ in range(1, 4):
            await charge(second, start + timedelta(hours=round_), 1000 * round_, 1000 * round_ + 300)
        new_leader = await eventually(lambda: one_leader(survivor), "the survivor leads")
        assert new_leader == ("node-b" if dead is a else "node-a")
    async with Operator(survivor.http) as operator:
        await eventually(lambda: _no_lag(survivor), "the new leader caught up")
        transactions = (await operator.get("/api/transactions?limit=1000"))["transactions"]
        daily = (await operator.get("/api/analytics/daily"))
        histories = {cp: await operator.events(cp) for cp in ("LEAD-KILL-1", "LEAD-KILL-2")}
    mine = [t for t in transactions if t["chargePointId"].startswith("LEAD-KILL")]
    assert sorted((t["chargePointId"], t["energyWh"]) for t in mine) == [
        ("LEAD-KILL-1", 700), *[("LEAD-KILL-2", 300)] * 4]
    # Each session and each Wh counted once: the daily aggregate as the events tell.
    stops = {cp: sum(1 for e in events if e["type"] == "TransactionStopped") for cp, events in histories.items()}
    assert stops == {"LEAD-KILL-1": 1, "LEAD-KILL-2": 4}
    for charge_point_id, (sessions, energy) in {"LEAD-KILL-1": (1, 700), "LEAD-KILL-2": (4, 1200)}.items():
        rows = [row for row in daily["days"] if row["chargePointId"] == charge_point_id]
        assert (sum(row["sessions"] for row in rows), sum(row["energyWh"] for row in rows)) == (sessions, energy)


async def _no_lag(node: Any) -> bool:
    return await metric(node, "csms_read_model_lag") == 0


async def test_a_reservation_on_a_charge_point_connected_to_the_follower_expires_there_once(start_node):
    a, b = start_node("node-a"), start_node("node-b")
    leader_name = await eventually(lambda: one_leader(a, b), "one leader")
    leader, follower = (a, b) if leader_name == "node-a" else (b, a)
    async with Operator(leader.http) as operator:
        await operator.register("LEAD-RES")
        async with ChargePointClient(ws_base(follower), "LEAD-RES") as cp:
            await cp.call("Heartbeat", {})
            await eventually(lambda: _held(leader, follower, "LEAD-RES"), "the leader sees the follower hold it")
            expiry = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
            # Asked of the leader, forwarded to the follower, which records it.
            answering = asyncio.ensure_future(_answer(cp, {"status": "Accepted"}))
            reply = await operator.request("POST", "/api/chargepoints/LEAD-RES/reservations",
                                           {"connectorId": 1, "idTag": "LEAD-TAG", "expiryDate": expiry})
            await answering
            assert reply[0] in (200, 201), reply

            async def expired() -> bool:
                listed = (await operator.get("/api/reservations?chargePointId=LEAD-RES"))["reservations"]
                return [r["status"] for r in listed] == ["Expired"]

            await eventually(expired, "the reservation expired")
            types = await operator.event_types("LEAD-RES")
            assert types.count("ReservationExpired") == 1
            # Run by the node the charge point is connected to; the leader, which saw the reservation too,
            # left it alone (and stops looking once the read model shows it closed).
            assert await metric(follower, "csms_reservation_expiry_runs_total") >= 1
            await eventually(lambda: _checked(leader), "the leader's timer fired too")
            assert await metric(leader, "csms_reservation_expiry_runs_total") == 0
            assert (await operator.event_types("LEAD-RES")).count("ReservationExpired") == 1


async def _checked(node: Any) -> bool:
    return (await metric(node, "csms_reservation_expiry_checks_total") or 0) >= 1


async def _held(asked: Any, holder: Any, charge_point_id: str) -> bool:
    listing = await nodes_of(asked)
    return any(charge_point_id in entry["chargePointIds"] for entry in listing.values())


async def _answer(cp: ChargePointClient, reply: dict[str, Any]) -> list[Any]:
    call = await cp.next_call()
    await cp.reply(call, reply)
    return call


async def test_a_reservation_whose_charge_point_left_expires_on_the_leader_once(start_node):
    a, b = start_node("node-a"), start_node("node-b")
    leader_name = await eventually(lambda: one_leader(a, b), "one leader")
    leader, follower = (a, b) if leader_name == "node-a" else (b, a)
    async with Operator(follower.http) as operator:
        await operator.register("LEAD-RES-GONE")
        async with ChargePointClient(ws_base(follower), "LEAD-RES-GONE") as cp:
            await cp.call("Heartbeat", {})
            expiry = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
            answering = asyncio.ensure_future(_answer(cp, {"status": "Accepted"}))
            reply = await operator.request("POST", "/api/chargepoints/LEAD-RES-GONE/reservations",
                                           {"connectorId": 1, "idTag": "LEAD-TAG", "expiryDate": expiry})
            await answering
            assert reply[0] in (200, 201), reply
        # Connected nowhere when it falls due: the leader expires it, the follower (which recorded it) does not.

        async def expired() -> bool:
            listed = (await operator.get("/api/reservations?chargePointId=LEAD-RES-GONE"))["reservations"]
            return [r["status"] for r in listed] == ["Expired"]

        await eventually(expired, "the reservation expired")
        await eventually(lambda: _checked(follower), "the follower's timer fired too")
        assert await metric(leader, "csms_reservation_expiry_runs_total") >= 1
        assert await metric(follower, "csms_reservation_expiry_runs_total") == 0
        assert (await operator.event_types("LEAD-RES-GONE")).count("ReservationExpired") == 1


async def test_an_id_tag_saved_through_the_leader_holds_at_once_for_a_charge_point_on_the_follower(start_node):
    a, b = start_node("node-a"), start_node("node-b")
    leader_name = await eventually(lambda: one_leader(a, b), "one leader")
    leader, follower = (a, b) if leader_name == "node-a" else (b, a)
    async with Operator(leader.http) as operator:
        await operator.register("LEAD-WATCH")
        async with ChargePointClient(ws_base(follower), "LEAD-WATCH") as cp:
            assert (await cp.call("Authorize", {"idTag": "LEAD-NEW"}))["idTagInfo"]["status"] == "Invalid"
            await operator.save_id_tag("LEAD-NEW")  # on the leader: the follower learns of it from the store

            async def accepted() -> bool:
                return (await cp.call("Authorize", {"idTag": "LEAD-NEW"}))["idTagInfo"]["status"] == "Accepted"

            await eventually(accepted, "the follower accepts the new id tag")
