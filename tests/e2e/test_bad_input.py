"""What a charge point can get wrong, and what it is told: CALLERRORs, dropped
frames, oversize frames, repeated message ids, and refused handshakes.

Two servers per store kind serve the module: the plain one, and one with
`--auto-register` and a small `--max-frame-size`.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

import aiohttp
import pytest

from adapters.ocpp.schemas import CHARGE_POINT_ACTIONS
from domain.answers import ANSWERS
from tests.ocpp_client import (
    ChargePointClient,
    Operator,
    event_field,
    exchanges,
    registered,
    shared_server,
    ws_base,
)

MAX_FRAME_SIZE = 4096
PASSWORD = "Correct-Horse-42"

HANDLED = frozenset({
    "Booted", "HeartbeatReceived", "ConnectorStatusChanged", "AuthorizationChecked", "TransactionStarted",
    "TransactionStartRepeated", "TransactionStopped", "MeterValuesReceived", "DataTransferReceived",
    "FirmwareStatusReported", "DiagnosticsStatusReported",
})

server = shared_server()
lenient_server = shared_server("--auto-register", "--max-frame-size", str(MAX_FRAME_SIZE))


@pytest.fixture
async def operator(server: Any) -> AsyncIterator[Operator]:
    async with Operator(server.http) as operator:
        yield operator


async def assert_still_served(cp: ChargePointClient) -> None:
    """The connection lives on, and nothing was answered that we did not ask."""
    beat = await cp.call("Heartbeat", {})
    assert "currentTime" in beat
    assert cp.unmatched.empty(), cp.unmatched.get_nowait()
    assert not cp.closed.is_set()


async def handled(operator: Operator, charge_point_id: str) -> list[str]:
    """The history's events that record a charge point's call the central system processed."""
    return [t for t in await operator.event_types(charge_point_id) if t in HANDLED]


async def refused_status(server: Any, charge_point_id: str, **options: Any) -> int:
    """The HTTP status a handshake is refused with."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await ChargePointClient(ws_base(server), charge_point_id, **options).connect()
    return refused.value.status


# ---- CALLERRORs ----------------------------------------------------------------------

CALL_ERRORS = {
    "unknown action": ("NotImplemented", [2, "{id}", "MakeCoffee", {}]),
    "an action only the central system sends": ("NotSupported", [2, "{id}", "Reset", {"type": "Hard"}]),
    "a payload that is not an object": ("FormationViolation", [2, "{id}", "Heartbeat", [1, 2]]),
    "a CALL without payload": ("FormationViolation", [2, "{id}", "Heartbeat"]),
    "a property the schema does not know": ("FormationViolation", [2, "{id}", "Heartbeat", {"extra": 1}]),
    "a status outside the enumeration": (
        "PropertyConstraintViolation",
        [2, "{id}", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"}],
    ),
    "an idTag longer than 20": ("PropertyConstraintViolation", [2, "{id}", "Authorize", {"idTag": "X" * 21}]),
    "a required field missing": (
        "OccurenceConstraintViolation", [2, "{id}", "BootNotification", {"chargePointVendor": "Acme"}],
    ),
    "a string where an integer belongs": (
        "TypeConstraintViolation",
        [2, "{id}", "StatusNotification", {"connectorId": "1", "errorCode": "NoError", "status": "Available"}],
    ),
    "an unknown message type id": ("ProtocolError", [7, "{id}", "Heartbeat", {}]),
    # OCPP 1.6 4.7's schema: at least one meterValue, each with at least one sampledValue.
    "an empty meterValue array": ("OccurenceConstraintViolation", [2, "{id}", "MeterValues",
                                                                   {"connectorId": 1, "meterValue": []}]),
    "an empty sampledValue array": ("OccurenceConstraintViolation", [2, "{id}", "MeterValues", {
        "connectorId": 1, "meterValue": [{"timestamp": "2030-01-01T00:00:00Z", "sampledValue": []}]}]),
    # The security extension's actions, recognised but not served yet (README: NotSupported).
    **{f"the security-extension action {action}": ("NotSupported", [2, "{id}", action, {}])
       for action in sorted(CHARGE_POINT_ACTIONS - set(ANSWERS))},
}


@pytest.mark.parametrize("case", list(CALL_ERRORS))
async def test_each_mistake_gets_its_call_error_and_the_connection_stays_open(server, operator, case):
    code, frame = CALL_ERRORS[case]
    charge_point_id = f"BAD-ERR-{list(CALL_ERRORS).index(case)}"
    message_id = f"err-{code}"
    frame = [message_id if part == "{id}" else part for part in frame]
    async with await registered(server, operator, charge_point_id) as cp:
        await cp.send_raw(json.dumps(frame))
        answer = await cp.unmatched.get()
        await assert_still_served(cp)

    assert answer[:3] == [4, message_id, code], answer
    assert isinstance(answer[3], str) and isinstance(answer[4], dict)
    assert await handled(operator, charge_point_id) == ["HeartbeatReceived"]


async def test_a_call_error_keeps_later_calls_in_order(server, operator):
    async with await registered(server, operator, "BAD-ORDER") as cp:
        bad = await cp.call_frame("Authorize", {"idTag": 42}, message_id="bad-1")
        good = await cp.call_frame("Authorize", {"idTag": "ORDER"}, message_id="good-1")
        await assert_still_served(cp)

    assert bad[:3] == [4, "bad-1", "TypeConstraintViolation"]
    assert good == [3, "good-1", {"idTagInfo": {"status": "Invalid"}}]


# ---- frames that cannot be answered ----------------------------------------------------------

DROPPED = {
    "not JSON": "this is not JSON {",
    "not an array": '{"messageTypeId": 2, "messageId": "x1", "action": "Heartbeat"}',
    "a bare number": "2",
    "no message id": "[2]",
    "a null message id": '[2, null, "Heartbeat", {}]',
    "a message id that is not a string": '[2, 17, "Heartbeat", {}]',
    "an empty message id": '[2, "", "Heartbeat", {}]',
    "a result to no call": '[3, "nobody-asked", {"status": "Accepted"}]',
    "an error to no call": '[4, "nobody-asked", "GenericError", "", {}]',
}


@pytest.mark.parametrize("case", list(DROPPED))
async def test_a_frame_that_cannot_be_answered_is_dropped_and_the_connection_lives_on(server, operator, case):
    charge_point_id = f"BAD-FRAME-{list(DROPPED).index(case)}"
    async with await registered(server, operator, charge_point_id) as cp:
        await cp.send_raw(DROPPED[case])
        await assert_still_served(cp)

    assert await handled(operator, charge_point_id) == ["HeartbeatReceived"]


async def test_an_oversize_frame_closes_only_that_connection_with_1009(lenient_server):
    async with Operator(lenient_server.http) as operator:
        bystander = ChargePointClient(ws_base(lenient_server), "BAD-BIG-BYSTANDER")
        async with bystander:
            async with ChargePointClient(ws_base(lenient_server), "BAD-BIG") as cp:
                await cp.call("Heartbeat", {})
                oversize = {"vendorId": "Acme", "data": "x" * (2 * MAX_FRAME_SIZE)}
                with pytest.raises(ConnectionError):
                    await cp.call_frame("DataTransfer", oversize, message_id="too-big")
                await cp.closed.wait()
                assert cp.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG

            # The server keeps serving the others, and the same charge point again.
            await assert_still_served(bystander)
            async with ChargePointClient(ws_base(lenient_server), "BAD-BIG") as again:
                await assert_still_served(again)
            async with ChargePointClient(ws_base(lenient_server), "BAD-BIG-NEWCOMER") as newcomer:
                await assert_still_served(newcomer)

        types = await operator.event_types("BAD-BIG")
    assert "DataTransferReceived" not in types
    assert types == [
        "Registered", "Connected", "HeartbeatReceived", "Disconnected",
        "Connected", "HeartbeatReceived", "Disconnected",
    ]


# ---- schema-valid values the central system cannot hold --------------------------------------

START = {"connectorId": 1, "idTag": "HOLD-TAG", "meterStart": 0, "timestamp": "2025-06-01T10:00:00Z"}
SAMPLE = {"timestamp": "2025-06-01T10:05:00Z", "sampledValue": [{"value": "100"}]}
STATUS = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
STOP = {"transactionId": 1, "meterStop": 10, "timestamp": "2025-06-01T11:00:00Z"}
UNHOLDABLE = {
    "year 0": ("StartTransaction", dict(START, timestamp="0000-01-01T00:00:00Z"), "timestamp"),
    "a leap second past year 9999": ("StartTransaction", dict(START, timestamp="9999-12-31T23:59:60Z"), "timestamp"),
    "before year 1 in UTC": ("StartTransaction", dict(START, timestamp="0001-01-01T00:00:00+14:00"), "timestamp"),
    "after year 9999 in UTC": ("StartTransaction", dict(START, timestamp="9999-12-31T23:59:59-14:00"), "timestamp"),
    "a stop in year 0": ("StopTransaction", dict(STOP, timestamp="0000-01-01T00:00:00Z"), "timestamp"),
    "transaction data past year 9999": (
        "StopTransaction", dict(STOP, transactionData=[dict(SAMPLE, timestamp="9999-12-31T23:59:60Z")]),
        "transactionData[0].timestamp",
    ),
    "a meter value in year 0": (
        "MeterValues", {"connectorId": 1, "meterValue": [SAMPLE, dict(SAMPLE, timestamp="0000-01-01T00:00:00Z")]},
        "meterValue[1].timestamp",
    ),
    "a status before year 1 in UTC": (
        "StatusNotification", dict(STATUS, timestamp="0001-01-01T00:00:00+14:00"), "timestamp",
    ),
    "a NUL in the vendor": (
        "BootNotification", {"chargePointVendor": "Acme\x00", "chargePointModel": "One"}, "chargePointVendor",
    ),
    "a NUL in a status info": ("StatusNotification", dict(STATUS, info="jam\x00med"), "info"),
    "a NUL in a started idTag": ("StartTransaction", dict(START, idTag="HOLD\x00TAG"), "idTag"),
    "a NUL in an authorized idTag": ("Authorize", {"idTag": "\x00"}, "idTag"),
    "a NUL in a sampled value": (
        "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": "2025-06-01T10:05:00Z",
                                                          "sampledValue": [{"value": "1\x00"}]}]},
        "meterValue[0].sampledValue[0].value",
    ),
    "a NUL in vendor data": ("DataTransfer", {"vendorId": "Acme", "data": "a\x00b"}, "data"),
}


async def read_model_failures(server: Any, operator: Operator) -> int:
    assert operator.session is not None
    async with operator.session.get(f"{server.http}/metrics", headers={"Authorization": ""}) as response:
        text = await response.text()
    counted = [line for line in text.splitlines() if line.startswith("csms_read_model_failures{")]
    assert len(counted) == 1, text
    return int(counted[0].split()[1])


@pytest.mark.parametrize("case", list(UNHOLDABLE))
async def test_a_value_no_store_can_hold_is_refused_and_nothing_is_recorded(server, operator, case):
    action, payload, field = UNHOLDABLE[case]
    charge_point_id = f"BAD-HOLD-{list(UNHOLDABLE).index(case)}"
    await operator.save_id_tag("HOLD-TAG", "Accepted")
    async with await registered(server, operator, charge_point_id) as cp:
        refused = await cp.call_frame(action, payload, message_id="unholdable")
        # A retry is refused alike: the value is the charge point's, not a fault of ours.
        refused_again = await cp.call_frame(action, payload, message_id="unholdable-again")
        await assert_still_served(cp)

    assert refused[:3] == [4, "unholdable", "PropertyConstraintViolation"], refused
    assert refused_again[2:] == refused[2:]
    assert field in refused[3] and refused[4] == {"path": field}
    assert await handled(operator, charge_point_id) == ["HeartbeatReceived"]
    status, body = await operator.request("GET", "/api/transactions")
    assert status == 200, body
    status, body = await operator.request("GET", f"/api/chargepoints/{charge_point_id}")
    assert status == 200, body
    assert await read_model_failures(server, operator) == 0


async def test_a_sampled_value_that_is_no_number_is_kept_and_not_counted_as_energy(server, operator):
    readings = [{"value": "1e1000000"}, {"value": "1e999999", "unit": "kWh"}, {"value": "NaN"}, {"value": "250"}]
    request = {"connectorId": 1, "meterValue": [{"timestamp": "2025-06-01T10:05:00Z", "sampledValue": readings}]}
    async with await registered(server, operator, "BAD-HUGE-METER") as cp:
        answer = await cp.call_frame("MeterValues", request, message_id="huge")
        await assert_still_served(cp)

    assert answer == [3, "huge", {}]
    recorded = exchanges(await operator.events("BAD-HUGE-METER"))["huge"]
    assert event_field(recorded, "request") == request  # as received
    assert [r["energyWh"] for r in event_field(recorded, "energyReadings")] in ([250], ["250"])
    assert await read_model_failures(server, operator) == 0


# ---- a repeated message id -------------------------------------------------------------------


async def test_a_repeated_message_id_is_answered_again_and_not_processed_twice(server, operator):
    await operator.save_id_tag("DUP-TAG", "Accepted")
    start = {"connectorId": 1, "idTag": "DUP-TAG", "meterStart": 10, "timestamp": "2025-06-01T10:00:00Z"}
    async with await registered(server, operator, "BAD-DUP") as cp:
        beat = await cp.call_frame("Heartbeat", {}, message_id="dup-beat")
        beat_again = await cp.call_frame("Heartbeat", {}, message_id="dup-beat")
        started = await cp.call_frame("StartTransaction", start, message_id="dup-start")
        started_again = await cp.call_frame("StartTransaction", start, message_id="dup-start")
        # Sent twice before any answer: the second still gets the first one's reply.
        frame = json.dumps([2, "dup-data", "DataTransfer", {"vendorId": "Acme", "data": "once"}])
        await cp.send_raw(frame)
        await cp.send_raw(frame)
        first, second = await cp.unmatched.get(), await cp.unmatched.get()
        await assert_still_served(cp)

    assert beat_again == beat and beat[0] == 3
    assert started_again == started and started[0] == 3
    assert first == second == [3, "dup-data", {"status": "UnknownVendorId"}]
    events = await operator.events("BAD-DUP")
    message_ids = [event_field(e, "messageId") for e in events if e["type"] not in (
        "Registered", "Connected", "Disconnected")]
    for message_id in ("dup-beat", "dup-start", "dup-data"):
        assert message_ids.count(message_id) == 1, (message_id, message_ids)


async def test_a_message_id_used_again_for_another_call_is_a_new_call(server, operator):
    await operator.save_id_tag("REUSE-TAG", "Accepted")
    first_start = {"connectorId": 1, "idTag": "REUSE-TAG", "meterStart": 10, "timestamp": "2025-06-01T10:00:00Z"}
    other_start = {"connectorId": 2, "idTag": "REUSE-TAG", "meterStart": 20, "timestamp": "2025-06-01T11:00:00Z"}
    async with await registered(server, operator, "BAD-REUSE") as cp:
        booted = await cp.call_frame("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "One"},
                                     message_id="reused")
        # The same id with another action: answered by that action, not with the boot's reply.
        beat = await cp.call_frame("Heartbeat", {}, message_id="reused")
        # The same id, action and payload: the remembered reply, recorded once.
        booted_again = await cp.call_frame(
            "BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "One"}, message_id="reused")
        beat_again = await cp.call_frame("Heartbeat", {}, message_id="reused")
        started = await cp.call_frame("StartTransaction", first_start, message_id="reused-start")
        # The same id and action with another payload: another transaction.
        other = await cp.call_frame("StartTransaction", other_start, message_id="reused-start")
        started_again = await cp.call_frame("StartTransaction", first_start, message_id="reused-start")
        await assert_still_served(cp)

    assert booted[0] == 3 and booted[2]["status"] == "Accepted"
    assert beat[0] == 3 and set(beat[2]) == {"currentTime"}
    assert booted_again == booted and beat_again == beat
    assert started[0] == other[0] == 3
    assert other[2]["transactionId"] != started[2]["transactionId"]
    assert started_again == started
    recorded = [(e["type"], event_field(e, "messageId")) for e in await operator.events("BAD-REUSE")
                if e["type"] in HANDLED]
    assert recorded == [
        ("Booted", "reused"), ("HeartbeatReceived", "reused"),
        ("TransactionStarted", "reused-start"), ("TransactionStarted", "reused-start"),
        ("HeartbeatReceived", "m1"),
    ]


# ---- refused and accepted handshakes ----------------------------------------------------------


async def test_an_unknown_charge_point_is_refused_with_404(server, operator):
    assert await refused_status(server, "BAD-UNKNOWN") == 404
    status, _ = await operator.request("GET", "/api/chargepoints/BAD-UNKNOWN")
    assert status == 404


async def test_an_unknown_charge_point_is_registered_with_auto_register(lenient_server):
    async with ChargePointClient(ws_base(lenient_server), "BAD-AUTO") as cp:
        boot = await cp.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "Auto"})

    assert boot["status"] == "Accepted"
    async with Operator(lenient_server.http) as operator:
        status = await operator.get("/api/chargepoints/BAD-AUTO")
        types = await operator.event_types("BAD-AUTO")
    assert status["autoRegistered"] is True and status["vendor"] == "Acme"
    assert types == ["Registered", "Connected", "Booted", "Disconnected"]


async def test_a_charge_point_with_a_password_needs_the_right_basic_auth(server, operator):
    registered_reply = await operator.register("BAD-PW", password=PASSWORD)

    assert await refused_status(server, "BAD-PW") == 401
    assert await refused_status(server, "BAD-PW", password="Wrong-Horse-42") == 401
    assert await refused_status(server, "BAD-PW", password=PASSWORD.lower()) == 401
    async with ChargePointClient(ws_base(server), "BAD-PW", password=PASSWORD) as cp:
        await cp.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "Secure"})

    # A new password replaces the old one at once.
    replaced_reply = await operator.register("BAD-PW", password=PASSWORD + "-new")
    assert await refused_status(server, "BAD-PW", password=PASSWORD) == 401
    async with ChargePointClient(ws_base(server), "BAD-PW", password=PASSWORD + "-new") as cp:
        await cp.call("Heartbeat", {})

    # The password is never said back: not in history, not in any API answer.
    answers = [
        registered_reply,
        replaced_reply,
        await operator.get("/api/chargepoints/BAD-PW"),
        await operator.get("/api/chargepoints"),
        await operator.events("BAD-PW"),
    ]
    for answer in answers:
        assert PASSWORD not in json.dumps(answer)
    assert await operator.event_types("BAD-PW") == [
        "Registered", "CredentialsChanged", "Connected", "Booted", "Disconnected",
        "CredentialsChanged", "Connected", "HeartbeatReceived", "Disconnected",
    ]


async def test_a_client_not_offering_ocpp16_is_refused(server, operator):
    await operator.register("BAD-PROTO")

    assert await refused_status(server, "BAD-PROTO", protocols=("ocpp2.0.1",)) == 400  # as README promises
    assert await refused_status(server, "BAD-PROTO", protocols=()) == 400
    assert await operator.event_types("BAD-PROTO") == ["Registered"]


async def test_ocpp16_is_selected_when_offered_among_others(server, operator):
    async with await registered(server, operator, "BAD-PROTOS", protocols=("ocpp2.0.1", "ocpp1.6", "ocpp1.5")) as cp:
        assert cp.ws is not None and cp.ws.protocol == "ocpp1.6"
        await assert_still_served(cp)
