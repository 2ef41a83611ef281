"""Several `csms serve` processes on one PostgreSQL database are one central system.

Each test starts two or three real nodes on a fresh database, with leases
shortened (CSMS_NODE_LEASE) so that a killed node's charge points are free
within seconds: commands sent through any node reach the charge point on
another, a charge point moves from node to node with its history in order,
and a node killed with SIGKILL loses its charge points to the others.
"""

from __future__ import annotations

import asyncio
import functools
import signal
from datetime import datetime
from typing import Any, Awaitable, Callable, Iterator, TypeVar

import pytest

from tests.conftest import drop_postgres_database, make_postgres_database
from tests.ocpp_client import ChargePointClient, Operator, ws_base

T = TypeVar("T")

LEASE = "3"  # seconds; renewed every second
DEADLINE = 20.0  # seconds any condition below has to come true


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url, name = make_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(name)


@pytest.fixture
def start_node(postgres_url: str, server_factory: type) -> Callable[[str], Any]:
    def start(name: str) -> Any:
        return server_factory.start(postgres_url, "--node-name", name, "--call-timeout", "2",
                                    environment={"CSMS_NODE_LEASE": LEASE})
    return start


async def eventually(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Polls ``check`` until it returns something, within DEADLINE."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while True:
        result = await check()
        if result is not None and result is not False:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"not within {DEADLINE} s: {what}")
        await asyncio.sleep(0.1)


async def nodes_of(node: Any) -> dict[str, Any]:
    async with Operator(node.http) as operator:
        listing = await operator.get("/api/nodes")
    return {entry["name"]: entry for entry in listing["nodes"]}


async def held_by(node: Any, name: str, charge_point_id: str) -> bool:
    return charge_point_id in (await nodes_of(node)).get(name, {}).get("chargePointIds", [])


async def answer_next(cp: ChargePointClient, reply: dict[str, Any]) -> list[Any]:
    call = await cp.next_call()
    await cp.reply(call, reply)
    return call


def connections_of(events: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(event["type"], event["data"].get("reason")) for event in events
            if event["type"] in ("Connected", "Disconnected")]


async def test_a_command_sent_through_one_node_reaches_a_charge_point_connected_to_another(start_node):
    a, b = start_node("node-a"), start_node("node-b")
    async with Operator(b.http) as operator:
        await operator.register("SO-CMD")
        async with ChargePointClient(ws_base(a), "SO-CMD") as cp:
            await eventually(lambda: held_by(b, "node-a", "SO-CMD"), "node B sees node A hold SO-CMD")
            # Bigger than a NOTIFY payload both ways: it travels through the table.
            data = "x" * 20_000
            answering = asyncio.ensure_future(answer_next(cp, {"status": "Accepted", "data": data[::-1]}))
            status, reply = await operator.command("SO-CMD", "DataTransfer", {"vendorId": "so", "data": data})
            call = await answering

            assert (status, reply) == (200, {"status": "Accepted", "data": data[::-1]})
            assert call[2] == "DataTransfer" and call[3]["data"] == data
            # Recorded by node A, which holds the socket, and readable through either node.
            types = await operator.event_types("SO-CMD")
            assert types[-2:] == ["CallSent", "CallAnswered"]


async def test_a_forwarded_command_answers_404_409_502_and_504_as_on_one_node(start_node):
    a, b = start_node("node-a"), start_node("node-b")
    async with Operator(b.http) as operator:
        status, _ = await operator.command("SO-NOBODY", "Reset", {"type": "Soft"})
        assert status == 404
        await operator.register("SO-OFFLINE")
        status, body = await operator.command("SO-OFFLINE", "Reset", {"type": "Soft"})
        assert status == 409, body

        await operator.register("SO-ERRORS")
        async with ChargePointClient(ws_base(a), "SO-ERRORS") as cp:
            await eventually(lambda: held_by(b, "node-a", "SO-ERRORS"), "node B sees node A hold SO-ERRORS")

            async def refuse() -> None:
                await cp.reply_error(await cp.next_call(), "NotSupported", "no resets here", {"why": "test"})

            refusing = asyncio.ensure_future(refuse())
            status, body = await operator.command("SO-ERRORS", "Reset", {"type": "Soft"})
            await refusing
            assert status == 502
            assert (body["errorCode"], body["errorDescription"], body["errorDetails"]) == (
                "NotSupported", "no resets here", {"why": "test"})

            status, body = await operator.command("SO-ERRORS", "Reset", {"type": "Hard"})  # never answered
            assert status == 504, body
            await cp.next_call()  # it did arrive

            types = await operator.event_types("SO-ERRORS")
            assert [t for t in types if t.startswith("Call")] == ["CallSent", "CallFailed", "CallSent", "CallTimedOut"]


async def test_a_charge_point_that_reconnects_to_another_node_is_handed_over_in_order(start_node):
    a, b = start_node("node-a"), start_node("node-b")
    async with Operator(a.http) as operator:
        await operator.register("SO-MOVE")
        first = ChargePointClient(ws_base(a), "SO-MOVE")
        await first.connect()
        await first.call("Heartbeat", {})
        async with ChargePointClient(ws_base(b), "SO-MOVE") as second:
            await asyncio.wait_for(first.closed.wait(), DEADLINE)  # node A closed its socket
            await second.call("Heartbeat", {})
            assert await held_by(a, "node-b", "SO-MOVE") and not await held_by(a, "node-a", "SO-MOVE")

            history = connections_of(await operator.events("SO-MOVE"))
            assert [kind for kind, _ in history] == ["Connected", "Disconnected", "Connected"]
            assert "did not hand" not in history[1][1]  # recorded by node A itself, as it closed the socket

            # Node A now forwards to node B.
            answering = asyncio.ensure_future(answer_next(second, {"status": "Accepted"}))
            status, reply = await operator.command("SO-MOVE", "ClearCache", {})
            await answering
            assert (status, reply) == (200, {"status": "Accepted"})
        await first.close()


async def test_a_killed_nodes_charge_points_are_served_by_the_others_once_its_lease_runs_out(start_node):
    a, b = start_node("node-a"), start_node("node-b")
    async with Operator(b.http) as operator:
        for charge_point_id in ("SO-KILL-BACK", "SO-KILL-GONE"):
            await operator.register(charge_point_id)
        back = ChargePointClient(ws_base(a), "SO-KILL-BACK")
        gone = ChargePointClient(ws_base(a), "SO-KILL-GONE")
        await back.connect()
        await gone.connect()
        for cp in (back, gone):
            await cp.call("Heartbeat", {})  # answered once its Connected is committed, and the heartbeat
        await eventually(lambda: held_by(b, "node-a", "SO-KILL-GONE"), "node B sees node A hold both")

        a.kill()
        await back.closed.wait()
        await gone.closed.wait()
        # Node A stops renewing: B lists it unhealthy, then its leases run out.
        await eventually(lambda: _unhealthy_and_empty(b, "node-a"), "node A unhealthy and holding nothing")

        async with ChargePointClient(ws_base(b), "SO-KILL-BACK") as again:
            assert (await again.call("Heartbeat", {}))["currentTime"]
            assert await held_by(b, "node-b", "SO-KILL-BACK")
            answering = asyncio.ensure_future(answer_next(again, {"status": "Accepted"}))
            status, _ = await operator.command("SO-KILL-BACK", "ClearCache", {})
            await answering
            assert status == 200
        # The one that never came back is recorded offline by the surviving node, once.
        view = await eventually(lambda: _offline(operator, "SO-KILL-GONE"), "SO-KILL-GONE offline")
        assert view["online"] is False
        for charge_point_id in ("SO-KILL-BACK", "SO-KILL-GONE"):
            history = connections_of(await operator.events(charge_point_id))
            assert [kind for kind, _ in history][:2] == ["Connected", "Disconnected"]
            assert "node-a" in history[1][1]
        await back.close()
        await gone.close()


async def test_a_charge_point_of_a_node_killed_moments_ago_is_taken_over_at_once(start_node):
    a, b = start_node("node-a"), start_node("node-b")
    async with Operator(b.http) as operator:
        await operator.register("SO-KILL-NOW")
        first = ChargePointClient(ws_base(a), "SO-KILL-NOW")
        await first.connect()
        await first.call("Heartbeat", {})  # its Connected is committed
        await eventually(lambda: held_by(b, "node-a", "SO-KILL-NOW"), "node B sees node A hold it")
        a.kill()
        # Its lease is still in force; node A does not answer, so node B records its end itself.
        async with ChargePointClient(ws_base(b), "SO-KILL-NOW") as again:
            await again.call("Heartbeat", {})
            history = connections_of(await operator.events("SO-KILL-NOW"))
            assert [kind for kind, _ in history] == ["Connected", "Disconnected", "Connected"]
            assert "node-a did not hand the connection over" in history[1][1]
        await first.close()


async def test_a_node_that_stalled_past_its_lease_lets_its_charge_point_go_without_writing_its_history(
        start_node):
    a, b = start_node("node-a"), start_node("node-b")
    async with Operator(b.http) as operator:
        await operator.register("SO-STALL")
        first = ChargePointClient(ws_base(a), "SO-STALL")
        await first.connect()
        await first.call("Heartbeat", {})  # its Connected is committed
        await eventually(lambda: held_by(b, "node-a", "SO-STALL"), "node B sees node A hold it")
        assert a.process is not None
        a.process.send_signal(signal.SIGSTOP)  # a node frozen (a long GC pause, a stalled VM)
        try:
            await eventually(lambda: _unhealthy_and_empty(b, "node-a"), "node A's lease ran out")
            again = ChargePointClient(ws_base(b), "SO-STALL")
            await again.connect()
            await again.call("Heartbeat", {})
        finally:
            a.process.send_signal(signal.SIGCONT)
        # Node A wakes, finds at its next renewal that the lease is gone, and closes its socket quietly.
        await asyncio.wait_for(first.closed.wait(), DEADLINE)
        await again.call("Heartbeat", {})
        history = connections_of(await operator.events("SO-STALL"))
        assert [kind for kind, _ in history] == ["Connected", "Disconnected", "Connected"]
        assert await held_by(a, "node-b", "SO-STALL")
        await again.close()
        await first.close()


async def test_a_node_started_after_another_was_killed_records_its_charge_points_offline_at_once(start_node):
    a = start_node("node-a")
    async with Operator(a.http) as operator:
        await operator.register("SO-RESTART")
        cp = ChargePointClient(ws_base(a), "SO-RESTART")
        await cp.connect()
        await cp.call("Heartbeat", {})
    a.kill()
    # Another name (as a restart with the default host:port:pid gets): node A's lease is still in force,
    # but node A does not answer, so the charge point is offline before node C serves anything.
    c = start_node("node-c")
    async with Operator(c.http) as operator:
        assert (await operator.get("/api/chargepoints/SO-RESTART"))["online"] is False
        history = connections_of(await operator.events("SO-RESTART"))
        assert [kind for kind, _ in history] == ["Connected", "Disconnected"]
        assert list(await nodes_of(c)) == ["node-c"] or (await nodes_of(c))["node-a"]["chargePointIds"] == []
    await cp.close()


@pytest.mark.parametrize("store_kind", ["sqlite", "postgresql"])
async def test_one_node_lists_itself_with_its_charge_points(store_kind, postgres_url, server_factory, tmp_path):
    store = postgres_url if store_kind == "postgresql" else f"sqlite:///{tmp_path / 'csms.sqlite3'}"
    node = server_factory.start(store, "--node-name", 'solo "one"')
    async with Operator(node.http) as operator:
        await operator.register("SO-SOLO")
        async with ChargePointClient(ws_base(node), "SO-SOLO") as cp:
            await cp.call("Heartbeat", {})
            listing = await operator.get("/api/nodes")
            assert operator.session is not None
            async with operator.session.get(f"{node.http}/metrics") as response:
                metrics = await response.text()
    assert listing["thisNode"] == 'solo "one"'
    [solo] = listing["nodes"]
    assert (solo["name"], solo["healthy"], solo["chargePointCount"], solo["chargePointIds"]) == (
        'solo "one"', True, 1, ["SO-SOLO"])
    assert 'csms_connected_charge_points{node="solo \\"one\\""} 1' in metrics


async def test_a_node_whose_registry_connections_are_cut_reconnects_and_keeps_serving(start_node, postgres_url):
    a, b = start_node("node-a"), start_node("node-b")
    async with Operator(b.http) as operator:
        await operator.register("SO-CUT")
        async with ChargePointClient(ws_base(a), "SO-CUT") as cp:
            await cp.call("Heartbeat", {})
            await eventually(lambda: held_by(b, "node-a", "SO-CUT"), "node B sees node A hold it")
            a_leads = (await nodes_of(b))["node-a"]["projectionsLeader"]
            cut = await asyncio.to_thread(terminate_connections, postgres_url, "csms % node-a")
            assert cut == 3 + a_leads  # its leases, its messages, its LISTEN (and its lead of the read models)
            renewed_before = (await nodes_of(b))["node-a"]["lastRenewal"]

            async def forwarded() -> bool:
                answering = asyncio.ensure_future(answer_next(cp, {"status": "Accepted"}))
                status, _ = await operator.command("SO-CUT", "ClearCache", {})
                if status != 200:
                    answering.cancel()
                    return False
                await answering
                return True

            await eventually(forwarded, "a command through node B reaches SO-CUT on node A again")
            await eventually(lambda: _renewed_since(b, "node-a", renewed_before), "node A renews again")


def terminate_connections(store_url: str, application_name: str) -> int:
    import psycopg

    with psycopg.connect(store_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE %s"
            " AND datname = current_database()", (application_name,),
        ).fetchall()
    return len(rows)


async def test_three_nodes_list_each_other_and_serve_each_others_charge_points(start_node):
    nodes = {name: start_node(name) for name in ("node-a", "node-b", "node-c")}
    clients = {}
    async with Operator(nodes["node-a"].http) as operator:
        for name, node in nodes.items():
            await operator.register(f"SO-3-{name}")
            clients[name] = ChargePointClient(ws_base(node), f"SO-3-{name}")
            await clients[name].connect()
    try:
        for asking in nodes.values():
            listed = await eventually(functools.partial(_all_held, asking, nodes),
                                      "every node lists every node's charge point")
            assert all(listed[name]["healthy"] for name in nodes)
            assert [listed[name]["chargePointIds"] for name in nodes] == [[f"SO-3-{name}"] for name in nodes]
            async with Operator(asking.http) as operator:
                for name, cp in clients.items():
                    answering = asyncio.ensure_future(answer_next(cp, {"status": "Accepted"}))
                    status, body = await operator.command(f"SO-3-{name}", "ClearCache", {})
                    assert status == 200, (asking.port, name, body)
                    await answering
        async with Operator(nodes["node-b"].http) as operator:
            assert operator.session is not None
            async with operator.session.get(f"{nodes['node-b'].http}/metrics") as response:
                assert 'csms_connected_charge_points{node="node-b"} 1' in await response.text()
    finally:
        for cp in clients.values():
            await cp.close()


async def _unhealthy_and_empty(node: Any, name: str) -> bool:
    listed = (await nodes_of(node)).get(name)
    return listed is not None and not listed["healthy"] and listed["chargePointIds"] == []


async def _offline(operator: Operator, charge_point_id: str) -> dict[str, Any] | None:
    view = await operator.get(f"/api/chargepoints/{charge_point_id}")
    return view if view["online"] is False else None


async def _renewed_since(node: Any, name: str, renewed_before: str) -> bool:
    listed = (await nodes_of(node))[name]
    return listed["healthy"] and datetime.fromisoformat(listed["lastRenewal"]) > datetime.fromisoformat(renewed_before)


async def _all_held(asking: Any, nodes: dict[str, Any]) -> dict[str, Any] | None:
    listed = await nodes_of(asking)
    held = all(listed.get(name, {}).get("chargePointIds") == [f"SO-3-{name}"] for name in nodes)
    return listed if held else None
