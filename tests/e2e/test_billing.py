"""The billing read model through the API: cost, tariffs, offline transactions,
oddities, filters, CSV export and the daily aggregate, on both stores.

One server per store kind serves the module. Each test uses its own charge
points and id tags. Charge point tariffs take effect "now", so the sessions
billed with them are dated in 2030; only one test touches the default tariff
for sessions dated between its own tariff changes.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from typing import Any, AsyncIterator

import pytest

from tests.conftest import ROOT
from tests.ocpp_client import (
    ChargePointClient,
    Operator,
    event_field,
    exchanges,
    instant,
    read_model_rows,
    registered,
    shared_server,
    ws_base,
)

server = shared_server()


@pytest.fixture
async def operator(server: Any) -> AsyncIterator[Operator]:
    async with Operator(server.http) as operator:
        yield operator


async def charge(cp: ChargePointClient, id_tag: str, start: str, stop: str, meter_start: int, meter_stop: int,
                 connector_id: int = 1, **stop_fields: Any) -> int:
    """One whole session; returns its transactionId."""
    started = await cp.call("StartTransaction", {"connectorId": connector_id, "idTag": id_tag,
                                                 "meterStart": meter_start, "timestamp": start})
    transaction_id = int(started["transactionId"])
    await cp.call("StopTransaction", {"transactionId": transaction_id, "meterStop": meter_stop, "timestamp": stop,
                                      **stop_fields})
    return transaction_id


async def transactions(operator: Operator, query: str) -> list[dict[str, Any]]:
    return (await operator.get(f"/api/transactions?{query}"))["transactions"]


# ---- cost ------------------------------------------------------------------------------


async def test_cost_uses_each_tariff_part_alone_and_combined_in_exact_decimals(server, operator):
    await operator.save_id_tag("COST-TAG", "Accepted")
    tariffs = {
        # 12.345 kWh x 0.30 = 3.7035
        "COST-KWH": {"pricePerKwh": "0.30", "currency": "EUR"},
        # 90.5 minutes x 0.05 = 4.525, half to even: 4.52
        "COST-MIN": {"pricePerMinute": "0.05", "currency": "EUR"},
        # a fee alone, whatever the energy and time
        "COST-FEE": {"sessionFee": "1.50", "currency": "GBP"},
        # 0.1 + 1 kWh x 0.2 + 1 minute x 0.005 = 0.305 -> 0.30; binary floats make it 0.30500000000000005 -> 0.31
        "COST-ALL": {"sessionFee": 0.1, "pricePerKwh": 0.2, "pricePerMinute": 0.005, "currency": "usd"},
        # 1 kWh x 1.015 = 1.015 -> 1.02 (half to even); the float 1.015 is 1.01499... -> 1.01
        "COST-HALF": {"pricePerKwh": "1.015", "currency": "EUR"},
    }
    sessions = {
        "COST-KWH": ("2030-06-01T10:00:00Z", "2030-06-01T10:47:00Z", 1000, 13345),
        "COST-MIN": ("2030-06-01T10:00:00Z", "2030-06-01T11:30:30Z", 500, 500),
        "COST-FEE": ("2030-06-01T10:00:00Z", "2030-06-01T10:10:00Z", 0, 5000),
        "COST-ALL": ("2030-06-01T10:00:00.000Z", "2030-06-01T10:01:00.000Z", 7000, 8000),
        "COST-HALF": ("2030-06-01T10:00:00Z", "2030-06-01T10:00:30Z", 0, 1000),
    }
    ids = {}
    for charge_point_id, tariff in tariffs.items():
        await operator.register(charge_point_id)
        accepted = await operator.put(f"/api/chargepoints/{charge_point_id}/tariff", tariff)
        assert accepted["scope"] == charge_point_id
        async with ChargePointClient(ws_base(server), charge_point_id) as cp:
            ids[charge_point_id] = await charge(cp, "COST-TAG", *sessions[charge_point_id])

    bills = {cp: await operator.get(f"/api/transactions/{ids[cp]}") for cp in tariffs}
    assert {cp: (bill["cost"], bill["currency"]) for cp, bill in bills.items()} == {
        "COST-KWH": ("3.70", "EUR"),
        "COST-MIN": ("4.52", "EUR"),
        "COST-FEE": ("1.50", "GBP"),
        "COST-ALL": ("0.30", "USD"),
        "COST-HALF": ("1.02", "EUR"),
    }
    assert [bills[cp]["energyWh"] for cp in tariffs] == [12345, 0, 5000, 1000, 1000]
    assert [bills[cp]["durationSeconds"] for cp in tariffs] == [2820, 5430, 600, 60, 30]
    assert all(bill["status"] == "completed" and bill["flags"] == [] for bill in bills.values())
    # Prices are kept as exact decimal text, floats included.
    book = (await operator.get("/api/tariffs"))["tariffs"]
    assert {name: book["COST-ALL"][name] for name in ("sessionFee", "pricePerKwh", "pricePerMinute", "currency")} \
        == {"sessionFee": "0.1", "pricePerKwh": "0.2", "pricePerMinute": "0.005", "currency": "USD"}
    assert book["COST-KWH"]["pricePerMinute"] == book["COST-KWH"]["sessionFee"] == "0"
    # Analysts read the same numbers, and which tariff billed each session.
    rows = read_model_rows(server.store, "SELECT transaction_id, cost, tariff_scope FROM billing_transactions"
                                         " WHERE charge_point_id LIKE ? ORDER BY transaction_id", ("COST-%",))
    assert {row["tariff_scope"]: Decimal(str(row["cost"])) for row in rows} == {
        cp: Decimal(bills[cp]["cost"]) for cp in tariffs
    }


async def test_a_tariff_that_cannot_bill_is_refused(server, operator):
    await operator.register("COST-BAD")
    for body in ({"pricePerKwh": "-1", "currency": "EUR"}, {"pricePerKwh": "abc", "currency": "EUR"},
                 {"pricePerKwh": "0.3"}, {"pricePerKwh": True, "currency": "EUR"}):
        status, reply = await operator.request("PUT", "/api/chargepoints/COST-BAD/tariff", body)
        assert status == 422, (body, reply)
    status, _ = await operator.request("PUT", "/api/chargepoints/COST-NOBODY/tariff",
                                       {"pricePerKwh": "1", "currency": "EUR"})
    assert status == 404
    assert "COST-BAD" not in (await operator.get("/api/tariffs"))["tariffs"]


async def test_a_charge_point_tariff_overrides_the_default(server, operator):
    await operator.save_id_tag("OWN-TAG", "Accepted")
    await operator.register("OWN-TARIFF")
    await operator.register("OWN-DEFAULT")
    default = await operator.put("/api/tariffs/default", {"pricePerKwh": "1.00", "currency": "EUR"})
    own = await operator.put("/api/chargepoints/OWN-TARIFF/tariff", {"pricePerKwh": "0.50", "currency": "CHF"})
    async with ChargePointClient(ws_base(server), "OWN-TARIFF") as cp:
        own_id = await charge(cp, "OWN-TAG", "2030-07-01T10:00:00Z", "2030-07-01T11:00:00Z", 0, 2000)
    async with ChargePointClient(ws_base(server), "OWN-DEFAULT") as cp:
        default_id = await charge(cp, "OWN-TAG", "2030-07-01T10:00:00Z", "2030-07-01T11:00:00Z", 0, 2000)

    assert (default["scope"], own["scope"]) == ("default", "OWN-TARIFF")
    book = (await operator.get("/api/tariffs"))["tariffs"]
    assert (book["default"]["pricePerKwh"], book["OWN-TARIFF"]["pricePerKwh"]) == ("1.00", "0.50")
    own_bill = await operator.get(f"/api/transactions/{own_id}")
    default_bill = await operator.get(f"/api/transactions/{default_id}")
    assert (own_bill["cost"], own_bill["currency"]) == ("1.00", "CHF")
    assert (default_bill["cost"], default_bill["currency"]) == ("2.00", "EUR")
    scopes = read_model_rows(server.store, "SELECT transaction_id, tariff_scope FROM billing_transactions"
                                           " WHERE transaction_id IN (?, ?)", (own_id, default_id))
    assert {row["transaction_id"]: row["tariff_scope"] for row in scopes} == {
        own_id: "OWN-TARIFF", default_id: "default"
    }
    history = read_model_rows(server.store, "SELECT * FROM tariff_history WHERE scope = ?", ("OWN-TARIFF",))
    assert len(history) == 1
    assert instant(history[0]["effective_from"]) == instant(own["effectiveFrom"])
    assert (Decimal(str(history[0]["price_per_kwh"])), history[0]["currency"]) == (Decimal("0.50"), "CHF")


async def test_a_charge_point_named_default_cannot_replace_the_default_tariff(server, operator):
    await operator.register("default")
    before = (await operator.get("/api/tariffs"))["tariffs"].get("default")

    status, reply = await operator.request("PUT", "/api/chargepoints/default/tariff",
                                           {"pricePerKwh": "9.99", "currency": "SEK"})

    assert status == 409, reply
    assert (await operator.get("/api/tariffs"))["tariffs"].get("default") == before


# ---- offline transactions ------------------------------------------------------------------


async def test_an_offline_transaction_is_billed_with_its_own_timestamps_and_the_tariff_then_in_force(server, operator):
    await operator.save_id_tag("OFFLINE-TAG", "Accepted")
    first = await operator.put("/api/tariffs/default", {"pricePerKwh": "0.40", "currency": "EUR"})
    second = await operator.put("/api/tariffs/default", {"pricePerKwh": "0.60", "currency": "EUR"})
    under_first = instant(first["effectiveFrom"])
    under_second = instant(second["effectiveFrom"])
    assert under_first < under_second
    async with await registered(server, operator, "OFFLINE-CP") as cp:
        # Sent after the second tariff took effect, back-dated to when the first was in force.
        late = await charge(cp, "OFFLINE-TAG", under_first.isoformat(), (under_first + timedelta(hours=1)).isoformat(),
                            10_000, 20_000)
        current = await charge(cp, "OFFLINE-TAG", under_second.isoformat(),
                               (under_second + timedelta(minutes=30)).isoformat(), 20_000, 30_000)
        before_any_tariff = await charge(cp, "OFFLINE-TAG", "2020-03-01T08:00:00Z", "2020-03-01T09:15:00Z",
                                         30_000, 31_000)

    late_bill = await operator.get(f"/api/transactions/{late}")
    assert (late_bill["cost"], late_bill["currency"]) == ("4.00", "EUR")
    assert instant(late_bill["startTimestamp"]) == under_first
    assert instant(late_bill["stopTimestamp"]) == under_first + timedelta(hours=1)
    assert late_bill["durationSeconds"] == 3600
    assert (await operator.get(f"/api/transactions/{current}"))["cost"] == "6.00"
    old = await operator.get(f"/api/transactions/{before_any_tariff}")
    # No tariff was in force in 2020: nothing to bill with, so no cost rather than a made-up one.
    assert (old["cost"], old["currency"], old["status"]) == (None, None, "completed")
    assert (instant(old["startTimestamp"]), old["durationSeconds"], old["energyWh"]) == (
        instant("2020-03-01T08:00:00Z"), 4500, 1000
    )
    days = (await operator.get("/api/analytics/daily?chargePointId=OFFLINE-CP&until=2021-01-01"))["days"]
    assert [(day["day"], day["sessions"], day["energyWh"]) for day in days] == [("2020-03-01", 1, 1000)]


async def test_timestamps_with_an_offset_count_as_the_instant_they_name(server, operator):
    await operator.save_id_tag("ZONE-TAG", "Accepted")
    async with await registered(server, operator, "ZONE-CP") as cp:
        # 00:30 in UTC+02:00 is 22:30 UTC the day before.
        zoned = await charge(cp, "ZONE-TAG", "2024-03-02T00:30:00+02:00", "2024-03-02T01:30:00+02:00", 0, 1000)
        utc = await charge(cp, "ZONE-TAG", "2024-03-01T23:00:00Z", "2024-03-01T23:30:00Z", 1000, 1500)

    bill = await operator.get(f"/api/transactions/{zoned}")
    assert instant(bill["startTimestamp"]) == instant("2024-03-01T22:30:00Z")
    assert bill["durationSeconds"] == 3600
    in_order = await transactions(operator, "chargePointId=ZONE-CP")
    assert [t["transactionId"] for t in in_order] == [zoned, utc]
    after_2245 = await transactions(operator, "chargePointId=ZONE-CP&since=2024-03-01T22:45:00Z")
    assert [t["transactionId"] for t in after_2245] == [utc]
    before_2245 = await transactions(operator, "chargePointId=ZONE-CP&until=2024-03-01T22:45:00Z")
    assert [t["transactionId"] for t in before_2245] == [zoned]
    days = (await operator.get("/api/analytics/daily?chargePointId=ZONE-CP"))["days"]
    assert [(day["day"], day["sessions"], day["energyWh"]) for day in days] == [("2024-03-01", 2, 1500)]


# ---- energy and oddities -------------------------------------------------------------------


async def test_kwh_meter_values_are_recorded_and_billed_energy_comes_from_the_wh_registers(server, operator):
    await operator.save_id_tag("KWH-TAG", "Accepted")
    await operator.register("KWH-CP")
    await operator.put("/api/chargepoints/KWH-CP/tariff", {"pricePerKwh": "0.20", "currency": "EUR"})
    async with ChargePointClient(ws_base(server), "KWH-CP") as cp:
        started = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "KWH-TAG", "meterStart": 2000,
                                                     "timestamp": "2030-08-01T10:00:00Z"})
        transaction_id = started["transactionId"]
        meter_values = {"connectorId": 1, "transactionId": transaction_id, "meterValue": [
            {"timestamp": "2030-08-01T10:30:00Z", "sampledValue": [
                {"value": "2.5", "unit": "kWh", "measurand": "Energy.Active.Import.Register"}]},
            {"timestamp": "2030-08-01T10:45:00Z", "sampledValue": [{"value": "3.75", "unit": "kWh"}]},
        ]}
        await cp.call("MeterValues", meter_values, message_id="kwh-mv")
        active = await operator.get(f"/api/transactions/{transaction_id}")
        await cp.call("StopTransaction", {
            "transactionId": transaction_id, "meterStop": 4250, "timestamp": "2030-08-01T11:00:00Z",
            "transactionData": [{"timestamp": "2030-08-01T11:00:00Z", "sampledValue": [
                {"value": "4.25", "unit": "kWh", "context": "Transaction.End"}]}],
        }, message_id="kwh-stop")

    assert (active["status"], active["meterStop"], active["energyWh"], active["cost"]) == ("active", None, None, None)
    recorded = exchanges(await operator.events("KWH-CP"))
    assert event_field(recorded["kwh-mv"], "request") == meter_values
    assert [Decimal(str(r["energyWh"])) for r in event_field(recorded["kwh-mv"], "energyReadings")] == [
        Decimal(2500), Decimal(3750)
    ]
    bill = await operator.get(f"/api/transactions/{transaction_id}")
    assert (bill["meterStart"], bill["meterStop"], bill["energyWh"], bill["cost"]) == (2000, 4250, 2250, "0.45")


async def test_a_retried_stop_counts_once_and_oddities_are_flagged_rows(server, operator):
    await operator.save_id_tag("ODD-TAG", "Accepted")
    await operator.register("ODD-CP")
    await operator.put("/api/chargepoints/ODD-CP/tariff", {"sessionFee": "2.00", "currency": "EUR"})
    async with ChargePointClient(ws_base(server), "ODD-CP") as cp:
        normal = (await cp.call("StartTransaction", {"connectorId": 1, "idTag": "ODD-TAG", "meterStart": 100,
                                                     "timestamp": "2030-09-01T08:00:00Z"}))["transactionId"]
        stop = {"transactionId": normal, "meterStop": 1100, "timestamp": "2030-09-01T09:00:00Z",
                "reason": "EVDisconnected"}
        await cp.call("StopTransaction", stop, message_id="odd-stop")
        await cp.call("StopTransaction", stop, message_id="odd-stop-retried")
        unknown = 987_650_001
        await cp.call("StopTransaction", {"transactionId": unknown, "meterStop": 777,
                                          "timestamp": "2030-09-01T09:30:00Z", "idTag": "ODD-TAG"})
        backwards = await charge(cp, "ODD-TAG", "2030-09-01T10:00:00Z", "2030-09-01T10:20:00Z", 9000, 8000,
                                 connector_id=2)
        refused = (await cp.call("StartTransaction", {"connectorId": 3, "idTag": "ODD-NOBODY", "meterStart": 0,
                                                      "timestamp": "2030-09-01T11:00:00Z"}))["transactionId"]
        refused_while_open = await operator.get(f"/api/transactions/{refused}")
        still_open = (await cp.call("StartTransaction", {"connectorId": 4, "idTag": "ODD-TAG", "meterStart": 0,
                                                         "timestamp": "2030-09-01T12:00:00Z"}))["transactionId"]
        await cp.call("StopTransaction", {"transactionId": refused, "meterStop": 10,
                                          "timestamp": "2030-09-01T11:05:00Z"})

    bill = await operator.get(f"/api/transactions/{normal}")
    assert (bill["status"], bill["flags"], bill["energyWh"], bill["cost"], bill["stopReason"]) == (
        "completed", [], 1000, "2.00", "EVDisconnected"
    )
    # The unknown stop takes no transaction id: the operator finds it among the unmatched stops.
    assert (await operator.request("GET", f"/api/transactions/{unknown}"))[0] == 404
    [ghost] = (await operator.get("/api/transactions/unmatched-stops?chargePointId=ODD-CP"))["unmatchedStops"]
    assert (ghost["transactionId"], ghost["reason"], ghost["meterStop"], ghost["idTag"]) == (
        unknown, "unknown_transaction", 777, "ODD-TAG"
    )
    assert instant(ghost["stopTimestamp"]) == instant("2030-09-01T09:30:00Z")
    went_back = await operator.get(f"/api/transactions/{backwards}")
    assert (went_back["status"], went_back["flags"], went_back["energyWh"]) == (
        "flagged", ["meter_went_backwards"], 0
    )
    assert (refused_while_open["status"], refused_while_open["flags"], refused_while_open["idTagStatus"]) == (
        "active", ["id_tag_not_accepted"], "Invalid"
    )
    assert (await operator.get(f"/api/transactions/{refused}"))["status"] == "flagged"
    by_status = {}
    for status in ("active", "completed", "flagged"):
        found = await transactions(operator, f"chargePointId=ODD-CP&status={status}")
        by_status[status] = [t["transactionId"] for t in found]
    assert by_status["active"] == [still_open]
    assert by_status["completed"] == [normal]
    assert sorted(by_status["flagged"]) == sorted([backwards, refused])
    # The retried stop did not count the session twice; the unknown stop is not a session.
    days = (await operator.get("/api/analytics/daily?chargePointId=ODD-CP"))["days"]
    assert [(day["day"], day["sessions"], day["energyWh"]) for day in days] == [("2030-09-01", 3, 1000 + 0 + 10)]
    status, reply = await operator.request("GET", "/api/transactions?status=finished")
    assert status == 400, reply
    assert (await operator.request("GET", "/api/transactions/987650999"))[0] == 404
    assert (await operator.request("GET", "/api/transactions/abc"))[0] == 400


async def test_numbers_no_column_can_hold_are_flagged_and_every_read_model_keeps_working(server, operator):
    await operator.save_id_tag("HUGE-TAG", "Accepted")
    await operator.save_id_tag("HUGE-FINE", "Accepted")
    uint64_minus_one, uint32_minus_one = 2**64 - 1, 2**32 - 1  # what uninitialised registers send
    async with await registered(server, operator, "HUGE-CP") as cp:
        await cp.call("StatusNotification", {"connectorId": 2**40, "status": "Available", "errorCode": "NoError"})
        broken_start = (await cp.call("StartTransaction", {
            "connectorId": 1, "idTag": "HUGE-TAG", "meterStart": uint64_minus_one,
            "timestamp": "2030-12-01T10:00:00Z"}))["transactionId"]
        await cp.call("StopTransaction", {"transactionId": broken_start, "meterStop": 5,
                                          "timestamp": "2030-12-01T11:00:00Z"})
        broken_stop = await charge(cp, "HUGE-TAG", "2030-12-01T12:00:00Z", "2030-12-01T13:00:00Z", 0,
                                   uint64_minus_one, connector_id=2)
        implausible = await charge(cp, "HUGE-TAG", "2030-12-01T14:00:00Z", "2030-12-01T15:00:00Z", 0, 2**63 - 1)
        reserved = (await cp.call("StartTransaction", {
            "connectorId": 3, "idTag": "HUGE-TAG", "meterStart": 0, "reservationId": uint32_minus_one,
            "timestamp": "2030-12-01T16:00:00Z"}))["transactionId"]
        await cp.call("StopTransaction", {"transactionId": uint64_minus_one, "meterStop": uint64_minus_one,
                                          "timestamp": "2030-12-01T17:00:00Z"})
        fine = await charge(cp, "HUGE-FINE", "2030-12-01T18:00:00Z", "2030-12-01T19:00:00Z", 100, 600, connector_id=4)

    bills = {t["transactionId"]: t for t in await transactions(operator, "chargePointId=HUGE-CP")}
    assert set(bills) == {broken_start, broken_stop, implausible, reserved, fine}
    for transaction_id in (broken_start, broken_stop, implausible):
        bill = bills[transaction_id]
        assert (bill["status"], bill["flags"], bill["energyWh"]) == ("flagged", ["meter_out_of_range"], 0), bill
    assert bills[broken_start]["meterStart"] is None and bills[broken_stop]["meterStop"] is None
    assert bills[reserved]["reservationId"] == uint32_minus_one
    assert (bills[fine]["status"], bills[fine]["energyWh"]) == ("completed", 500)
    connectors = (await operator.get("/api/chargepoints/HUGE-CP"))["connectors"]
    assert connectors["4"]["transactionId"] is None
    days = (await operator.get("/api/analytics/daily?chargePointId=HUGE-CP"))["days"]
    assert [(day["sessions"], day["energyWh"]) for day in days] == [(4, 500)]


async def test_a_stop_for_another_charge_points_transaction_does_not_bill_it(server, operator):
    await operator.save_id_tag("FOREIGN-TAG", "Accepted")
    async with await registered(server, operator, "FOREIGN-OWNER") as owner, \
            await registered(server, operator, "FOREIGN-OTHER") as other:
        started = await owner.call("StartTransaction", {"connectorId": 1, "idTag": "FOREIGN-TAG", "meterStart": 0,
                                                        "timestamp": "2030-10-01T08:00:00Z"})
        transaction_id = started["transactionId"]
        await other.call("StopTransaction", {"transactionId": transaction_id, "meterStop": 50_000,
                                             "timestamp": "2030-10-01T08:05:00Z"}, message_id="foreign-stop")
        after_foreign_stop = await operator.get(f"/api/transactions/{transaction_id}")
        await owner.call("StopTransaction", {"transactionId": transaction_id, "meterStop": 3000,
                                             "timestamp": "2030-10-01T09:00:00Z"})

    recorded = exchanges(await operator.events("FOREIGN-OTHER"))["foreign-stop"]
    assert "unknown_transaction" in event_field(recorded, "flags")
    # The other charge point never had this transaction: its stop must not end or bill it.
    assert (after_foreign_stop["status"], after_foreign_stop["chargePointId"], after_foreign_stop["meterStop"]) == (
        "active", "FOREIGN-OWNER", None
    )
    bill = await operator.get(f"/api/transactions/{transaction_id}")
    assert (bill["status"], bill["meterStop"], bill["energyWh"]) == ("completed", 3000, 3000)
    assert await transactions(operator, "chargePointId=FOREIGN-OTHER") == []
    # The operator sees it among the unmatched stops, with whose transaction it named.
    [foreign] = (await operator.get("/api/transactions/unmatched-stops?chargePointId=FOREIGN-OTHER"))["unmatchedStops"]
    assert (foreign["transactionId"], foreign["reason"], foreign["ownerChargePointId"], foreign["meterStop"]) == (
        transaction_id, "other_charge_points_transaction", "FOREIGN-OWNER", 50_000
    )
    assert (await operator.get("/api/analytics/daily?chargePointId=FOREIGN-OTHER"))["days"] == []


def rebuild(store: str) -> None:
    done = subprocess.run([sys.executable, "-m", "app", "projections", "rebuild", "--store", store],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


async def test_a_stop_of_an_id_not_yet_issued_never_takes_the_session_it_is_then_issued_to(store_url, server_factory):
    server = server_factory.start(store_url)
    async with Operator(server.http) as operator:
        await operator.save_id_tag("TAKE-TAG", "Accepted")
        await operator.put("/api/tariffs/default", {"pricePerKwh": "0.30", "currency": "EUR"})
        async with await registered(server, operator, "TAKE-A") as a, \
                await registered(server, operator, "TAKE-B") as b:
            earlier = await charge(a, "TAKE-TAG", "2030-11-01T08:00:00Z", "2030-11-01T08:10:00Z", 0, 1000)
            issued_next = earlier + 1  # ids are sequential: anyone can guess the next one
            answer = await b.call("StopTransaction", {"transactionId": issued_next, "meterStop": 7,
                                                      "timestamp": "2030-11-01T09:00:00Z", "idTag": "TAKE-TAG"},
                                  message_id="guessed-stop")
            started = await a.call("StartTransaction", {"connectorId": 1, "idTag": "TAKE-TAG", "meterStart": 1000,
                                                        "timestamp": "2030-11-01T10:00:00Z"})
            assert started["transactionId"] == issued_next
            # B stops A's session while it runs: that must not end it either.
            await b.call("StopTransaction", {"transactionId": issued_next, "meterStop": 9,
                                             "timestamp": "2030-11-01T10:30:00Z", "reason": "Remote"},
                         message_id="foreign-stop")
            await a.call("StopTransaction", {"transactionId": issued_next, "meterStop": 51_000,
                                             "timestamp": "2030-11-01T12:00:00Z", "reason": "EVDisconnected"})

        async def what_the_operator_sees() -> list[Any]:
            return [
                await operator.get(f"/api/transactions/{issued_next}"),
                await operator.get(f"/api/transactions/unmatched-stops?transactionId={issued_next}"),
                await transactions(operator, "chargePointId=TAKE-B"),
                await operator.get("/api/transactions/unmatched-stops?chargePointId=TAKE-A"),
                (await operator.get("/api/analytics/daily?chargePointId=TAKE-A"))["days"],
            ]

        live = await what_the_operator_sees()
        recorded = exchanges(await operator.events("TAKE-B"))
    # Answered per OCPP (a stop is never refused) and kept in B's history, flagged.
    assert answer == {"idTagInfo": {"status": "Accepted"}}
    for message_id in ("guessed-stop", "foreign-stop"):
        assert event_field(recorded[message_id], "flags") == ["unknown_transaction"]

    bill, unmatched, b_transactions, a_unmatched, a_days = live
    assert (bill["chargePointId"], bill["connectorId"], bill["meterStart"], bill["meterStop"]) == (
        "TAKE-A", 1, 1000, 51_000
    )
    assert (bill["status"], bill["flags"], bill["energyWh"], bill["durationSeconds"], bill["stopReason"]) == (
        "completed", [], 50_000, 7200, "EVDisconnected"
    )
    assert (bill["cost"], bill["currency"]) == ("15.00", "EUR")
    assert [(stop["chargePointId"], stop["reason"], stop["ownerChargePointId"], stop["meterStop"],
             stop["stopReason"], instant(stop["stopTimestamp"])) for stop in unmatched["unmatchedStops"]] == [
        ("TAKE-B", "unknown_transaction", None, 7, "Local", instant("2030-11-01T09:00:00Z")),
        ("TAKE-B", "other_charge_points_transaction", "TAKE-A", 9, "Remote", instant("2030-11-01T10:30:00Z")),
    ]
    assert [stop["idTag"] for stop in unmatched["unmatchedStops"]] == ["TAKE-TAG", None]
    assert b_transactions == [] and a_unmatched == {"unmatchedStops": []}
    assert [(day["sessions"], day["energyWh"]) for day in a_days] == [(2, 1000 + 50_000)]

    # A rebuild from the events gives the operator the same.
    server.stop()
    rebuild(store_url)
    server.start()
    async with Operator(server.http) as operator:
        assert await what_the_operator_sees() == live


async def test_unmatched_stops_filters_are_checked(server, operator):
    for query in ("transactionId=abc", "transactionId=-1", "limit=x"):
        status, reply = await operator.request("GET", f"/api/transactions/unmatched-stops?{query}")
        assert status == 400 and "must" in reply["error"], (query, reply)


# ---- filters, CSV and the daily aggregate ---------------------------------------------------


async def test_transactions_filter_by_charge_point_tag_period_and_status(server, operator):
    await operator.save_id_tag("Filt-Tag-1", "Accepted")
    await operator.save_id_tag("FILT-TAG-2", "Accepted")
    async with await registered(server, operator, "FILT-A") as a, await registered(server, operator, "FILT-B") as b:
        a1 = await charge(a, "FILT-TAG-1", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", 0, 1000)
        a2 = await charge(a, "filt-tag-2", "2024-05-02T10:00:00Z", "2024-05-02T11:00:00Z", 1000, 3000)
        b1 = await charge(b, "Filt-Tag-1", "2024-05-02T12:00:00Z", "2024-05-02T13:00:00Z", 0, 500)
        b2 = (await b.call("StartTransaction", {"connectorId": 2, "idTag": "filt-TAG-1", "meterStart": 0,
                                                "timestamp": "2024-05-03T00:00:00Z"}))["transactionId"]

    async def ids(query: str) -> list[int]:
        return [t["transactionId"] for t in await transactions(operator, query)]

    assert await ids("chargePointId=FILT-A") == [a1, a2]
    assert await ids("chargePointId=FILT-B") == [b1, b2]
    assert await ids("idTag=filt-tag-1") == [a1, b1, b2]
    assert await ids("idTag=FILT-TAG-2") == [a2]
    assert await ids("chargePointId=FILT-B&idTag=FILT-TAG-1") == [b1, b2]
    # since is inclusive, until exclusive, both on the start.
    assert await ids("idTag=filt-tag-1&since=2024-05-02T12:00:00Z") == [b1, b2]
    assert await ids("idTag=filt-tag-1&until=2024-05-02T12:00:00Z") == [a1]
    assert await ids("chargePointId=FILT-A&since=2024-05-01T10:00:01Z&until=2024-05-03T00:00:00Z") == [a2]
    assert await ids("chargePointId=FILT-B&since=2024-05-02&until=2024-05-03") == [b1]
    assert await ids("idTag=filt-tag-1&status=active") == [b2]
    assert await ids("idTag=filt-tag-1&status=completed") == [a1, b1]
    assert await ids("chargePointId=FILT-NOBODY") == []
    assert (await operator.request("GET", "/api/transactions?since=yesterday"))[0] == 400
    one = (await transactions(operator, "chargePointId=FILT-A"))[1]
    assert {k: one[k] for k in ("chargePointId", "connectorId", "idTag", "meterStart", "meterStop", "energyWh",
                                "stopReason", "status")} == {
        "chargePointId": "FILT-A", "connectorId": 1, "idTag": "filt-tag-2", "meterStart": 1000, "meterStop": 3000,
        "energyWh": 2000, "stopReason": "Local", "status": "completed",
    }


async def test_csv_export_has_a_header_and_only_finished_sessions(server, operator):
    await operator.save_id_tag("CSV-TAG", "Accepted")
    await operator.register("CSV-CP")
    await operator.put("/api/chargepoints/CSV-CP/tariff", {"pricePerKwh": "0.25", "currency": "EUR"})
    async with ChargePointClient(ws_base(server), "CSV-CP") as cp:
        done = await charge(cp, "CSV-TAG", "2030-11-01T10:00:00Z", "2030-11-01T10:30:00Z", 0, 4000,
                            reason="Remote")
        odd = await charge(cp, "CSV-TAG", "2030-11-01T11:00:00Z", "2030-11-01T11:10:00Z", 4000, 3000, connector_id=2)
        await cp.call("StartTransaction", {"connectorId": 3, "idTag": "CSV-TAG", "meterStart": 0,
                                           "timestamp": "2030-11-01T12:00:00Z"})

    assert operator.session is not None
    by_query = await operator.session.get(f"{server.http}/api/transactions?chargePointId=CSV-CP&format=csv")
    by_accept = await operator.session.get(f"{server.http}/api/transactions?chargePointId=CSV-CP",
                                           headers={"Accept": "text/csv"})
    for response in (by_query, by_accept):
        assert response.status == 200
        assert response.content_type == "text/csv"
    text = await by_query.text()
    assert text == await by_accept.text()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["transactionId", "chargePointId", "connectorId"]
    assert {"idTag", "startTimestamp", "stopTimestamp", "energyWh", "status", "cost", "currency"} <= set(rows[0])
    records = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["transactionId"]) for r in records] == [done, odd]
    assert [(r["status"], r["energyWh"], r["cost"], r["currency"], r["stopReason"]) for r in records] == [
        ("completed", "4000", "1.00", "EUR", "Remote"),
        ("flagged", "0", "0.00", "EUR", "Local"),
    ]
    assert instant(records[0]["startTimestamp"]) == instant("2030-11-01T10:00:00Z")
    empty = await operator.session.get(f"{server.http}/api/transactions?chargePointId=CSV-NOBODY&format=csv")
    assert list(csv.reader(io.StringIO(await empty.text()))) == [rows[0]]


async def test_daily_aggregate_sums_sessions_energy_and_utilisation_per_day(server, operator):
    await operator.save_id_tag("DAY-TAG", "Accepted")
    async with await registered(server, operator, "DAY-CP") as cp:
        for connector_id in (0, 1, 2):  # connector 0 is the whole charge point: not a place to charge
            await cp.call("StatusNotification", {"connectorId": connector_id, "status": "Available",
                                                 "errorCode": "NoError"})
        await charge(cp, "DAY-TAG", "2024-06-01T08:00:00Z", "2024-06-01T09:00:00Z", 0, 7000)
        await charge(cp, "DAY-TAG", "2024-06-01T10:00:00Z", "2024-06-01T12:00:00Z", 7000, 18_000, connector_id=2)
        await charge(cp, "DAY-TAG", "2024-06-02T06:00:00Z", "2024-06-02T12:00:00Z", 18_000, 40_000)
        # Counted on the day it started, though it ends the next day.
        await charge(cp, "DAY-TAG", "2024-06-03T23:00:00Z", "2024-06-04T01:00:00Z", 40_000, 41_000)
        # Still charging: no bill yet, so not in the aggregate.
        await cp.call("StartTransaction", {"connectorId": 1, "idTag": "DAY-TAG", "meterStart": 41_000,
                                           "timestamp": "2024-06-04T08:00:00Z"})

    days = (await operator.get("/api/analytics/daily?chargePointId=DAY-CP"))["days"]
    assert days == [
        {"chargePointId": "DAY-CP", "day": "2024-06-01", "sessions": 2, "energyWh": 18_000,
         "chargingSeconds": 10_800, "utilisation": 0.0625},
        {"chargePointId": "DAY-CP", "day": "2024-06-02", "sessions": 1, "energyWh": 22_000,
         "chargingSeconds": 21_600, "utilisation": 0.125},
        {"chargePointId": "DAY-CP", "day": "2024-06-03", "sessions": 1, "energyWh": 1000,
         "chargingSeconds": 7200, "utilisation": round(7200 / 172_800, 6)},
    ]
    window = (await operator.get("/api/analytics/daily?chargePointId=DAY-CP&since=2024-06-02&until=2024-06-03"))
    assert [day["day"] for day in window["days"]] == ["2024-06-02"]
    # The same figures in SQL.
    rows = read_model_rows(server.store, "SELECT day, sessions, energy_wh, charging_seconds, utilisation"
                                         " FROM daily_utilisation_view WHERE charge_point_id = ? ORDER BY day",
                           ("DAY-CP",))
    assert [(r["day"], r["sessions"], r["energy_wh"], r["charging_seconds"]) for r in rows] == [
        (d["day"], d["sessions"], d["energyWh"], d["chargingSeconds"]) for d in days
    ]
    assert [float(r["utilisation"]) for r in rows][:2] == [0.0625, 0.125]

