"""The status read model, the history endpoints and how the read models keep
up with the store: after a crash, on /metrics, and when rebuilt from scratch.

The first tests share one server per store kind (each with its own charge
points); the crash and rebuild tests have servers of their own.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, AsyncIterator, Iterator
from urllib.parse import quote

import aiohttp
import pytest

from projections.runner import TABLES
from tests.conftest import ROOT
from tests.ocpp_client import (
    ChargePointClient,
    Operator,
    fresh_store,
    instant,
    read_model_rows,
    shared_server,
    ws_base,
)

server = shared_server()

READ_MODEL_TABLES = tuple(TABLES)  # every read model, the ones added later included


@pytest.fixture
async def operator(server: Any) -> AsyncIterator[Operator]:
    async with Operator(server.http) as operator:
        yield operator


async def read_models_caught_up(operator: Operator) -> None:
    """Every API read of a read model first waits for all this server committed."""
    await operator.get("/api/transactions?chargePointId=-")


def dump_read_models(store: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every read model, in a stable order."""
    def key(row: tuple[Any, ...]) -> tuple[tuple[bool, str], ...]:
        return tuple((value is None, str(value)) for value in row)

    return {
        table: sorted((tuple(row.values()) for row in read_model_rows(store, f"SELECT * FROM {table}")), key=key)
        for table in READ_MODEL_TABLES
    }


def read_model_position(store: str) -> int:
    table = "tracking" if store.startswith("sqlite") else "notification_tracking"
    rows = read_model_rows(store, f"SELECT notification_id FROM {table} WHERE application_name = ?", ("ReadModels",))
    return int(rows[0]["notification_id"])


def newest_event(store: str) -> int:
    if store.startswith("sqlite"):
        return int(read_model_rows(store, "SELECT MAX(rowid) AS newest FROM stored_events")[0]["newest"])
    return int(read_model_rows(store, "SELECT MAX(notification_id) AS newest FROM csms_events")[0]["newest"])


def documented_queries(store: str) -> list[str]:
    """The SQL examples of docs/read-models.md that this store's dialect runs."""
    text = (ROOT / "docs" / "read-models.md").read_text()
    dialect = "SQLite" if store.startswith("sqlite") else "PostgreSQL"
    queries = []
    for block in re.findall(r"```sql\n(.*?)```", text, re.DOTALL):
        first_line = block.splitlines()[0]
        if first_line.startswith("-- ") and first_line != f"-- {dialect}":
            continue
        queries.append(block)
    return queries


async def answer_next_call(cp: ChargePointClient, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    call = await cp.next_call()
    assert call[2] == action, call
    await cp.reply(call, payload)
    return call[3]


# ---- the status read model --------------------------------------------------------------


async def test_status_read_model_follows_every_charge_point_and_connector_fact(server, operator):
    await operator.save_id_tag("RM-TAG", "Accepted")
    await operator.register("RM-STATUS", description="Bay 7")
    boot = {"chargePointVendor": "Acme", "chargePointModel": "Volt 22", "chargePointSerialNumber": "SN-7",
            "firmwareVersion": "2.0.1", "iccid": "8931"}
    async with ChargePointClient(ws_base(server), "RM-STATUS") as cp:
        await cp.call("BootNotification", boot)
        await cp.call("StatusNotification", {"connectorId": 0, "status": "Available", "errorCode": "NoError",
                                             "timestamp": "2025-02-01T10:00:00Z"})
        await cp.call("StatusNotification", {"connectorId": 1, "status": "Preparing", "errorCode": "NoError",
                                             "timestamp": "2025-02-01T10:01:00Z"})
        await cp.call("StatusNotification", {"connectorId": 2, "status": "Faulted", "errorCode": "GroundFailure",
                                             "info": "RCD tripped", "vendorId": "Acme", "vendorErrorCode": "E42",
                                             "timestamp": "2025-02-01T10:02:00+01:00"})
        await cp.call("FirmwareStatusNotification", {"status": "Installed"})
        await cp.call("DiagnosticsStatusNotification", {"status": "Uploaded"})
        started = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "RM-TAG", "meterStart": 0,
                                                     "timestamp": "2025-02-01T10:03:00Z"})
        (status, reply), _ = await asyncio.gather(
            operator.command("RM-STATUS", "GetLocalListVersion", {}),
            answer_next_call(cp, "GetLocalListVersion", {"listVersion": 7}),
        )
        assert (status, reply) == (200, {"listVersion": 7})
        beat = await cp.call("Heartbeat", {})
        await read_models_caught_up(operator)
        online = read_model_rows(server.store, "SELECT * FROM cp_status WHERE charge_point_id = ?", ("RM-STATUS",))
        connectors_while_charging = read_model_rows(
            server.store, "SELECT * FROM cp_connectors WHERE charge_point_id = ? ORDER BY connector_id", ("RM-STATUS",)
        )
        (status, _), sent = await asyncio.gather(
            operator.command("RM-STATUS", "SendLocalList",
                             {"listVersion": 9, "updateType": "Full", "localAuthorizationList": []}),
            answer_next_call(cp, "SendLocalList", {"status": "Accepted"}),
        )
        assert status == 200 and sent["listVersion"] == 9
        await cp.call("StopTransaction", {"transactionId": started["transactionId"], "meterStop": 500,
                                          "timestamp": "2025-02-01T11:00:00Z"})
    await read_models_caught_up(operator)
    offline = read_model_rows(server.store, "SELECT * FROM cp_status WHERE charge_point_id = ?", ("RM-STATUS",))[0]
    connectors = read_model_rows(server.store, "SELECT * FROM cp_connectors WHERE charge_point_id = ?"
                                               " ORDER BY connector_id", ("RM-STATUS",))
    state = (await operator.get("/api/chargepoints/RM-STATUS/state"))["state"]

    row = online[0]
    assert bool(row["online"]) is True
    assert (row["description"], row["vendor"], row["model"], row["serial_number"], row["firmware_version"]) == (
        "Bay 7", "Acme", "Volt 22", "SN-7", "2.0.1"
    )
    assert (row["firmware_status"], row["diagnostics_status"], row["local_list_version"]) == (
        "Installed", "Uploaded", 7
    )
    boot_info = row["boot_info"]
    assert (boot_info if isinstance(boot_info, dict) else json.loads(boot_info)) == boot
    # last_seen is when the heartbeat arrived: the time it was told, to the millisecond.
    seen = instant(row["last_seen"])
    assert seen.replace(microsecond=seen.microsecond // 1000 * 1000) == instant(beat["currentTime"])
    assert [(c["connector_id"], c["transaction_id"]) for c in connectors_while_charging] == [
        (0, None), (1, started["transactionId"]), (2, None)
    ]
    assert bool(offline["online"]) is False
    assert offline["local_list_version"] == 9
    assert [(c["connector_id"], c["status"], c["error_code"], c["info"], c["vendor_error_code"], c["transaction_id"])
            for c in connectors] == [
        (0, "Available", "NoError", None, None, None),
        (1, "Preparing", "NoError", None, None, None),
        (2, "Faulted", "GroundFailure", "RCD tripped", "E42", None),
    ]
    assert instant(connectors[2]["status_timestamp"]) == instant("2025-02-01T10:02:00+01:00")
    # The state the auditor sees, replayed from the events, agrees with the read model.
    assert (state["online"], state["vendor"], state["model"], state["serialNumber"], state["firmwareVersion"]) == (
        False, "Acme", "Volt 22", "SN-7", "2.0.1"
    )
    assert (state["firmwareStatus"], state["diagnosticsStatus"], state["localListVersion"]) == (
        "Installed", "Uploaded", 9
    )
    assert instant(state["lastSeen"]) == instant(offline["last_seen"])
    assert {number: (c["status"], c["errorCode"], c["info"], c["vendorErrorCode"], c["transactionId"])
            for number, c in state["connectors"].items()} == {
        str(c["connector_id"]): (c["status"], c["error_code"], c["info"], c["vendor_error_code"], c["transaction_id"])
        for c in connectors
    }
    assert state["openTransactions"] == []


# ---- history: the events endpoint and state at a moment -----------------------------------


async def test_events_page_oldest_first_with_decoded_requests_and_replies(server, operator):
    await operator.register("RM-EVENTS")
    boot = {"chargePointVendor": "Acme", "chargePointModel": "Pager"}
    async with ChargePointClient(ws_base(server), "RM-EVENTS") as cp:
        booted = await cp.call("BootNotification", boot, message_id="ev-boot")
        beats = [await cp.call("Heartbeat", {}, message_id=f"ev-beat-{n}") for n in range(5)]
        await cp.call("DataTransfer", {"vendorId": "nobody", "data": "x"}, message_id="ev-dt")

    everything = await operator.events("RM-EVENTS")
    pages: list[list[dict[str, Any]]] = []
    after = 0
    while True:
        page = (await operator.get(f"/api/chargepoints/RM-EVENTS/events?after={after}&limit=3"))["events"]
        if not page:
            break
        pages.append(page)
        after = page[-1]["version"]

    assert [event["type"] for event in everything] == [
        "Registered", "Connected", "Booted", *["HeartbeatReceived"] * 5, "DataTransferReceived", "Disconnected",
    ]
    assert [event["version"] for event in everything] == list(range(1, 11))
    assert [len(page) for page in pages] == [3, 3, 3, 1]
    assert [event for page in pages for event in page] == everything
    stamps = [instant(event["timestamp"]) for event in everything]
    assert stamps == sorted(stamps)
    assert (await operator.get("/api/chargepoints/RM-EVENTS/events?after=4&limit=2"))["events"] == everything[4:6]
    assert (await operator.get("/api/chargepoints/RM-EVENTS/events?after=10"))["events"] == []
    boot_event = everything[2]["data"]
    assert (boot_event["messageId"], boot_event["request"], boot_event["reply"]) == ("ev-boot", boot, booted)
    assert [event["data"]["reply"] for event in everything[3:8]] == beats
    assert everything[8]["data"]["reply"] == {"status": "UnknownVendorId"}
    assert (await operator.request("GET", "/api/chargepoints/RM-NOBODY/events"))[0] == 404


async def test_state_at_a_moment_replays_the_history_up_to_then(server, operator):
    await operator.save_id_tag("AT-TAG", "Accepted")
    await operator.register("RM-AT")
    async with ChargePointClient(ws_base(server), "RM-AT") as cp:
        await cp.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "Then"})
        started = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "AT-TAG", "meterStart": 0,
                                                     "timestamp": "2025-03-01T10:00:00Z"})
        await cp.call("StopTransaction", {"transactionId": started["transactionId"], "meterStop": 10,
                                          "timestamp": "2025-03-01T10:30:00Z"})
    when = {event["type"]: instant(event["timestamp"]) for event in await operator.events("RM-AT")}

    async def state_at(moment: datetime) -> dict[str, Any]:
        return await operator.get(f"/api/chargepoints/RM-AT/state?at={quote(moment.isoformat())}")

    just_registered = await state_at(when["Registered"])
    before_boot = await state_at(when["Booted"] - timedelta(microseconds=1))
    after_boot = await state_at(when["Booted"])
    charging = await state_at(when["TransactionStarted"])
    now = await operator.get("/api/chargepoints/RM-AT/state")

    assert just_registered["eventsApplied"] == 1
    assert (just_registered["state"]["online"], just_registered["state"]["vendor"]) == (False, None)
    assert (before_boot["state"]["online"], before_boot["state"]["vendor"]) == (True, None)
    assert (after_boot["state"]["vendor"], after_boot["state"]["model"]) == ("Acme", "Then")
    assert after_boot["eventsApplied"] == before_boot["eventsApplied"] + 1
    assert charging["state"]["openTransactions"] == [started["transactionId"]]
    assert charging["state"]["connectors"]["1"]["transactionId"] == started["transactionId"]
    assert (now["state"]["online"], now["state"]["openTransactions"], now["state"]["vendor"]) == (False, [], "Acme")
    assert now["eventsApplied"] == len(await operator.events("RM-AT"))
    before = quote((when["Registered"] - timedelta(seconds=1)).isoformat())
    assert (await operator.request("GET", f"/api/chargepoints/RM-AT/state?at={before}"))[0] == 404
    assert (await operator.request("GET", "/api/chargepoints/RM-AT/state?at=soon"))[0] == 400
    assert (await operator.request("GET", "/api/chargepoints/RM-NOBODY/state"))[0] == 404


async def test_metrics_show_the_read_model_lag(server, operator):
    await operator.register("RM-METRICS")
    async with ChargePointClient(ws_base(server), "RM-METRICS") as cp:
        await cp.call("Heartbeat", {})
    await read_models_caught_up(operator)
    assert operator.session is not None
    # No token needed: a Prometheus scraper has none.
    async with operator.session.get(f"{server.http}/metrics", headers={"Authorization": ""}) as response:
        assert response.status == 200
        text = await response.text()

    assert "# TYPE csms_read_model_lag gauge" in text
    lag = re.search(r'^csms_read_model_lag\{node="[^"]+"\} (\d+)$', text, re.MULTILINE)
    position = re.search(r'^csms_read_model_position\{node="[^"]+"\} (\d+)$', text, re.MULTILINE)
    assert lag is not None and position is not None, text
    # Nothing was written since the read above waited for the read models.
    assert int(lag.group(1)) == 0
    assert int(position.group(1)) == newest_event(server.store)


# ---- read your own writes: waiting for lagging read models ---------------------------------------

LAG_LIMIT_SECONDS = 5  # README REST API: "503 if that takes over 5 s"


@pytest.fixture
def postgres_store(tmp_path: Any) -> Iterator[str]:
    """A fresh PostgreSQL database; asked for before server_factory, it is dropped after the servers stop."""
    with fresh_store("postgresql", tmp_path) as store:
        yield store


async def test_a_read_waits_for_lagging_read_models_and_answers_503_after_5_seconds(postgres_store, server_factory):
    """A real cause of lag: an analyst's transaction holds a read-model table locked.

    PostgreSQL only: on SQLite the read models share the file's one write lock
    with the event writer, so a lock held there stops the writes themselves and
    nothing lags behind them (the wait is the same code on both stores).
    """
    import psycopg

    server = server_factory.start(postgres_store)
    async with Operator(server.http) as operator:
        await operator.register("RM-LAG-BEFORE")
        before = {c["id"] for c in (await operator.get("/api/chargepoints"))["chargePoints"]}
        with psycopg.connect(postgres_store) as analyst:
            # Reads of cp_status go on; the status read model's writes wait for the lock.
            analyst.execute("LOCK TABLE cp_status IN EXCLUSIVE MODE")
            await operator.register("RM-LAG")  # committed: only the read models lag
            asked = time.monotonic()
            lagging_read = await operator.request("GET", "/api/chargepoints")
            waited = time.monotonic() - asked
            lag_metric = await metric(operator, server, "csms_read_model_lag")
            analyst.rollback()  # the lock goes: the read models catch up
        caught_up = {c["id"] for c in (await operator.get("/api/chargepoints"))["chargePoints"]}

    assert before == {"RM-LAG-BEFORE"}
    status, body = lagging_read
    assert status == 503, body
    assert body["error"] == "the read models are catching up; try again"
    # It waited for them first, and not for long beyond the 5 s (a generous bound, which
    # only a wait far past the promise breaks, not a slow machine).
    assert LAG_LIMIT_SECONDS * 0.99 <= waited < 4 * LAG_LIMIT_SECONDS
    assert body["lag"] == lag_metric == 1  # RM-LAG's Registered, committed and not yet applied
    assert caught_up == {"RM-LAG-BEFORE", "RM-LAG"}  # the same read, once the lag cleared


async def metric(operator: Operator, server: Any, name: str) -> int:
    assert operator.session is not None
    async with operator.session.get(f"{server.http}/metrics") as response:
        text = await response.text()
    found = re.search(rf'^{name}{{node="[^"]+"}} (\d+)$', text, re.MULTILINE)  # each node labels its own
    assert found is not None, text
    return int(found.group(1))


# ---- crashes and rebuilds ---------------------------------------------------------------------

CRASHERS = ("RM-CRASH-A", "RM-CRASH-B", "RM-CRASH-C")
SESSIONS_PER_CHARGE_POINT = 40


def rebuild(store: str) -> str:
    done = subprocess.run([sys.executable, "-m", "app", "projections", "rebuild", "--store", store],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_read_models_hold_every_acknowledged_transaction_after_a_crash(store_url, server_factory):
    server = server_factory.start(store_url)
    async with Operator(server.http) as operator:
        await asyncio.gather(*(operator.save_id_tag(f"CRASH-{number}", "Accepted")
                               for number in range(SESSIONS_PER_CHARGE_POINT * len(CRASHERS))))
        await operator.put("/api/tariffs/default", {"pricePerKwh": "0.50", "currency": "EUR"})
        for charge_point_id in CRASHERS:
            await operator.register(charge_point_id)
    clients = [ChargePointClient(ws_base(server), charge_point_id) for charge_point_id in CRASHERS]
    for client in clients:
        await client.connect()
    acknowledged: dict[int, dict[str, Any]] = {}

    async def session(client: ChargePointClient, number: int) -> None:
        id_tag = f"CRASH-{CRASHERS.index(client.id) * SESSIONS_PER_CHARGE_POINT + number}"  # never concurrent
        started = await client.call("StartTransaction", {
            "connectorId": number + 1, "idTag": id_tag, "meterStart": 1000 * number,
            "timestamp": f"2030-01-01T{number % 24:02d}:00:00Z"})
        acknowledged[started["transactionId"]] = {"chargePointId": client.id, "stopped": False}
        if number % 4 != 0:  # every fourth stays open
            await client.call("StopTransaction", {"transactionId": started["transactionId"],
                                                  "meterStop": 1000 * number + 500 + number,
                                                  "timestamp": f"2030-01-01T{number % 24:02d}:30:00Z"})
            acknowledged[started["transactionId"]]["stopped"] = True

    await asyncio.gather(*(session(client, number)
                           for number in range(SESSIONS_PER_CHARGE_POINT) for client in clients))
    server.kill()  # at once, whatever the read models had applied so far
    for client in clients:
        await client.close()

    server.start()
    async with Operator(server.http) as operator:
        found = {t["transactionId"]: t for t in (await operator.get("/api/transactions"))["transactions"]}
        days = (await operator.get("/api/analytics/daily"))["days"]
    server.stop()
    live = dump_read_models(store_url)
    position = read_model_position(store_url)
    rebuild(store_url)

    assert len(acknowledged) == SESSIONS_PER_CHARGE_POINT * len(CRASHERS)
    assert set(found) == set(acknowledged)
    for transaction_id, acked in acknowledged.items():
        bill = found[transaction_id]
        assert bill["chargePointId"] == acked["chargePointId"]
        assert bill["status"] == ("completed" if acked["stopped"] else "active"), bill
    stopped = [found[t] for t in acknowledged if acknowledged[t]["stopped"]]
    for bill in stopped:
        price = Decimal(bill["energyWh"]) / 1000 * Decimal("0.50")
        assert bill["cost"] == str(price.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))
    # Each session counted exactly once, though the crash cut the read models short.
    assert sum(day["sessions"] for day in days) == len(stopped)
    assert sum(day["energyWh"] for day in days) == sum(bill["energyWh"] for bill in stopped)
    # And the live tables, built across the crash, are what a rebuild from the events gives.
    assert dump_read_models(store_url) == live
    assert read_model_position(store_url) == position


async def test_rebuild_reproduces_the_live_read_models(store_url, server_factory):
    server = server_factory.start(store_url)
    async with Operator(server.http) as operator:
        await operator.save_id_tag("REBUILD-TAG", "Accepted", parent_id_tag="REBUILD-FLEET")
        await operator.register("RM-REBUILD-A", description="north")
        await operator.register("RM-REBUILD-B", description="south")
        await operator.put("/api/tariffs/default", {"sessionFee": "0.35", "pricePerKwh": "0.29", "currency": "EUR"})
        await operator.put("/api/chargepoints/RM-REBUILD-B/tariff", {"pricePerMinute": "0.07", "currency": "EUR"})
        async with ChargePointClient(ws_base(server), "RM-REBUILD-A") as a, \
                ChargePointClient(ws_base(server), "RM-REBUILD-B") as b:
            for cp in (a, b):
                await cp.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": cp.id})
                for connector_id in (0, 1, 2):
                    await cp.call("StatusNotification", {"connectorId": connector_id, "status": "Available",
                                                         "errorCode": "NoError"})
                await cp.call("FirmwareStatusNotification", {"status": "Downloading"})
            for number, cp in enumerate((a, b, a, b, a)):
                started = await cp.call("StartTransaction", {
                    "connectorId": 1 + number % 2, "idTag": "rebuild-tag", "meterStart": 100 * number,
                    "timestamp": f"2030-02-0{1 + number}T08:00:00+01:00"})
                await cp.call("StopTransaction", {"transactionId": started["transactionId"],
                                                  "meterStop": 100 * number + 3333,
                                                  "timestamp": f"2030-02-0{1 + number}T09:17:00+01:00"})
            # A second status for a connector: in a batch only the latest is written, and a deferred
            # status keeps the transactionId a start in the same batch wrote (connector 2 below).
            await a.call("StatusNotification", {"connectorId": 1, "status": "Available", "errorCode": "NoError",
                                                "timestamp": "2030-02-09T09:59:00Z"})
            await a.call("StopTransaction", {"transactionId": 999_000_001, "meterStop": 1,
                                             "timestamp": "2030-02-09T10:00:00Z"})
            backwards = await b.call("StartTransaction", {"connectorId": 2, "idTag": "REBUILD-TAG",
                                                          "meterStart": 9000, "timestamp": "2030-02-09T10:00:00Z"})
            await b.call("StopTransaction", {"transactionId": backwards["transactionId"], "meterStop": 10,
                                             "timestamp": "2030-02-09T11:00:00Z"})
            await a.call("StartTransaction", {"connectorId": 2, "idTag": "REBUILD-NOBODY", "meterStart": 0,
                                              "timestamp": "2030-02-10T10:00:00Z"})
        await operator.register("RM-REBUILD-C")
        still_connected = ChargePointClient(ws_base(server), "RM-REBUILD-C")
        await still_connected.connect()
        await still_connected.call("StatusNotification", {"connectorId": 1, "status": "Charging",
                                                          "errorCode": "NoError"})
    # Stopping records C's disconnection: a stopped server's read models include it.
    server.stop()
    await still_connected.close()
    live = dump_read_models(store_url)
    position = read_model_position(store_url)
    printed = rebuild(store_url)
    rebuilt = dump_read_models(store_url)

    assert re.fullmatch(r"rebuilt the read models from \d+ events\n", printed)
    expected_rows = {"cp_status": 3, "cp_connectors": 7, "billing_transactions": 7, "billing_unmatched_stops": 1,
                     "tariff_history": 2, "daily_usage": 6, "daily_utilisation_view": 6, "read_model_failures": 0}
    assert {table: len(live[table]) for table in expected_rows} == expected_rows
    assert rebuilt == live
    a_connectors = {row["connector_id"]: row for row in read_model_rows(
        store_url, "SELECT * FROM cp_connectors WHERE charge_point_id = ?", ("RM-REBUILD-A",))}
    assert a_connectors[1]["status_timestamp"] == "2030-02-09T09:59:00Z" and a_connectors[1]["transaction_id"] is None
    assert a_connectors[2]["status"] == "Available" and a_connectors[2]["transaction_id"] is not None
    assert read_model_position(store_url) == position == newest_event(store_url)
    # The analysts' queries in docs/read-models.md run, and agree with each other.
    answers = [read_model_rows(store_url, query) for query in documented_queries(store_url)]
    per_day, per_charge_point, flagged, revenue, unmatched, one_card, not_available, per_day_again = answers
    assert sum(row["sessions"] for row in per_day) == sum(row["sessions"] for row in per_day_again) == 6
    # A's unknown stop has no start, its refused start no stop: neither is a session.
    assert {row["charge_point_id"]: row["sessions"] for row in per_charge_point} == {
        "RM-REBUILD-A": 3, "RM-REBUILD-B": 3,
    }
    assert [row["flags"] for row in flagged] == ["meter_went_backwards"]  # A's unknown stop is no transaction
    assert [row["currency"] for row in revenue] == ["EUR"]
    assert [(row["charge_point_id"], row["reason"], row["stops"]) for row in unmatched] == [
        ("RM-REBUILD-A", "unknown_transaction", 1)
    ]
    assert len(one_card) == 6
    assert [(row["charge_point_id"], row["connector_id"]) for row in not_available] == [("RM-REBUILD-C", 1)]


async def test_two_nodes_on_one_store_apply_every_event_once(store_url, server_factory):
    first = server_factory.start(store_url)
    async with Operator(first.http) as operator:
        for number in range(10):
            await operator.save_id_tag(f"NODE-TAG-{number}", "Accepted")
        await operator.register("RM-NODE-1")
        await operator.register("RM-NODE-2")
    second = server_factory.start(store_url)  # a second node: its own follower, the same read-model tables
    async with ChargePointClient(ws_base(first), "RM-NODE-1") as one, \
            ChargePointClient(ws_base(second), "RM-NODE-2") as two:
        for number in range(10):
            cp = (one, two)[number % 2]
            started = await cp.call("StartTransaction", {"connectorId": 1, "idTag": f"NODE-TAG-{number}",
                                                         "meterStart": 0, "timestamp": f"2030-03-01T0{number}:00:00Z"})
            await cp.call("StopTransaction", {"transactionId": started["transactionId"], "meterStop": 100 + number,
                                              "timestamp": f"2030-03-01T0{number}:30:00Z"})
    days = {}
    for node, charge_point_id in ((first, "RM-NODE-1"), (second, "RM-NODE-2")):
        async with Operator(node.http) as operator:
            daily = await operator.get(f"/api/analytics/daily?chargePointId={charge_point_id}")
            days[charge_point_id] = daily["days"]
            bills = (await operator.get(f"/api/transactions?chargePointId={charge_point_id}"))["transactions"]
            assert [bill["status"] for bill in bills] == ["completed"] * 5

    assert [(d["sessions"], d["energyWh"]) for d in days["RM-NODE-1"]] == [(5, 100 + 102 + 104 + 106 + 108)]
    assert [(d["sessions"], d["energyWh"]) for d in days["RM-NODE-2"]] == [(5, 101 + 103 + 105 + 107 + 109)]
    assert read_model_rows(store_url, "SELECT * FROM read_model_failures") == []


async def test_an_id_tag_saved_on_one_node_authorizes_on_another(store_url, server_factory):
    first = server_factory.start(store_url)
    async with Operator(first.http) as operator:
        await operator.register("RM-NODE-AUTH")
    second = server_factory.start(store_url)  # started before the tag exists
    async with Operator(first.http) as operator:
        await operator.save_id_tag("LATE-TAG", "Accepted")
    async with ChargePointClient(ws_base(second), "RM-NODE-AUTH") as cp:
        # The second node learns of the change by following the store (within a
        # second); wait for that documented propagation, bounded, not for a guess.
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            answer = await cp.call("Authorize", {"idTag": "late-tag"})
            if answer["idTagInfo"]["status"] == "Accepted" or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.1)
    assert answer["idTagInfo"]["status"] == "Accepted"


# ---- several nodes on one PostgreSQL database --------------------------------------------------

PROPAGATION_DEADLINE = 15.0  # README: changes reach the other nodes "within about a second"


async def on_the_other_node(probe: Any) -> Any:
    """Probes another node until what it answers holds, failing after PROPAGATION_DEADLINE seconds."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + PROPAGATION_DEADLINE
    while not (found := await probe()):
        assert loop.time() < give_up, "the change never reached the other node"
        await asyncio.sleep(0.1)
    return found


def at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_a_tariff_set_on_one_node_prices_the_sessions_of_another(postgres_store, server_factory):
    node_a = server_factory.start(postgres_store)
    node_b = server_factory.start(postgres_store)  # running before the tariff exists
    async with Operator(node_a.http) as on_a, Operator(node_b.http) as on_b:
        await on_a.save_id_tag("NODE-TARIFF-TAG", "Accepted")
        await on_a.register("RM-NODE-TARIFF")
        await on_a.register("RM-NODE-ELSEWHERE")  # B never hears of it but through the store
        tariff = {"pricePerKwh": "0.40", "pricePerMinute": "0.00", "sessionFee": "1.00", "currency": "EUR"}
        set_on_a = await on_a.put("/api/tariffs/default", tariff)
        in_force_on_a = dict(tariff, effectiveFrom=set_on_a["effectiveFrom"])

        async def b_knows_it() -> bool:
            return (await on_b.get("/api/tariffs"))["tariffs"].get("default") == in_force_on_a

        await on_the_other_node(b_knows_it)
        start = instant(set_on_a["effectiveFrom"]) + timedelta(minutes=1)
        async with ChargePointClient(ws_base(node_b), "RM-NODE-TARIFF") as cp:
            started = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "NODE-TARIFF-TAG",
                                                         "meterStart": 1000, "timestamp": at(start)})
            await cp.call("StopTransaction", {"transactionId": started["transactionId"], "meterStop": 13345,
                                              "timestamp": at(start + timedelta(minutes=30))})
        bill = await on_b.get(f"/api/transactions/{started['transactionId']}")
        rollout_on_b = await on_b.get("/api/firmware/rollout")  # lists A's registration too
        # And back: a charge point's own tariff set on B is what A serves.
        own = {"pricePerKwh": "0.10", "pricePerMinute": "0.00", "sessionFee": "0.00", "currency": "EUR"}
        set_on_b = await on_b.put("/api/chargepoints/RM-NODE-TARIFF/tariff", own)

        async def a_knows_both() -> Any:
            tariffs = (await on_a.get("/api/tariffs"))["tariffs"]
            return tariffs if "RM-NODE-TARIFF" in tariffs else None

        on_a_later = await on_the_other_node(a_knows_both)

    assert (bill["energyWh"], bill["currency"]) == (12345, "EUR")
    assert bill["cost"] == "5.94"  # 1.00 + 12.345 kWh x 0.40, to the cent
    assert [row["chargePointId"] for row in rollout_on_b["chargePoints"]] == ["RM-NODE-ELSEWHERE", "RM-NODE-TARIFF"]
    assert on_a_later == {"default": in_force_on_a,
                          "RM-NODE-TARIFF": dict(own, effectiveFrom=set_on_b["effectiveFrom"])}


async def test_an_id_tag_blocked_on_one_node_is_blocked_on_another(postgres_store, server_factory):
    node_a = server_factory.start(postgres_store)
    node_b = server_factory.start(postgres_store)
    async with Operator(node_a.http) as on_a:
        await on_a.register("RM-NODE-BLOCK")
        await on_a.save_id_tag("NODE-BLOCK-TAG", "Accepted")
        async with ChargePointClient(ws_base(node_b), "RM-NODE-BLOCK") as cp:

            def authorized_as(status: str) -> Any:
                async def probe() -> bool:
                    answer = await cp.call("Authorize", {"idTag": "node-block-tag"})
                    return bool(answer["idTagInfo"]["status"] == status)
                return probe

            await on_the_other_node(authorized_as("Accepted"))  # B knows the tag
            await on_a.save_id_tag("NODE-BLOCK-TAG", "Blocked")
            await on_the_other_node(authorized_as("Blocked"))
            started = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "NODE-BLOCK-TAG",
                                                         "meterStart": 0, "timestamp": at(datetime.now(UTC))})

    assert started["idTagInfo"]["status"] == "Blocked"


async def test_a_password_set_on_one_node_is_required_by_another(postgres_store, server_factory):
    # What a handshake is held to (password, security profile) is kept per node: another node's change
    # reaches it within seconds (adapters/service/admission_facts.py KEEP_FOR).
    node_a = server_factory.start(postgres_store)
    node_b = server_factory.start(postgres_store)
    async with Operator(node_a.http) as on_a:
        await on_a.register("RM-NODE-PASSWORD")
        async with ChargePointClient(ws_base(node_b), "RM-NODE-PASSWORD") as cp:  # B keeps "no password"
            await cp.call("Heartbeat", {})
        await on_a.register("RM-NODE-PASSWORD", password="a-password-set-on-a")

        async def refused_without_it() -> bool:
            try:
                async with ChargePointClient(ws_base(node_b), "RM-NODE-PASSWORD"):
                    return False
            except aiohttp.WSServerHandshakeError as refused:
                return refused.status == 401

        await on_the_other_node(refused_without_it)
        async with ChargePointClient(ws_base(node_b), "RM-NODE-PASSWORD", password="a-password-set-on-a") as cp:
            assert (await cp.call("Heartbeat", {}))["currentTime"]
