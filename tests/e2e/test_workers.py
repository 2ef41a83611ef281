"""`csms serve --workers N`: N real processes sharing one port, one central system on PostgreSQL.

The kernel spreads the charge points' connections over the workers
(SO_REUSEPORT); each worker is a node, so GET /api/nodes lists them, a
command through the API reaches a charge point whatever worker holds it, and
transaction ids stay unique. The parent process supervises: SIGTERM stops
every worker cleanly, a worker that dies takes the server down with a
non-zero exit, and SQLite refuses more than one worker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any, Callable

import pytest

from adapters.store import EventStore
from tests.certificates import issue
from tests.conftest import ROOT
from tests.e2e import test_scale_out as scale_out
from tests.e2e.test_scale_out import answer_next, eventually, nodes_of
from tests.e2e.test_security_transport import Pki, handshake_serial, until
from tests.ocpp_client import ChargePointClient, Operator, ws_base

CHARGE_POINTS = 24  # spread by the kernel's hash of each connection: all on one worker is a 1 in 2**23 chance
LEASE = "3"
BOOT = {"chargePointVendor": "Amp", "chargePointModel": "Workers"}


postgres_url = scale_out.postgres_url  # a fresh PostgreSQL database, dropped afterwards (a fixture)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def start_workers(postgres_url: str, server_factory: type) -> Callable[..., Any]:
    def start(*extra: str) -> Any:
        return server_factory.start(postgres_url, "--workers", "2", "--call-timeout", "5", "--auto-register",
                                    *extra, environment={"CSMS_NODE_LEASE": LEASE})
    return start


async def connect_all(server: Any, prefix: str) -> list[ChargePointClient]:
    clients = [ChargePointClient(ws_base(server), f"{prefix}-{number:02}") for number in range(CHARGE_POINTS)]
    await asyncio.gather(*(client.connect() for client in clients))
    for client in clients:
        await client.call("BootNotification", BOOT)
    return clients


async def held_by_each_node(server: Any, ids: set[str]) -> dict[str, set[str]] | None:
    """The charge points each node lists, once the nodes together hold exactly ``ids``."""
    held = {name: set(node["chargePointIds"]) for name, node in (await nodes_of(server)).items()}
    return held if set().union(*held.values()) == ids else None


def stored_event_types(store_url: str, charge_point_id: str) -> list[str]:
    store = EventStore(store_url)
    try:
        return [type(event).__name__ for event in store.history(charge_point_id)]
    finally:
        store.close()


def worker_pids(nodes: dict[str, Any]) -> list[int]:
    """The default node names are host:port:pid."""
    return [int(name.rsplit(":", 1)[1]) for name in nodes]


async def test_two_workers_share_the_port_serve_each_others_charge_points_and_issue_unique_ids(start_workers):
    server = start_workers("--node-name", "wk")
    clients = await connect_all(server, "WK")
    ids = {client.id for client in clients}
    try:
        held = await eventually(lambda: held_by_each_node(server, ids), "the nodes hold every charge point")
        assert sorted(held) == ["wk:w0", "wk:w1"]
        assert all(held.values()), f"the kernel gave every connection to one worker: {held}"
        assert not held["wk:w0"] & held["wk:w1"]

        started = [await client.call("StartTransaction", {"connectorId": 1, "idTag": "TAG", "meterStart": 0,
                                                         "timestamp": "2026-12-02T10:00:00Z"})
                   for client in clients]
        transaction_ids = [reply["transactionId"] for reply in started]
        assert len(set(transaction_ids)) == CHARGE_POINTS, transaction_ids

        # One keep-alive connection, so one worker takes every request: the charge points the other
        # worker holds can only be reached by forwarding.
        async with Operator(server.http) as operator:
            asking = (await operator.get("/api/nodes"))["thisNode"]
            for client in clients:
                answering = asyncio.ensure_future(answer_next(client, {"status": "Accepted"}))
                status, reply = await operator.command(client.id, "ClearCache", {})
                call = await answering
                assert (status, reply, call[2]) == (200, {"status": "Accepted"}, "ClearCache")
            assert (await operator.get("/api/nodes"))["thisNode"] == asking
            other = next(name for name in held if name != asking)
            forwarded = sorted(held[other])[0]
            assert (await operator.event_types(forwarded))[-2:] == ["CallSent", "CallAnswered"]
    finally:
        for client in clients:
            await client.close()


async def test_sigterm_stops_every_worker_and_each_records_its_charge_points_disconnected(
        start_workers, postgres_url):
    server = start_workers()
    clients = await connect_all(server, "WT")
    ids = {client.id for client in clients}
    held = await eventually(lambda: held_by_each_node(server, ids), "the nodes hold every charge point")
    pids = worker_pids(held)
    assert len(pids) == 2 and server.process.pid not in pids

    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0
    for client in clients:
        await asyncio.wait_for(client.closed.wait(), 10)
        await client.close()

    for pid in pids:  # the parent waited for its workers before it exited
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    for charge_point_id in sorted(ids):
        assert stored_event_types(postgres_url, charge_point_id)[-1] == "Disconnected", charge_point_id


async def test_a_worker_that_dies_stops_the_others_and_the_server_exits_non_zero(start_workers, postgres_url):
    server = start_workers()
    clients = await connect_all(server, "WD")
    ids = {client.id for client in clients}
    held = await eventually(lambda: held_by_each_node(server, ids), "the nodes hold every charge point")
    victim, survivor = sorted(held)
    os.kill(worker_pids({victim: None})[0], signal.SIGKILL)

    assert server.process.wait(timeout=30) == 1
    for drain in server._drains:
        drain.join(timeout=10)  # the rest of its output, now the pipe is closed
    assert "stopping the other workers" in "".join(server.output)
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pids({survivor: None})[0], 0)
    for client in clients:
        await client.close()
    for charge_point_id in sorted(held[survivor]):  # stopped cleanly, not killed
        assert stored_event_types(postgres_url, charge_point_id)[-1] == "Disconnected", charge_point_id


async def test_tls_workers_share_the_port_and_each_reloads_its_certificate_on_sighup(
        start_workers, tmp_path, pki: Pki):
    first = issue(pki.server_ca, "localhost", kind="ec", server=True, dns_names=("localhost",))
    certificate, key = first.write(tmp_path, "live")
    server = start_workers("--tls-cert", certificate, "--tls-key", key)
    assert any("Running on (each of 2 workers) https://" in line for line in server.output)
    async with Operator(f"https://127.0.0.1:{server.port}", tls=pki.client()) as operator:
        assert len((await operator.get("/api/nodes"))["nodes"]) == 2
    second = issue(pki.server_ca, "localhost", kind="ec", server=True, dns_names=("localhost",))
    second.write(tmp_path, "live")
    server.process.send_signal(signal.SIGHUP)

    async def serials() -> set[int]:  # each handshake is a new connection, given to either worker
        return {await handshake_serial(server.port, pki.client()) for _ in range(16)}

    await until(serials, lambda seen: seen == {second.certificate.serial_number})
    assert server.process.poll() is None  # reloaded, not stopped


@pytest.mark.parametrize("store", ["sqlite", "memory"])
def test_more_than_one_worker_is_refused_on_a_store_that_is_not_postgresql(store, tmp_path):
    url = f"sqlite:///{tmp_path / 'csms.sqlite3'}" if store == "sqlite" else "memory:"
    result = subprocess.run([sys.executable, "-m", "app", "serve", "--workers", "2", "--store", url,
                             "--port", "0"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--workers 2 needs a PostgreSQL store" in result.stderr
    assert "API token" not in result.stdout and not (tmp_path / "csms.sqlite3").exists()
