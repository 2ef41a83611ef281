"""For auditors: `csms replay` and `csms audit verify` on a stopped server's
store, and tamper evidence against changes made directly in the database.

One history per store kind is recorded by a real server and then left alone;
every test that tampers works on a copy of it (a copied SQLite file, or a
PostgreSQL database created from it as a template).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import uuid
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import app
from adapters.store.hash_chain import CHAIN_FIELD, chain_digest
from adapters.store.transcoder import MsgpackTranscoder
from tests.conftest import POSTGRES_ADMIN, ROOT, Server, drop_postgres_database, make_postgres_database
from tests.ocpp_client import ChargePointClient, Operator, ws_base

BOOT = {"chargePointVendor": "Acme", "chargePointModel": "Ledger", "chargePointSerialNumber": "AUD-1"}
TRANSCODER = MsgpackTranscoder()


@dataclass
class History:
    store: str
    events: dict[str, list[dict[str, Any]]]  # by charge point, as GET .../events showed them
    transaction_id: int

    def version_of(self, charge_point_id: str, event_type: str) -> int:
        return next(e["version"] for e in self.events[charge_point_id] if e["type"] == event_type)

    def moment_of(self, charge_point_id: str, event_type: str) -> datetime:
        event = next(e for e in self.events[charge_point_id] if e["type"] == event_type)
        return datetime.fromisoformat(event["timestamp"])


async def record_history(server: Server) -> History:
    async with Operator(server.http) as operator:
        await operator.save_id_tag("AUD-TAG", "Accepted")
        await operator.register("AUD-A", description="audited")
        await operator.register("AUD-B")
        async with ChargePointClient(ws_base(server), "AUD-A") as a:
            await a.call("BootNotification", BOOT)
            await a.call("StatusNotification", {"connectorId": 1, "status": "Charging", "errorCode": "NoError",
                                                "timestamp": "2025-06-01T10:00:00Z"})
            started = await a.call("StartTransaction", {"connectorId": 1, "idTag": "AUD-TAG", "meterStart": 1000,
                                                        "timestamp": "2025-06-01T10:00:00Z"})
            await a.call("MeterValues", {"connectorId": 1, "transactionId": started["transactionId"], "meterValue": [
                {"timestamp": "2025-06-01T10:30:00Z", "sampledValue": [{"value": "3.5", "unit": "kWh"}]}]})
            await a.call("StopTransaction", {"transactionId": started["transactionId"], "meterStop": 6000,
                                             "timestamp": "2025-06-01T11:00:00Z"})
            await a.call("Heartbeat", {})
        async with ChargePointClient(ws_base(server), "AUD-B") as b:
            await b.call("BootNotification", {"chargePointVendor": "Other", "chargePointModel": "B"})
        events = {cp: await operator.events(cp) for cp in ("AUD-A", "AUD-B")}
    return History(server.store, events, started["transactionId"])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def history(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """A store with a recorded history and no server running on it."""
    database = None
    if request.param == "sqlite":
        store = f"sqlite:///{tmp_path_factory.mktemp('audit') / 'csms.sqlite3'}"
    else:
        store, database = make_postgres_database()
    server = Server(store, "--call-timeout", "2")
    try:
        server.start()
        recorded = asyncio.run(record_history(server))
        server.check_output()
        yield recorded
    finally:
        server.stop()
        if database is not None:
            drop_postgres_database(database)


@pytest.fixture
def copy_of(history: History, tmp_path: Path) -> Iterator[History]:
    """The recorded history in a store of its own, free to tamper with."""
    if history.store.startswith("sqlite:///"):
        source = Path(history.store.removeprefix("sqlite:///"))
        target = tmp_path / "tampered.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{source}{suffix}").exists():
                shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
        yield History(f"sqlite:///{target}", history.events, history.transaction_id)
        return
    name = f"csms_test_{uuid.uuid4().hex[:12]}"
    source_name = history.store.rsplit("/", 1)[1]
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source_name}"')
    try:
        yield History(f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{name}", history.events, history.transaction_id)
    finally:
        drop_postgres_database(name)


# ---- the database, behind the server's back ------------------------------------------------


def execute(store: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    table = "stored_events" if store.startswith("sqlite") else "csms_events"
    sql = sql.replace("EVENTS", table)
    if store.startswith("sqlite:///"):
        with sqlite3.connect(store.removeprefix("sqlite:///")) as conn:
            return list(conn.execute(sql, params).fetchall())
    import psycopg

    with psycopg.connect(store) as conn:
        cursor = conn.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]
        return list(cursor.fetchall()) if cursor.description else []


def stored(store: str, charge_point_id: str, version: int) -> tuple[str, dict[str, Any]]:
    """(topic, decoded state) of one stored event."""
    [(topic, state)] = execute(store, "SELECT topic, state FROM EVENTS WHERE originator_id = ? AND"
                                      " originator_version = ?", (charge_point_id, version))
    return topic, TRANSCODER.decode(bytes(state))


def overwrite(store: str, charge_point_id: str, version: int, state: dict[str, Any]) -> None:
    execute(store, "UPDATE EVENTS SET state = ? WHERE originator_id = ? AND originator_version = ?",
            (TRANSCODER.encode(state), charge_point_id, version))


def delete(store: str, charge_point_id: str, version: int) -> None:
    execute(store, "DELETE FROM EVENTS WHERE originator_id = ? AND originator_version = ?",
            (charge_point_id, version))


# ---- the command line -----------------------------------------------------------------------


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def csms(*args: str) -> Ran:
    """`python -m app ARGS` as a process of its own, the way an auditor runs it."""
    done = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    return Ran(done.returncode, done.stdout, done.stderr)


def csms_here(*args: str) -> Ran:
    """The same command in this process: the same code without a second of Python start-up each time."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = app.main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return Ran(code, out.getvalue(), err.getvalue())


def verify(store: str, *extra: str, run: Callable[..., Ran] = csms_here) -> Ran:
    return run("audit", "verify", "--store", store, *extra)


def heads(output: str) -> dict[str, str]:
    return dict(re.findall(r"^  (\S+) head (\d+:[0-9a-f]{64})$", output, re.MULTILINE))


def replay(store: str, charge_point_id: str, *extra: str,
           run: Callable[..., Ran] = csms_here) -> tuple[list[dict[str, Any]], Any]:
    """The events `csms replay` printed (one JSON object a line) and the final state."""
    done = run("replay", charge_point_id, "--store", store, *extra)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    state_starts = lines.index("{")
    events = [json.loads(line) for line in lines[:state_starts]]
    return events, json.loads("\n".join(lines[state_starts:]))["state"]


# ---- verify ----------------------------------------------------------------------------------


def test_verify_passes_an_untouched_store_and_prints_the_head_of_every_chain(history):
    everything = verify(history.store, run=csms)
    only_a = verify(history.store, "--chargepoint", "AUD-A")

    assert everything.returncode == 0, everything.stdout + everything.stderr
    counted = re.match(r"OK: (\d+) events in (\d+) chains verified\n", everything.stdout)
    assert counted is not None, everything.stdout
    [(total,)] = execute(history.store, "SELECT COUNT(*) FROM EVENTS")
    assert int(counted.group(1)) == total
    chains = heads(everything.stdout)
    assert int(counted.group(2)) == len(chains)
    # Every charge point, the id tag registry and the tariff book: one chain each.
    assert {"AUD-A", "AUD-B"} < set(chains)
    assert chains["AUD-A"].split(":")[0] == str(len(history.events["AUD-A"]))
    assert chains["AUD-B"].split(":")[0] == str(len(history.events["AUD-B"]))
    assert only_a.returncode == 0
    assert only_a.stdout.startswith(f"OK: {len(history.events['AUD-A'])} events in 1 chains verified\n")
    assert heads(only_a.stdout) == {"AUD-A": chains["AUD-A"]}
    # The stored link is the documented digest of its predecessor's link and the event itself.
    previous = ""
    for version in range(1, len(history.events["AUD-A"]) + 1):
        topic, state = stored(history.store, "AUD-A", version)
        link = state.pop(CHAIN_FIELD)
        assert link == chain_digest(previous, "AUD-A", version, topic, TRANSCODER.encode(state))
        previous = link
    assert chains["AUD-A"] == f"{len(history.events['AUD-A'])}:{previous}"


def test_a_changed_event_breaks_the_chain_where_it_was_changed(copy_of):
    version = copy_of.version_of("AUD-A", "TransactionStopped")
    _, state = stored(copy_of.store, "AUD-A", version)
    state["request"]["meterStop"] = 1500  # a cheaper session, the chain hash left as it was
    overwrite(copy_of.store, "AUD-A", version, state)

    everything = verify(copy_of.store, run=csms)
    only_a = verify(copy_of.store, "--chargepoint", "AUD-A")
    only_b = verify(copy_of.store, "--chargepoint", "AUD-B")

    expected = f"BROKEN: AUD-A version {version}: the hash does not match the event and its predecessor\n"
    assert (everything.returncode, everything.stdout) == (1, expected)
    assert (only_a.returncode, only_a.stdout) == (1, expected)
    assert only_b.returncode == 0, only_b.stdout


def test_rehashing_a_changed_event_moves_the_break_to_its_successor(copy_of):
    version = copy_of.version_of("AUD-A", "MeterValuesReceived")
    _, predecessor = stored(copy_of.store, "AUD-A", version - 1)
    topic, state = stored(copy_of.store, "AUD-A", version)
    state.pop(CHAIN_FIELD)
    state["request"]["meterValue"][0]["sampledValue"][0]["value"] = "1.5"
    state[CHAIN_FIELD] = chain_digest(predecessor[CHAIN_FIELD], "AUD-A", version, topic, TRANSCODER.encode(state))
    overwrite(copy_of.store, "AUD-A", version, state)

    done = verify(copy_of.store, "--chargepoint", "AUD-A")

    # A forger must rewrite every later link too, and then the head no longer matches the one recorded.
    assert done.returncode == 1
    assert done.stdout == (f"BROKEN: AUD-A version {version + 1}: "
                           "the hash does not match the event and its predecessor\n")


def test_a_deleted_event_in_the_middle_is_reported_missing(copy_of):
    version = copy_of.version_of("AUD-A", "ConnectorStatusChanged")
    delete(copy_of.store, "AUD-A", version)

    done = verify(copy_of.store)

    assert (done.returncode, done.stdout) == (1, f"BROKEN: AUD-A version {version}: version {version} is missing\n")


def test_an_event_that_cannot_be_decoded_is_reported(copy_of):
    execute(copy_of.store, "UPDATE EVENTS SET state = ? WHERE originator_id = ? AND originator_version = ?",
            (b"\xc1not msgpack", "AUD-B", 2))

    done = verify(copy_of.store, "--chargepoint", "AUD-B")

    assert (done.returncode, done.stdout) == (1, "BROKEN: AUD-B version 2: the stored state cannot be decoded\n")


def test_deleting_the_newest_event_is_seen_only_against_a_recorded_head(copy_of):
    recorded = heads(verify(copy_of.store).stdout)
    newest = len(copy_of.events["AUD-A"])
    _, second_newest = stored(copy_of.store, "AUD-A", newest - 1)
    delete(copy_of.store, "AUD-A", newest)

    done = verify(copy_of.store)

    # The shortened chain is still a valid chain...
    assert done.returncode == 0, done.stdout
    # ...but its head is not the head an auditor wrote down before.
    assert heads(done.stdout)["AUD-A"] == f"{newest - 1}:{second_newest[CHAIN_FIELD]}" != recorded["AUD-A"]
    assert heads(done.stdout)["AUD-B"] == recorded["AUD-B"]


# ---- replay ----------------------------------------------------------------------------------


def test_replay_prints_every_event_and_the_final_state(history):
    events, state = replay(history.store, "AUD-A", run=csms)

    assert events == history.events["AUD-A"]
    assert [e["type"] for e in events] == [
        "Registered", "Connected", "Booted", "ConnectorStatusChanged", "TransactionStarted", "MeterValuesReceived",
        "TransactionStopped", "HeartbeatReceived", "Disconnected",
    ]
    assert events[2]["data"]["request"] == BOOT
    assert events[6]["data"]["request"]["meterStop"] == 6000
    assert (state["id"], state["description"], state["online"], state["openTransactions"]) == (
        "AUD-A", "audited", False, []
    )
    assert (state["vendor"], state["model"], state["serialNumber"]) == ("Acme", "Ledger", "AUD-1")
    assert state["connectors"]["1"]["status"] == "Charging"
    assert state["version"] == len(events)


def test_replay_at_a_moment_stops_there(history):
    booted = history.moment_of("AUD-A", "Booted")
    started = history.moment_of("AUD-A", "TransactionStarted")

    before_boot, state_before_boot = replay(history.store, "AUD-A", "--at",
                                            (booted - timedelta(microseconds=1)).isoformat(), run=csms)
    at_boot, state_at_boot = replay(history.store, "AUD-A", "--at", booted.isoformat())
    charging_events, charging = replay(history.store, "AUD-A", "--at", started.isoformat())
    nothing_yet, no_state = replay(history.store, "AUD-A", "--at", "2001-01-01T00:00:00Z")
    unknown = csms_here("replay", "AUD-NOBODY", "--store", history.store)

    assert [e["type"] for e in before_boot] == ["Registered", "Connected"]
    assert (state_before_boot["online"], state_before_boot["vendor"]) == (True, None)
    assert at_boot == history.events["AUD-A"][:3]
    assert state_at_boot["vendor"] == "Acme"
    assert charging_events[-1]["type"] == "TransactionStarted"
    assert charging["openTransactions"] == [history.transaction_id]
    assert charging["connectors"]["1"]["transactionId"] == history.transaction_id
    assert (nothing_yet, no_state) == ([], None)
    assert unknown.returncode == 1
    assert "AUD-NOBODY" in unknown.stderr
