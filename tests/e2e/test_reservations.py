"""Reservations end to end: made, answered, used, cancelled and expired on time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from tests.e2e.steps import answered, assert_nothing_was_sent, connected, exchange, sent_actions
from tests.ocpp_client import ChargePointClient, Operator, shared_server, ws_base

server = shared_server()

FUTURE = "2099-01-01T00:00:00.000Z"
EXPIRY_DEADLINE = 20.0  # seconds a test waits for an expiry it set a few seconds ahead


@pytest.fixture
async def operator(server: Any) -> AsyncIterator[Operator]:
    async with Operator(server.http) as operator:
        yield operator


def reserve(operator: Operator, charge_point_id: str, **body: Any) -> Awaitable[tuple[int, Any]]:
    body = {"connectorId": 1, "idTag": "RES-TAG", "expiryDate": FUTURE, **body}
    return operator.request("POST", f"/api/chargepoints/{charge_point_id}/reservations", body)


async def reserved(cp: ChargePointClient, operator: Operator, reply: str = "Accepted",
                   **body: Any) -> tuple[list[Any], Any]:
    """A reservation made through the API and answered by the charge point: (call, API body)."""
    call, (status, made) = await answered(cp, reserve(operator, cp.id, **body), "ReserveNow", {"status": reply})
    assert status == 200, made
    return call, made


async def reservations_of(operator: Operator, charge_point_id: str) -> dict[int, dict[str, Any]]:
    body = await operator.get(f"/api/reservations?chargePointId={charge_point_id}")
    return {reservation["reservationId"]: reservation for reservation in body["reservations"]}


async def eventually(probe: Callable[[], Awaitable[Any]], deadline: float = EXPIRY_DEADLINE) -> Any:
    """Probes an observable condition until it holds, failing after `deadline` seconds."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline
    while not (value := await probe()):
        assert loop.time() < give_up, "the condition never held"
        await asyncio.sleep(0.1)
    return value


def seconds_ahead(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


async def test_the_csms_allocates_reservation_ids_and_records_the_answer(server, operator):
    async with connected(server, operator, "RES-ALLOC") as cp:
        first_call, first = await reserved(cp, operator, parentIdTag="RES-PARENT")
        second_call, second = await reserved(cp, operator, reply="Occupied", connectorId=2)
        listed = await reservations_of(operator, "RES-ALLOC")

    first_id, second_id = first_call[3]["reservationId"], second_call[3]["reservationId"]
    assert first_id != second_id
    assert first_call[3] == {"connectorId": 1, "idTag": "RES-TAG", "expiryDate": FUTURE, "parentIdTag": "RES-PARENT",
                             "reservationId": first_id}
    assert (first["status"], first["replyStatus"]) == ("Accepted", "Accepted")
    assert (second["status"], second["replyStatus"]) == ("Rejected", "Occupied")
    assert listed[first_id] == {
        "chargePointId": "RES-ALLOC", "reservationId": first_id, "connectorId": 1, "idTag": "RES-TAG",
        "parentIdTag": "RES-PARENT", "expiryDate": FUTURE, "status": "Accepted", "replyStatus": "Accepted",
        "requestedAt": listed[first_id]["requestedAt"],
    }
    assert listed[second_id]["status"] == "Rejected"
    types = await operator.event_types("RES-ALLOC")
    assert types.count("ReservationRequested") == 2


async def test_reserve_now_through_the_commands_endpoint_is_followed_too(server, operator):
    payload = {"connectorId": 0, "idTag": "RES-TAG", "expiryDate": FUTURE, "reservationId": 424242}
    async with connected(server, operator, "RES-COMMAND") as cp:
        _, status, body = await exchange(cp, operator, "ReserveNow", payload, {"status": "Accepted"})
        listed = await reservations_of(operator, "RES-COMMAND")

    assert (status, body) == (200, {"status": "Accepted"})
    assert listed[424242]["status"] == "Accepted" and listed[424242]["connectorId"] == 0


async def test_a_reservation_that_cannot_be_made_is_refused_before_sending(server, operator):
    await operator.register("RES-OFFLINE")
    offline = await reserve(operator, "RES-OFFLINE")
    unknown = await reserve(operator, "RES-NOBODY")
    async with connected(server, operator, "RES-PAST") as cp:
        past = await reserve(operator, "RES-PAST", expiryDate="2020-01-01T00:00:00Z")
        bad = await reserve(operator, "RES-PAST", idTag="X" * 21)
        await assert_nothing_was_sent(cp, operator)

    assert offline[0] == 409 and unknown[0] == 404
    assert past[0] == 422 and "already passed" in past[1]["error"]
    assert bad[0] == 422
    assert await sent_actions(operator, "RES-PAST") == ["ClearCache"]
    assert await reservations_of(operator, "RES-PAST") == {}


async def test_a_start_with_the_reservation_id_uses_it_and_a_child_tag_may_use_its_parents(server, operator):
    await operator.save_id_tag("RES-CHILD", parent_id_tag="RES-FLEET")
    async with connected(server, operator, "RES-USE") as cp:
        call, _ = await reserved(cp, operator, idTag="RES-SOMEONE", parentIdTag="RES-FLEET")
        reservation_id = call[3]["reservationId"]
        started = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "RES-CHILD", "meterStart": 0,
                                                     "timestamp": seconds_ahead(0),
                                                     "reservationId": reservation_id})
        listed = await reservations_of(operator, "RES-USE")
        events = await operator.events("RES-USE")

    assert listed[reservation_id]["status"] == "Used"
    assert listed[reservation_id]["transactionId"] == started["transactionId"]
    start_event = next(e for e in events if e["type"] == "TransactionStarted")
    assert start_event["data"]["flags"] == []
    assert [e["type"] for e in events][-2:] == ["TransactionStarted", "ReservationUsed"]


async def test_a_reserve_now_that_times_out_stays_pending_and_a_later_start_uses_it(server, operator):
    await operator.save_id_tag("RES-SLOW-TAG")
    async with connected(server, operator, "RES-SLOW") as cp:
        request = asyncio.ensure_future(reserve(operator, "RES-SLOW", idTag="RES-SLOW-TAG", connectorId=2))
        call = await cp.next_call()  # it arrives; the charge point never answers within --call-timeout 2
        assert call[2] == "ReserveNow", call
        timed_out = await request
        reservation_id = call[3]["reservationId"]
        after_timeout = await reservations_of(operator, "RES-SLOW")
        await cp.reply(call, {"status": "Accepted"})  # too late: dropped, not paired with anything
        await cp.call("Heartbeat", {})  # the late reply has been read by now
        after_late_reply = await reservations_of(operator, "RES-SLOW")
        started = await cp.call("StartTransaction", {"connectorId": 2, "idTag": "RES-SLOW-TAG", "meterStart": 0,
                                                     "timestamp": seconds_ahead(0), "reservationId": reservation_id})
        used = await reservations_of(operator, "RES-SLOW")
        types = await operator.event_types("RES-SLOW")

    assert timed_out[0] == 504, timed_out
    assert after_timeout[reservation_id]["status"] == "Pending"
    assert "replyStatus" not in after_timeout[reservation_id]
    assert after_late_reply[reservation_id]["status"] == "Pending"
    assert (used[reservation_id]["status"], used[reservation_id]["transactionId"]) == (
        "Used", started["transactionId"]
    )
    assert types[types.index("ReservationRequested"):] == [
        "ReservationRequested", "CallSent", "CallTimedOut", "HeartbeatReceived", "TransactionStarted",
        "ReservationUsed",
    ]


async def test_cancel_reservation_accepted_cancels_it(server, operator):
    async with connected(server, operator, "RES-CANCEL") as cp:
        first_call, _ = await reserved(cp, operator)
        second_call, _ = await reserved(cp, operator, connectorId=2)
        first_id, second_id = first_call[3]["reservationId"], second_call[3]["reservationId"]
        await exchange(cp, operator, "CancelReservation", {"reservationId": first_id}, {"status": "Accepted"})
        _, (status, body) = await answered(
            cp, operator.request("DELETE", f"/api/chargepoints/RES-CANCEL/reservations/{second_id}"),
            "CancelReservation", {"status": "Rejected"},
        )
        listed = await reservations_of(operator, "RES-CANCEL")

    assert listed[first_id]["status"] == "Cancelled"
    assert status == 200 and body["replyStatus"] == "Rejected"
    assert listed[second_id]["status"] == "Accepted"  # the charge point refused to cancel it


async def test_a_faulted_or_unavailable_connector_cancels_its_reservation(server, operator):
    async with connected(server, operator, "RES-FAULT") as cp:
        ids = {}
        for connector_id in (1, 2, 0):
            call, _ = await reserved(cp, operator, connectorId=connector_id)
            ids[connector_id] = call[3]["reservationId"]
        await cp.call("StatusNotification", {"connectorId": 1, "errorCode": "GroundFailure", "status": "Faulted"})
        after_fault = await reservations_of(operator, "RES-FAULT")
        await cp.call("StatusNotification", {"connectorId": 0, "errorCode": "NoError", "status": "Unavailable"})
        after_unavailable = await reservations_of(operator, "RES-FAULT")

    assert [after_fault[ids[c]]["status"] for c in (1, 2, 0)] == ["Cancelled", "Accepted", "Accepted"]
    assert after_fault[ids[1]]["reason"] == "connector 1 Faulted"
    assert [after_unavailable[ids[c]]["status"] for c in (1, 2, 0)] == ["Cancelled", "Cancelled", "Cancelled"]


async def test_a_connector_0_reservation_is_used_by_its_tag_on_any_connector(server, operator):
    for tag in ("RES-WHOLE", "RES-WHOLE-B", "RES-ELSE"):
        await operator.save_id_tag(tag)
    async with connected(server, operator, "RES-WHOLE-CP") as cp:
        first_call, _ = await reserved(cp, operator, connectorId=0, idTag="RES-WHOLE")
        second_call, _ = await reserved(cp, operator, connectorId=0, idTag="RES-WHOLE-B")
        first, second = first_call[3]["reservationId"], second_call[3]["reservationId"]
        other_tag = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "RES-ELSE", "meterStart": 0,
                                                       "timestamp": seconds_ahead(0)})
        after_other_tag = await reservations_of(operator, "RES-WHOLE-CP")
        # Connector 2, no reservationId: the reserved tag takes the charge point's reservation.
        by_tag = await cp.call("StartTransaction", {"connectorId": 2, "idTag": "res-whole", "meterStart": 0,
                                                    "timestamp": seconds_ahead(0)})
        after_by_tag = await reservations_of(operator, "RES-WHOLE-CP")
        # Connector 3, naming the other one: no connector mismatch, connector 0 covers them all.
        by_id = await cp.call("StartTransaction", {"connectorId": 3, "idTag": "RES-WHOLE-B", "meterStart": 0,
                                                   "timestamp": seconds_ahead(0), "reservationId": second})
        listed = await reservations_of(operator, "RES-WHOLE-CP")
        starts = [e for e in await operator.events("RES-WHOLE-CP") if e["type"] == "TransactionStarted"]

    assert other_tag["idTagInfo"]["status"] == "Accepted"
    assert [after_other_tag[r]["status"] for r in (first, second)] == ["Accepted", "Accepted"]
    assert after_by_tag[first]["status"] == "Used" and after_by_tag[second]["status"] == "Accepted"
    assert [(listed[r]["status"], listed[r]["transactionId"]) for r in (first, second)] == [
        ("Used", by_tag["transactionId"]), ("Used", by_id["transactionId"])
    ]
    assert [start["data"]["flags"] for start in starts] == [[], [], []]


async def test_connector_0_faulted_cancels_every_reservation_of_the_charge_point(server, operator):
    async with connected(server, operator, "RES-FAULT-0") as cp:
        ids = {}
        for connector_id in (1, 2, 0):
            call, _ = await reserved(cp, operator, connectorId=connector_id)
            ids[connector_id] = call[3]["reservationId"]
        await cp.call("StatusNotification", {"connectorId": 0, "errorCode": "PowerSwitchFailure", "status": "Faulted"})
        listed = await reservations_of(operator, "RES-FAULT-0")

    assert [listed[ids[c]]["status"] for c in (1, 2, 0)] == ["Cancelled"] * 3
    assert {listed[ids[c]]["reason"] for c in (1, 2, 0)} == {"connector 0 Faulted"}


async def test_a_reservation_expires_on_time_while_its_charge_point_is_silent(server, operator):
    async with connected(server, operator, "RES-EXPIRE") as cp:
        call, _ = await reserved(cp, operator, expiryDate=seconds_ahead(2))
        _, later = await reserved(cp, operator, connectorId=2, expiryDate=FUTURE)
    reservation_id = call[3]["reservationId"]  # the charge point is gone: only the CSMS's timer is left

    async def expired() -> bool:
        return (await reservations_of(operator, "RES-EXPIRE"))[reservation_id]["status"] == "Expired"

    await eventually(expired)
    listed = await reservations_of(operator, "RES-EXPIRE")
    assert listed[later["reservationId"]]["status"] == "Accepted"
    assert "ReservationExpired" in await operator.event_types("RES-EXPIRE")


async def test_the_reservation_list_filters_by_status_and_checks_its_parameters(server, operator):
    async with connected(server, operator, "RES-LIST") as cp:
        await reserved(cp, operator, reply="Unavailable")
    everyone = (await operator.get("/api/reservations"))["reservations"]
    rejected = (await operator.get("/api/reservations?status=Rejected"))["reservations"]
    bad_status = await operator.request("GET", "/api/reservations?status=Maybe")
    unknown = await operator.request("GET", "/api/reservations?chargePointId=RES-NOBODY")

    assert any(r["chargePointId"] == "RES-LIST" for r in everyone)
    assert rejected and all(r["status"] == "Rejected" for r in rejected)
    assert bad_status[0] == 400 and unknown[0] == 404


async def test_timers_are_set_again_after_a_restart(store_url, server_factory):
    restarting = server_factory.start(store_url, "--call-timeout", "2")
    async with Operator(restarting.http) as operator:
        await operator.register("RES-RESTART")
        async with ChargePointClient(ws_base(restarting), "RES-RESTART") as cp:
            call, _ = await reserved(cp, operator, expiryDate=seconds_ahead(4))
        reservation_id = call[3]["reservationId"]
    restarting.restart()
    async with Operator(restarting.http) as operator:

        async def expired() -> bool:
            listed = await reservations_of(operator, "RES-RESTART")
            return listed[reservation_id]["status"] == "Expired"

        await eventually(expired)
