"""An operator ends a stale transaction (POST /api/transactions/{id}/end), on both stores.

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


def start_request(id_tag: str, connector_id: int = 1) -> dict[str, Any]:
    return {"connectorId": connector_id, "idTag": id_tag, "meterStart": 1000, "timestamp": "2030-03-01T08:00:00Z"}


def energy_reading(transaction_id: int, kwh: str) -> dict[str, Any]:
    return {"connectorId": 1, "transactionId": transaction_id, "meterValue": [{
        "timestamp": "2030-03-01T08:30:00Z",
        "sampledValue": [{"value": kwh, "measurand": "Energy.Active.Import.Register", "unit": "kWh"}],
    }]}


async def end(operator: Operator, transaction_id: int, body: Any) -> tuple[int, Any]:
    return await operator.request("POST", f"/api/transactions/{transaction_id}/end", body)


async def test_an_operator_ends_a_stale_transaction_and_the_card_and_connector_are_free(server, operator):
    await operator.save_id_tag("END-TAG")
    async with await registered(server, operator, "END-CP") as cp:
        started = await cp.call("StartTransaction", start_request("END-TAG"))
        transaction_id = started["transactionId"]
        await cp.call("MeterValues", energy_reading(transaction_id, "4.5"))

        status, ended = await end(operator, transaction_id, {"reason": "car left hours ago, no stop came"})
        again = await end(operator, transaction_id, {"reason": "once more"})
        # The card's one transaction has ended: it may start another.
        next_start = await cp.call("StartTransaction", start_request("END-TAG", connector_id=2))
        live = await operator.get("/api/chargepoints/END-CP")
    listed = next(c for c in (await operator.get("/api/chargepoints"))["chargePoints"] if c["id"] == "END-CP")
    events = (await operator.get("/api/chargepoints/END-CP/events"))["events"]

    assert status == 200, ended
    assert ended["transactionId"] == transaction_id
    assert ended["status"] == "flagged" and "ended_by_operator" in ended["flags"]
    assert (ended["meterStop"], ended["energyWh"]) == (4500, 3500)  # the last known meter value
    assert ended["stopReason"] == "car left hours ago, no stop came"
    assert ended["stopTimestamp"] is not None
    assert again[0] == 409 and "ended" in again[1]["error"]
    assert next_start["idTagInfo"]["status"] == "Accepted"
    assert live["connectors"]["1"]["transactionId"] is None
    assert transaction_id not in live["openTransactions"]
    assert listed["connectors"]["1"]["transactionId"] is None  # the status read model too
    [recorded] = [e for e in events if e["type"] == "TransactionEndedByOperator"]
    assert event_field(recorded, "reason") == "car left hours ago, no stop came"
    assert event_field(recorded, "meterStop") == 4500


async def test_a_stop_that_comes_after_the_operator_ended_it_is_accepted_and_its_figures_bill(server, operator):
    await operator.save_id_tag("LATE-TAG")
    await operator.register("LATE-CP")
    async with ChargePointClient(ws_base(server), "LATE-CP") as cp:
        started = await cp.call("StartTransaction", start_request("LATE-TAG"))
    transaction_id = started["transactionId"]

    # The charge point is offline: the end is recorded all the same, with no meter value known.
    status, ended = await end(operator, transaction_id, {"reason": "stale"})
    async with ChargePointClient(ws_base(server), "LATE-CP") as cp:
        late = await cp.call("StopTransaction", {"transactionId": transaction_id, "meterStop": 7000,
                                                 "timestamp": "2030-03-01T09:00:00Z", "idTag": "LATE-TAG"})
        repeated = await cp.call("StopTransaction", {"transactionId": transaction_id, "meterStop": 9999,
                                                     "timestamp": "2030-03-01T10:00:00Z"})
    billed = await operator.get(f"/api/transactions/{transaction_id}")
    [day] = (await operator.get("/api/analytics/daily?chargePointId=LATE-CP"))["days"]

    assert status == 200
    assert (ended["meterStop"], ended["status"]) == (None, "flagged")
    assert late == {"idTagInfo": {"status": "Accepted"}}
    assert repeated == {}
    assert (billed["meterStop"], billed["energyWh"], billed["durationSeconds"]) == (7000, 6000, 3600)
    assert billed["stopTimestamp"].startswith("2030-03-01T09:00:00")
    assert billed["status"] == "flagged"
    assert {"ended_by_operator", "stopped_after_operator_end"} <= set(billed["flags"])
    # The day counts the session once, with the stop's figures.
    assert (day["sessions"], day["energyWh"], day["chargingSeconds"]) == (1, 6000, 3600)


async def test_ending_needs_a_known_open_transaction_and_a_reason(server, operator):
    await operator.save_id_tag("END-BAD-TAG")
    async with await registered(server, operator, "END-BAD-CP") as cp:
        started = await cp.call("StartTransaction", start_request("END-BAD-TAG"))
        transaction_id = started["transactionId"]
        answers = {
            "unknown": await end(operator, 987654321, {"reason": "stale"}),
            "no reason": await end(operator, transaction_id, {}),
            "empty reason": await end(operator, transaction_id, {"reason": " "}),
            "long reason": await end(operator, transaction_id, {"reason": "x" * 256}),
            "reason not text": await end(operator, transaction_id, {"reason": 5}),
            "body not an object": await end(operator, transaction_id, ["stale"]),
        }
        still_open = (await operator.get(f"/api/transactions/{transaction_id}"))["status"]
        longest = await end(operator, transaction_id, {"reason": "x" * 255})

    assert {name: status for name, (status, _) in answers.items()} == {
        "unknown": 404, "no reason": 422, "empty reason": 422, "long reason": 422, "reason not text": 422,
        "body not an object": 400,
    }
    assert all(body.get("error") for _, body in answers.values())
    assert still_open == "active"
    assert longest[0] == 200
