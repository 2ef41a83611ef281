"""Smart Charging end to end: profiles checked before sending, held once accepted,
and the composite schedule the CSMS computes from them.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from tests.e2e.steps import answered, assert_nothing_was_sent, connected, exchange, sent_actions
from tests.ocpp_client import Operator, shared_server

server = shared_server()

PAST = "2020-01-01T00:00:00Z"
TX_START = "2030-01-01T00:00:00Z"


def profile(profile_id: int, purpose: str, periods: list[tuple[int, float]], stack_level: int = 0,
            kind: str = "Absolute", **extra: Any) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": start, "limit": limit} for start, limit in periods],
    }
    if kind == "Absolute":
        schedule["startSchedule"] = PAST
    return {"chargingProfileId": profile_id, "stackLevel": stack_level, "chargingProfilePurpose": purpose,
            "chargingProfileKind": kind, "chargingSchedule": schedule, **extra}


@pytest.fixture
async def operator(server: Any) -> AsyncIterator[Operator]:
    async with Operator(server.http) as operator:
        yield operator


async def set_profile(cp: Any, operator: Operator, connector_id: int, charging_profile: dict[str, Any],
                      reply: str = "Accepted") -> None:
    _, status, body = await exchange(cp, operator, "SetChargingProfile",
                                     {"connectorId": connector_id, "csChargingProfiles": charging_profile},
                                     {"status": reply})
    assert (status, body) == (200, {"status": reply})


async def installed(operator: Operator, charge_point_id: str) -> list[tuple[int, int]]:
    body = await operator.get(f"/api/chargepoints/{charge_point_id}/charging-profiles")
    return [(e["connectorId"], e["chargingProfile"]["chargingProfileId"]) for e in body["chargingProfiles"]]


async def start_transaction(cp: Any, connector_id: int = 1, id_tag: str = "SC-TAG") -> int:
    reply = await cp.call("StartTransaction", {"connectorId": connector_id, "idTag": id_tag, "meterStart": 0,
                                               "timestamp": TX_START})
    return int(reply["transactionId"])


@pytest.mark.parametrize(
    "connector_id, charging_profile, reason",
    [
        (1, profile(1, "ChargePointMaxProfile", [(0, 32)]), "connector 0"),
        (1, profile(2, "TxProfile", [(0, 16)]), "needs a transaction"),
        (0, profile(3, "TxDefaultProfile", [(0, 16), (600, 10), (300, 8)]), "ascending"),
    ],
    ids=["max-profile-on-a-connector", "tx-profile-without-transaction", "periods-not-ascending"],
)
async def test_a_profile_that_breaks_a_rule_is_a_422_and_is_never_sent(server, operator, connector_id,
                                                                       charging_profile, reason):
    charge_point_id = f"SC-REFUSE-{charging_profile['chargingProfileId']}"
    async with connected(server, operator, charge_point_id) as cp:
        status, body = await operator.command(charge_point_id, "SetChargingProfile",
                                              {"connectorId": connector_id, "csChargingProfiles": charging_profile})
        await assert_nothing_was_sent(cp, operator)

    assert status == 422 and reason in body["error"]
    assert await sent_actions(operator, charge_point_id) == ["ClearCache"]
    assert await installed(operator, charge_point_id) == []


async def test_accepted_profiles_are_held_replaced_and_cleared(server, operator):
    async with connected(server, operator, "SC-HELD") as cp:
        await set_profile(cp, operator, 0, profile(1, "ChargePointMaxProfile", [(0, 32)]))
        await set_profile(cp, operator, 1, profile(2, "TxDefaultProfile", [(0, 16)], stack_level=1))
        await set_profile(cp, operator, 2, profile(3, "TxDefaultProfile", [(0, 16)], stack_level=1))
        await set_profile(cp, operator, 1, profile(4, "TxDefaultProfile", [(0, 8)], stack_level=1))  # replaces 2
        await set_profile(cp, operator, 2, profile(5, "TxDefaultProfile", [(0, 8)], stack_level=2), "Rejected")
        held = await installed(operator, "SC-HELD")
        _, status, body = await exchange(cp, operator, "ClearChargingProfile", {"id": 3}, {"status": "Unknown"})
        still = await installed(operator, "SC-HELD")
        await exchange(cp, operator, "ClearChargingProfile", {"id": 3}, {"status": "Accepted"})
        after_id = await installed(operator, "SC-HELD")
        await exchange(cp, operator, "ClearChargingProfile", {"chargingProfilePurpose": "ChargePointMaxProfile"},
                       {"status": "Accepted"})
        after_purpose = await installed(operator, "SC-HELD")

    assert held == still == [(0, 1), (2, 3), (1, 4)]
    assert (status, body) == (200, {"status": "Unknown"})
    assert after_id == [(0, 1), (1, 4)]
    assert after_purpose == [(1, 4)]


async def test_the_composite_schedule_stacks_tx_over_default_under_the_cap(server, operator):
    async with connected(server, operator, "SC-COMPOSITE") as cp:
        await set_profile(cp, operator, 0, profile(1, "ChargePointMaxProfile", [(0, 20)]))
        await set_profile(cp, operator, 1, profile(2, "TxDefaultProfile", [(0, 32)]))
        transaction_id = await start_transaction(cp)
        await set_profile(cp, operator, 1, profile(3, "TxProfile", [(0, 10), (3600, 16), (7200, 24)],
                                                   kind="Relative", transactionId=transaction_id))
        # Ten minutes into the transaction: the relative TxProfile counts from its start.
        during = await operator.get("/api/chargepoints/SC-COMPOSITE/composite-schedule"
                                    "?connectorId=1&duration=7200&start=2030-01-01T00:10:00Z")
        whole = await operator.get("/api/chargepoints/SC-COMPOSITE/composite-schedule"
                                   "?connectorId=0&duration=60&start=2030-01-01T00:10:00Z")
        await cp.call("StopTransaction", {"transactionId": transaction_id, "meterStop": 5000,
                                          "timestamp": "2030-01-01T01:00:00Z"})
        after = await operator.get("/api/chargepoints/SC-COMPOSITE/composite-schedule"
                                   "?connectorId=1&duration=60&chargingRateUnit=W&start=2030-01-01T01:00:00Z")
        held = await installed(operator, "SC-COMPOSITE")

    assert during == {
        "status": "Accepted", "connectorId": 1, "scheduleStart": "2030-01-01T00:10:00.000Z",
        "chargingSchedule": {"duration": 7200, "chargingRateUnit": "A", "chargingSchedulePeriod": [
            {"startPeriod": 0, "limit": 10}, {"startPeriod": 3000, "limit": 16}, {"startPeriod": 6600, "limit": 20},
        ]},
    }
    assert whole["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 20}]
    # The TxProfile ended with its transaction; 20 A is 13800 W on three phases of 230 V.
    assert held == [(0, 1), (1, 2)]
    assert after["chargingSchedule"] == {"duration": 60, "chargingRateUnit": "W",
                                         "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 13800}]}


async def test_composite_schedule_parameters_are_checked(server, operator):
    await operator.register("SC-PARAMS")
    base = "/api/chargepoints/SC-PARAMS/composite-schedule"
    answers = [
        await operator.request("GET", f"{base}?duration=60"),
        await operator.request("GET", f"{base}?connectorId=1"),
        await operator.request("GET", f"{base}?connectorId=x&duration=60"),
        await operator.request("GET", f"{base}?connectorId=1&duration=60&chargingRateUnit=kW"),
        await operator.request("GET", "/api/chargepoints/SC-NOBODY/composite-schedule?connectorId=1&duration=60"),
        await operator.request("GET", f"{base}?connectorId=1&duration=60"),
    ]
    assert [status for status, _ in answers] == [400, 400, 400, 400, 404, 200]
    assert answers[-1][1]["chargingSchedule"]["chargingSchedulePeriod"] == []  # no profile: no limit


async def test_a_remote_start_profile_is_checked_then_limits_the_transaction_it_starts(server, operator):
    wrong = profile(7, "TxDefaultProfile", [(0, 16)], kind="Relative")
    right = profile(8, "TxProfile", [(0, 12)], kind="Relative")
    async with connected(server, operator, "SC-REMOTE") as cp:
        refused = await operator.command("SC-REMOTE", "RemoteStartTransaction",
                                         {"idTag": "SC-REMOTE-TAG", "connectorId": 2, "chargingProfile": wrong})
        await assert_nothing_was_sent(cp, operator)
        _, status, _ = await exchange(cp, operator, "RemoteStartTransaction",
                                      {"idTag": "SC-REMOTE-TAG", "connectorId": 2, "chargingProfile": right},
                                      {"status": "Accepted"})
        before_start = await installed(operator, "SC-REMOTE")
        transaction_id = await start_transaction(cp, connector_id=2, id_tag="SC-REMOTE-TAG")
        profiles = (await operator.get("/api/chargepoints/SC-REMOTE/charging-profiles"))["chargingProfiles"]
        schedule = await operator.get("/api/chargepoints/SC-REMOTE/composite-schedule"
                                      "?connectorId=2&duration=60&start=2030-01-01T00:00:30Z")
        await cp.call("StopTransaction", {"transactionId": transaction_id, "meterStop": 10,
                                          "timestamp": "2030-01-01T00:05:00Z"})
        after_stop = await installed(operator, "SC-REMOTE")

    assert refused[0] == 422 and "must be a TxProfile" in refused[1]["error"]
    assert status == 200 and before_start == []
    assert profiles == [{"connectorId": 2, "chargingProfile": dict(right, transactionId=transaction_id)}]
    assert schedule["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 12}]
    assert after_stop == []


async def test_get_composite_schedule_still_asks_the_charge_point_itself(server, operator):
    reply = {"status": "Accepted", "connectorId": 1, "scheduleStart": TX_START,
             "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6}]}}
    async with connected(server, operator, "SC-ASK") as cp:
        _, (status, body) = await answered(
            cp, operator.command("SC-ASK", "GetCompositeSchedule", {"connectorId": 1, "duration": 60}),
            "GetCompositeSchedule", reply,
        )
    assert (status, body) == (200, reply)
