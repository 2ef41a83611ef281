"""Remote Trigger end to end: each requestable message, triggered, then handled like any other."""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable

import pytest

from tests.e2e.steps import connected, exchange
from tests.ocpp_client import Operator, instant, shared_server

server = shared_server()

NOW = "2030-01-01T00:00:00Z"
METER_VALUE = [{"timestamp": NOW, "sampledValue": [{"value": "12.5", "unit": "kWh"}]}]

# requestedMessage -> (connectorId or None, the message the charge point then sends, the event it records,
# what it changes: a check of (before, after), the charge point's status just before and just after the message).
Check = Callable[[dict[str, Any], dict[str, Any]], Any]
TRIGGERED: dict[str, tuple[int | None, dict[str, Any], str, Check]] = {
    "BootNotification": (
        None, {"chargePointVendor": "Acme", "chargePointModel": "One", "firmwareVersion": "2.0"},
        "Booted", lambda before, after: (before["firmwareVersion"], after["firmwareVersion"]) == ("1.0", "2.0"),
    ),
    "DiagnosticsStatusNotification": (
        None, {"status": "Idle"}, "DiagnosticsStatusReported",
        lambda before, after: before["diagnosticsStatus"] != "Idle" and after["diagnosticsStatus"] == "Idle",
    ),
    "FirmwareStatusNotification": (
        None, {"status": "Idle"}, "FirmwareStatusReported",
        lambda before, after: before["firmwareStatus"] != "Idle" and after["firmwareStatus"] == "Idle",
    ),
    # A sign of life: the charge point was seen later than at the TriggerMessage reply.
    "Heartbeat": (
        None, {}, "HeartbeatReceived", lambda before, after: instant(after["lastSeen"]) > instant(before["lastSeen"]),
    ),
    "MeterValues": (
        2, {"connectorId": 2, "meterValue": METER_VALUE}, "MeterValuesReceived",
        lambda before, after: instant(after["lastSeen"]) > instant(before["lastSeen"]),
    ),
    "StatusNotification": (
        2, {"connectorId": 2, "errorCode": "NoError", "status": "SuspendedEV", "timestamp": NOW},
        "ConnectorStatusChanged",
        lambda before, after: "2" not in before["connectors"] and after["connectors"]["2"]["status"] == "SuspendedEV",
    ),
}


@pytest.fixture
async def operator(server: Any) -> AsyncIterator[Operator]:
    async with Operator(server.http) as operator:
        yield operator


@pytest.mark.parametrize("requested", sorted(TRIGGERED))
async def test_a_triggered_message_is_handled_like_any_other(server, operator, requested):
    connector_id, message, recorded, changed = TRIGGERED[requested]
    charge_point_id = f"TRIG-{requested}"[:48]
    trigger = {"requestedMessage": requested, **({"connectorId": connector_id} if connector_id is not None else {})}
    async with connected(server, operator, charge_point_id) as cp:
        call, status, body = await exchange(cp, operator, "TriggerMessage", trigger, {"status": "Accepted"})
        before = await operator.get(f"/api/chargepoints/{charge_point_id}")
        reply = await cp.call(requested, message)  # OCPP 1.6 5.17: after its TriggerMessage.conf
        state = await operator.get(f"/api/chargepoints/{charge_point_id}")
    events = await operator.events(charge_point_id)

    assert (status, body) == (200, {"status": "Accepted"})
    assert call[3] == trigger
    if requested in ("BootNotification", "Heartbeat"):
        assert reply["currentTime"].endswith("Z")
    else:
        assert reply == {}
    types = [event["type"] for event in events]
    answered_at = types.index("CallAnswered")
    assert recorded in types[answered_at + 1:]
    triggered = next(e for e in events[answered_at + 1:] if e["type"] == recorded)
    assert triggered["data"]["request"] == message
    assert changed(before, state), (before, state)
    assert state["commandOutcomes"]["TriggerMessage"] == {**trigger, "status": "Accepted"}


@pytest.mark.parametrize("answer", ["Rejected", "NotImplemented"])
async def test_a_trigger_the_charge_point_refuses_is_answered_as_given(server, operator, answer):
    charge_point_id = f"TRIG-REFUSED-{answer}"
    async with connected(server, operator, charge_point_id) as cp:
        _, status, body = await exchange(cp, operator, "TriggerMessage",
                                         {"requestedMessage": "MeterValues", "connectorId": 9}, {"status": answer})
    assert (status, body) == (200, {"status": answer})


async def test_a_trigger_for_a_message_that_cannot_be_requested_is_a_422(server, operator):
    async with connected(server, operator, "TRIG-BAD") as cp:
        status, body = await operator.command("TRIG-BAD", "TriggerMessage", {"requestedMessage": "StartTransaction"})
        assert cp.incoming_calls.empty()
    assert status == 422 and body["code"] == "PropertyConstraintViolation"
