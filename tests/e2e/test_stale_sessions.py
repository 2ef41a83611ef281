"""Stale sessions: a lost StopTransaction no longer locks a card out (domain/stale_sessions.py), on both stores.

One server per store kind serves the module; each test uses its own charge
points and id tags.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from tests.ocpp_client import ChargePointClient, Operator, event_field, registered, shared_server, ws_base

server = shared_server()


@pytest.fixture
async def operator(server: Any) -> AsyncIterator[Operator]:
    async with Operator(server.http) as operator:
        yield operator


def start_request(id_tag: str, connector_id: int = 1, meter_start: int = 1000,
                  timestamp: str = "2030-04-01T08:00:00Z") -> dict[str, Any]:
    return {"connectorId": connector_id, "idTag": id_tag, "meterStart": meter_start, "timestamp": timestamp}


def energy_reading(transaction_id: int, kwh: str, connector_id: int = 1) -> dict[str, Any]:
    return {"connectorId": connector_id, "transactionId": transaction_id, "meterValue": [{
        "timestamp": "2030-04-01T08:30:00Z",
        "sampledValue": [{"value": kwh, "measurand": "Energy.Active.Import.Register", "unit": "kWh"}],
    }]}


def status(connector_id: int, value: str) -> dict[str, Any]:
    return {"connectorId": connector_id, "status": value, "errorCode": "NoError"}


async def test_a_lost_stop_then_a_new_start_with_the_same_card_is_accepted_and_the_late_stop_settles_it(
        server, operator):
    await operator.save_id_tag("STALE-TAG")
    async with await registered(server, operator, "STALE-CP") as cp:
        first = await cp.call("StartTransaction", start_request("STALE-TAG"))
        stale_id = first["transactionId"]
        await cp.call("MeterValues", energy_reading(stale_id, "4.5"))
        # The StopTransaction is lost: the next driver (the same card) starts on the same connector.
        second = await cp.call("StartTransaction", start_request("STALE-TAG", meter_start=5000,
                                                                 timestamp="2030-04-01T10:00:00Z"))
        live = await operator.get("/api/chargepoints/STALE-CP")
        ended = await operator.get(f"/api/transactions/{stale_id}")
        running = await operator.get(f"/api/transactions/{second['transactionId']}")
        # Much later the lost stop turns up after all (a queue flushed): accepted, and its figures bill.
        late = await cp.call("StopTransaction", {"transactionId": stale_id, "meterStop": 4800,
                                                 "timestamp": "2030-04-01T09:00:00Z", "idTag": "STALE-TAG"})
    listed = next(c for c in (await operator.get("/api/chargepoints"))["chargePoints"] if c["id"] == "STALE-CP")
    settled = await operator.get(f"/api/transactions/{stale_id}")
    [day] = (await operator.get("/api/analytics/daily?chargePointId=STALE-CP"))["days"]
    events = (await operator.get("/api/chargepoints/STALE-CP/events"))["events"]

    assert first["idTagInfo"]["status"] == "Accepted"
    assert second["idTagInfo"]["status"] == "Accepted"  # not ConcurrentTx
    assert second["transactionId"] != stale_id
    assert live["connectors"]["1"]["transactionId"] == second["transactionId"]
    assert live["openTransactions"] == [second["transactionId"]]
    assert listed["connectors"]["1"]["transactionId"] == second["transactionId"]  # the status read model too
    assert ended["status"] == "flagged" and "ended_as_stale" in ended["flags"]
    assert (ended["meterStop"], ended["energyWh"]) == (4500, 3500)  # the last known meter value
    assert ended["stopTimestamp"] is not None and "StartTransaction" in ended["stopReason"]
    assert running["status"] == "active"
    assert late == {"idTagInfo": {"status": "Accepted"}}
    assert (settled["meterStop"], settled["energyWh"], settled["durationSeconds"]) == (4800, 3800, 3600)
    assert settled["status"] == "flagged"
    assert {"ended_as_stale", "stopped_after_inferred_end"} <= set(settled["flags"])
    assert (day["sessions"], day["energyWh"], day["chargingSeconds"]) == (1, 3800, 3600)  # counted once
    [recorded] = [e for e in events if e["type"] == "TransactionEndedAsStale"]
    assert (event_field(recorded, "transactionId"), event_field(recorded, "cause")) == (stale_id, "superseded")
    assert event_field(recorded, "meterStop") == 4500


async def test_after_a_restart_available_ends_the_connectors_transaction_and_the_queued_stop_settles_it(
        server, operator):
    await operator.save_id_tag("REBOOT-TAG")
    await operator.save_id_tag("REBOOT-OTHER")
    await operator.register("REBOOT-CP")
    async with ChargePointClient(ws_base(server), "REBOOT-CP") as cp:
        lost = (await cp.call("StartTransaction", start_request("REBOOT-TAG")))["transactionId"]
        await cp.call("MeterValues", energy_reading(lost, "2.0"))
        kept = (await cp.call("StartTransaction", start_request("REBOOT-OTHER", connector_id=2)))["transactionId"]
    # A power cut: the charge point comes back, boots and reports its connectors.
    async with ChargePointClient(ws_base(server), "REBOOT-CP") as cp:
        await cp.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "W2"})
        await cp.call("StatusNotification", status(0, "Available"))  # the charge point as a whole: ends none
        await cp.call("StatusNotification", status(2, "Charging"))  # still charging: ends none
        before = await operator.get(f"/api/transactions/{lost}")
        await cp.call("StatusNotification", status(1, "Available"))
        ended = await operator.get(f"/api/transactions/{lost}")
        live = await operator.get("/api/chargepoints/REBOOT-CP")
        again = await cp.call("StartTransaction", start_request("REBOOT-TAG", connector_id=3,
                                                                timestamp="2030-04-01T11:00:00Z"))
        # Its queued StopTransaction arrives after all.
        late = await cp.call("StopTransaction", {"transactionId": lost, "meterStop": 2600,
                                                 "timestamp": "2030-04-01T08:45:00Z", "reason": "PowerLoss"})
    settled = await operator.get(f"/api/transactions/{lost}")
    other = await operator.get(f"/api/transactions/{kept}")
    events = (await operator.get("/api/chargepoints/REBOOT-CP/events"))["events"]

    assert before["status"] == "active"
    assert ended["status"] == "flagged" and "ended_by_restart" in ended["flags"]
    assert (ended["meterStop"], ended["energyWh"]) == (2000, 1000)
    assert live["connectors"]["1"]["transactionId"] is None
    assert live["openTransactions"] == [kept]
    assert other["status"] == "active"
    assert again["idTagInfo"]["status"] == "Accepted"  # the card is free again
    assert late == {}
    assert (settled["meterStop"], settled["energyWh"], settled["durationSeconds"]) == (2600, 1600, 2700)
    assert settled["stopReason"] == "PowerLoss"
    assert {"ended_by_restart", "stopped_after_inferred_end"} <= set(settled["flags"])
    [recorded] = [e for e in events if e["type"] == "TransactionEndedAsStale"]
    assert (event_field(recorded, "transactionId"), event_field(recorded, "cause")) == (lost, "restarted")
