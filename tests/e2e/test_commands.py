"""Operator commands: every CSMS-initiated OCPP 1.6 call through the REST API.

A real charge point (a WebSocket client) receives each call and answers it;
the tests check what it received, what the API answered, the history the
call left (CallSent, then CallAnswered, CallFailed or CallTimedOut, by
message id) and what the central system learned from the answer.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest

from adapters.ocpp.schemas import CENTRAL_SYSTEM_ACTIONS
from tests.certificates import certificate_authority, issue
from tests.ocpp_client import ChargePointClient, Operator, shared_server, ws_base

server = shared_server()  # --call-timeout 2, one per store kind for this module

FUTURE = "2099-01-01T00:00:00Z"
PAST = "2020-01-01T00:00:00Z"
SCHEDULE = {
    "chargingRateUnit": "A",
    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}, {"startPeriod": 1800, "limit": 8.5}],
    "duration": 3600,
    "startSchedule": "2030-01-01T00:00:00Z",
}

ROOT = certificate_authority("Sample Root")
HASH_DATA = {"hashAlgorithm": "SHA256", "issuerNameHash": "a" * 64, "issuerKeyHash": "b" * 64, "serialNumber": "1f"}

# action -> (a valid request, the charge point's accepting reply, a refusing reply)
SAMPLES: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "CancelReservation": ({"reservationId": 7}, {"status": "Accepted"}, {"status": "Rejected"}),
    "ChangeAvailability": (
        {"connectorId": 1, "type": "Inoperative"}, {"status": "Accepted"}, {"status": "Rejected"},
    ),
    "ChangeConfiguration": (
        {"key": "HeartbeatInterval", "value": "120"}, {"status": "Accepted"}, {"status": "Rejected"},
    ),
    "ClearCache": ({}, {"status": "Accepted"}, {"status": "Rejected"}),
    "ClearChargingProfile": (
        {"id": 3, "connectorId": 1, "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 0},
        {"status": "Accepted"},
        {"status": "Unknown"},
    ),
    "DataTransfer": (
        {"vendorId": "com.example", "messageId": "Ping", "data": '{"n": 1}'},
        {"status": "Accepted", "data": "pong"},
        {"status": "UnknownVendorId"},
    ),
    "GetCompositeSchedule": (
        {"connectorId": 1, "duration": 3600, "chargingRateUnit": "A"},
        {"status": "Accepted", "connectorId": 1, "scheduleStart": "2030-01-01T00:00:00Z", "chargingSchedule": SCHEDULE},
        {"status": "Rejected"},
    ),
    "GetConfiguration": (
        {"key": ["HeartbeatInterval", "NoSuchKey"]},
        {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
         "unknownKey": ["NoSuchKey"]},
        {"unknownKey": ["HeartbeatInterval", "NoSuchKey"]},
    ),
    "GetDiagnostics": (
        {"location": "ftp://diagnostics.example/upload/", "retries": 2, "retryInterval": 60,
         "startTime": PAST, "stopTime": FUTURE},
        {"fileName": "diagnostics-0001.zip"},
        {},
    ),
    "GetLocalListVersion": ({}, {"listVersion": 4}, {"listVersion": -1}),
    "RemoteStartTransaction": (
        {"connectorId": 1, "idTag": "REMOTE-TAG",
         "chargingProfile": {"chargingProfileId": 11, "stackLevel": 1, "chargingProfilePurpose": "TxProfile",
                             "chargingProfileKind": "Relative",
                             "chargingSchedule": {"chargingRateUnit": "W",
                                                  "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.0}]}}},
        {"status": "Accepted"},
        {"status": "Rejected"},
    ),
    "RemoteStopTransaction": ({"transactionId": 42}, {"status": "Accepted"}, {"status": "Rejected"}),
    "ReserveNow": (
        {"connectorId": 1, "expiryDate": FUTURE, "idTag": "RESERVE-TAG", "parentIdTag": "PARENT", "reservationId": 7},
        {"status": "Accepted"},
        {"status": "Occupied"},
    ),
    "Reset": ({"type": "Soft"}, {"status": "Accepted"}, {"status": "Rejected"}),
    "SendLocalList": (
        {"listVersion": 5, "updateType": "Full",
         "localAuthorizationList": [{"idTag": "LOCAL-1", "idTagInfo": {"status": "Accepted", "expiryDate": FUTURE}},
                                    {"idTag": "LOCAL-2", "idTagInfo": {"status": "Blocked"}}]},
        {"status": "Accepted"},
        {"status": "VersionMismatch"},
    ),
    "SetChargingProfile": (
        {"connectorId": 1,
         "csChargingProfiles": {"chargingProfileId": 21, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
                                "chargingProfileKind": "Absolute", "chargingSchedule": SCHEDULE}},
        {"status": "Accepted"},
        {"status": "Rejected"},
    ),
    "TriggerMessage": (
        {"requestedMessage": "StatusNotification", "connectorId": 1}, {"status": "Accepted"}, {"status": "Rejected"},
    ),
    "UnlockConnector": ({"connectorId": 1}, {"status": "Unlocked"}, {"status": "UnlockFailed"}),
    "UpdateFirmware": (
        {"location": "https://firmware.example/cp-2.0.bin", "retrieveDate": FUTURE, "retries": 1, "retryInterval": 30},
        {},
        {},  # UpdateFirmware.conf carries nothing: the charge point cannot refuse
    ),
    # The Security Whitepaper's.
    "CertificateSigned": (
        {"certificateChain": issue(ROOT, "SAMPLE-CP").pem + ROOT.pem}, {"status": "Accepted"}, {"status": "Rejected"},
    ),
    "DeleteCertificate": ({"certificateHashData": HASH_DATA}, {"status": "Accepted"}, {"status": "NotFound"}),
    "ExtendedTriggerMessage": (
        {"requestedMessage": "StatusNotification", "connectorId": 1}, {"status": "Accepted"}, {"status": "Rejected"},
    ),
    "GetInstalledCertificateIds": (
        {"certificateType": "ManufacturerRootCertificate"},
        {"status": "Accepted", "certificateHashData": [HASH_DATA]},
        {"status": "NotFound"},
    ),
    "GetLog": (
        {"logType": "SecurityLog", "requestId": 1, "log": {"remoteLocation": "https://logs.example/upload"}},
        {"status": "Accepted", "filename": "security.log"},
        {"status": "Rejected"},
    ),
    "InstallCertificate": (
        {"certificateType": "ManufacturerRootCertificate", "certificate": ROOT.pem},
        {"status": "Accepted"},
        {"status": "Rejected"},
    ),
    "SignedUpdateFirmware": (
        {"requestId": 1, "retries": 1, "firmware": {
            "location": "https://firmware.example/cp-2.1.bin", "retrieveDateTime": FUTURE,
            "signingCertificate": ROOT.pem, "signature": "c2lnbmF0dXJl"}},
        {"status": "Accepted"},
        {"status": "Rejected"},
    ),
}


@pytest.fixture
async def operator(server: Any) -> AsyncIterator[Operator]:
    async with Operator(server.http) as operator:
        yield operator


@asynccontextmanager
async def connected(server: Any, operator: Operator, charge_point_id: str,
                    password: str | None = None) -> AsyncIterator[ChargePointClient]:
    """A registered charge point, connected over WebSocket."""
    await operator.register(charge_point_id, password=password)
    async with ChargePointClient(ws_base(server), charge_point_id, password=password) as cp:
        yield cp


def send(operator: Operator, charge_point_id: str, action: str, payload: Any) -> asyncio.Future[tuple[int, Any]]:
    """Starts a command through the API; the charge point must answer before it completes."""
    return asyncio.ensure_future(operator.command(charge_point_id, action, payload))


async def exchange(cp: ChargePointClient, operator: Operator, action: str, payload: dict[str, Any],
                   reply: dict[str, Any]) -> tuple[list[Any], int, Any]:
    """Sends a command, checks the charge point got exactly it, answers: (call, status, body)."""
    command = send(operator, cp.id, action, payload)
    call = await cp.next_call()
    assert call[0] == 2 and call[2:] == [action, payload]
    await cp.reply(call, reply)
    status, body = await command
    return call, status, body


async def calls_in_history(operator: Operator, charge_point_id: str) -> dict[str, list[dict[str, Any]]]:
    """The Call* events of a charge point, grouped by message id, in history order."""
    found: dict[str, list[dict[str, Any]]] = {}
    for event in await operator.events(charge_point_id):
        if event["type"].startswith("Call"):
            found.setdefault(event["data"]["messageId"], []).append(event)
    return found


async def status_of(operator: Operator, charge_point_id: str) -> dict[str, Any]:
    return await operator.get(f"/api/chargepoints/{charge_point_id}")


async def assert_nothing_was_sent(cp: ChargePointClient, operator: Operator) -> None:
    """The next call the charge point sees is a fresh one: nothing was sent before it."""
    call, status, _ = await exchange(cp, operator, "ClearCache", {}, {"status": "Accepted"})
    assert status == 200
    assert call[2] == "ClearCache"
    assert cp.incoming_calls.empty()


# ---- every action ------------------------------------------------------------------


def test_the_samples_cover_every_csms_initiated_action():
    assert set(SAMPLES) == CENTRAL_SYSTEM_ACTIONS


@pytest.mark.parametrize("action", sorted(SAMPLES))
async def test_each_action_reaches_the_charge_point_and_its_reply_is_the_answer(server, operator, action):
    request, reply, _ = SAMPLES[action]
    charge_point_id = f"CMD-OK-{action}"
    async with connected(server, operator, charge_point_id) as cp:
        call, status, body = await exchange(cp, operator, action, request, reply)

    assert (status, body) == (200, reply)
    history = (await calls_in_history(operator, charge_point_id))[call[1]]
    assert [event["type"] for event in history] == ["CallSent", "CallAnswered"]
    sent, answered = (event["data"] for event in history)
    assert sent["action"] == answered["action"] == action
    assert sent["request"] == answered["request"] == request
    assert answered["reply"] == reply


@pytest.mark.parametrize("action", sorted(SAMPLES))
async def test_a_refusal_is_answered_as_given_and_teaches_nothing(server, operator, action):
    request, _, refusal = SAMPLES[action]
    charge_point_id = f"CMD-NO-{action}"
    async with connected(server, operator, charge_point_id) as cp:
        before = await status_of(operator, charge_point_id)
        call, status, body = await exchange(cp, operator, action, request, refusal)
        after = await status_of(operator, charge_point_id)

    assert (status, body) == (200, refusal)
    history = (await calls_in_history(operator, charge_point_id))[call[1]]
    assert [event["type"] for event in history] == ["CallSent", "CallAnswered"]
    assert history[1]["data"]["reply"] == refusal
    if action != "GetLocalListVersion":  # -1 is what it reports: no local list
        assert after["localListVersion"] == before["localListVersion"]
    if action != "GetConfiguration":  # the keys it does not know are forgotten
        assert after["configuration"] == before["configuration"]
    assert availabilities(after) == availabilities(before)


def availabilities(status: dict[str, Any]) -> dict[str, str]:
    return {cid: c["availability"] for cid, c in status["connectors"].items() if c["availability"] is not None}


# ---- what the central system learns from answers -----------------------------------------


async def test_configuration_is_learned_from_get_configuration_and_accepted_changes(server, operator):
    async with connected(server, operator, "CMD-CONFIG") as cp:
        await exchange(cp, operator, "GetConfiguration", {}, {"configurationKey": [
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            {"key": "MeterValueSampleInterval", "readonly": False, "value": "60"},
            {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
            {"key": "ConnectionTimeOut", "readonly": False, "value": "30"},
        ]})
        await exchange(cp, operator, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "120"},
                       {"status": "Accepted"})
        # CiString50: the same key in another case is the same key.
        await exchange(cp, operator, "ChangeConfiguration", {"key": "meterValueSampleInterval", "value": "15"},
                       {"status": "RebootRequired"})
        await exchange(cp, operator, "ChangeConfiguration", {"key": "NumberOfConnectors", "value": "4"},
                       {"status": "Rejected"})
        await exchange(cp, operator, "ChangeConfiguration", {"key": "ConnectionTimeOut", "value": "45"},
                       {"status": "NotSupported"})
        await exchange(cp, operator, "GetConfiguration", {"key": ["ConnectionTimeOut"]},
                       {"unknownKey": ["connectiontimeout"]})
        status = await status_of(operator, "CMD-CONFIG")

    assert status["configuration"] == {
        "HeartbeatInterval": {"value": "120", "readonly": False, "status": "Accepted"},
        "MeterValueSampleInterval": {"value": "15", "readonly": False, "status": "RebootRequired"},
        "NumberOfConnectors": {"value": "2", "readonly": True},
    }


async def test_availability_is_learned_from_accepted_and_scheduled_changes(server, operator):
    async with connected(server, operator, "CMD-AVAIL") as cp:
        await cp.call("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"})
        await exchange(cp, operator, "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"},
                       {"status": "Accepted"})
        await exchange(cp, operator, "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"},
                       {"status": "Scheduled"})
        await exchange(cp, operator, "ChangeAvailability", {"connectorId": 2, "type": "Inoperative"},
                       {"status": "Rejected"})
        await exchange(cp, operator, "ChangeAvailability", {"connectorId": 0, "type": "Operative"},
                       {"status": "Accepted"})
        connectors = (await status_of(operator, "CMD-AVAIL"))["connectors"]

    assert connectors["0"]["availability"] == "Operative"
    assert connectors["1"]["availability"] == "Inoperative"
    assert connectors["1"]["status"] == "Charging"
    assert "2" not in connectors


async def test_the_local_list_version_follows_reports_and_accepted_lists(server, operator):
    def local_list(version: int) -> dict[str, Any]:
        return {"listVersion": version, "updateType": "Differential",
                "localAuthorizationList": [{"idTag": f"LOCAL-{version}", "idTagInfo": {"status": "Accepted"}}]}

    async with connected(server, operator, "CMD-LIST") as cp:
        versions = [(await status_of(operator, "CMD-LIST"))["localListVersion"]]
        await exchange(cp, operator, "GetLocalListVersion", {}, {"listVersion": 3})
        versions.append((await status_of(operator, "CMD-LIST"))["localListVersion"])
        await exchange(cp, operator, "SendLocalList", local_list(4), {"status": "Accepted"})
        versions.append((await status_of(operator, "CMD-LIST"))["localListVersion"])
        for refusal in ("VersionMismatch", "Failed", "NotSupported"):
            await exchange(cp, operator, "SendLocalList", local_list(5), {"status": refusal})
        versions.append((await status_of(operator, "CMD-LIST"))["localListVersion"])

    assert versions == [None, 3, 4, 4]


async def test_reset_cache_unlock_trigger_diagnostics_and_firmware_answers_are_kept(server, operator):
    steps: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("Reset", {"type": "Hard"}, {"status": "Accepted"}),
        ("ClearCache", {}, {"status": "Rejected"}),
        ("UnlockConnector", {"connectorId": 1}, {"status": "UnlockFailed"}),
        ("UnlockConnector", {"connectorId": 2}, {"status": "Unlocked"}),
        ("TriggerMessage", {"requestedMessage": "MeterValues", "connectorId": 2}, {"status": "Accepted"}),
        ("GetDiagnostics", {"location": "ftp://diag.example/"}, {"fileName": "d.zip"}),
        ("UpdateFirmware", {"location": "https://fw.example/2.bin", "retrieveDate": FUTURE}, {}),
    ]
    async with connected(server, operator, "CMD-OUTCOMES") as cp:
        for action, request, reply in steps:
            await exchange(cp, operator, action, request, reply)
        status = await status_of(operator, "CMD-OUTCOMES")

    assert status["commandOutcomes"] == {
        "Reset": {"type": "Hard", "status": "Accepted"},
        "ClearCache": {"status": "Rejected"},
        "TriggerMessage": {"requestedMessage": "MeterValues", "connectorId": 2, "status": "Accepted"},
        "GetDiagnostics": {"location": "ftp://diag.example/", "fileName": "d.zip"},
        "UpdateFirmware": {"location": "https://fw.example/2.bin", "retrieveDate": FUTURE},
    }
    assert status["connectors"]["1"]["unlockStatus"] == "UnlockFailed"
    assert status["connectors"]["2"]["unlockStatus"] == "Unlocked"


# ---- failures ------------------------------------------------------------------------


async def test_a_callerror_is_a_502_with_its_code_and_description_and_teaches_nothing(server, operator):
    async with connected(server, operator, "CMD-CALLERROR") as cp:
        command = send(operator, "CMD-CALLERROR", "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
        call = await cp.next_call()
        await cp.reply_error(call, "NotSupported", "no such connector here", {"connectors": 0})
        status, body = await command
        connectors = (await status_of(operator, "CMD-CALLERROR"))["connectors"]

    assert status == 502
    assert body["errorCode"] == "NotSupported"
    assert body["errorDescription"] == "no such connector here"
    assert body["errorDetails"] == {"connectors": 0}
    assert "NotSupported" in body["error"]
    history = (await calls_in_history(operator, "CMD-CALLERROR"))[call[1]]
    assert [event["type"] for event in history] == ["CallSent", "CallFailed"]
    failed = history[1]["data"]
    assert (failed["errorCode"], failed["errorDescription"]) == ("NotSupported", "no such connector here")
    assert failed["errorDetails"] == {"connectors": 0}
    assert "1" not in connectors


async def test_a_reply_that_breaks_its_schema_is_a_502_and_a_failed_call(server, operator):
    async with connected(server, operator, "CMD-BADREPLY") as cp:
        command = send(operator, "CMD-BADREPLY", "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
        call = await cp.next_call()
        await cp.reply(call, {"status": "Maybe"})
        status, body = await command
        connectors = (await status_of(operator, "CMD-BADREPLY"))["connectors"]

    assert status == 502
    assert body["errorCode"] == "PropertyConstraintViolation"
    history = (await calls_in_history(operator, "CMD-BADREPLY"))[call[1]]
    assert [event["type"] for event in history] == ["CallSent", "CallFailed"]
    assert history[1]["data"]["errorCode"] == "PropertyConstraintViolation"
    assert "1" not in connectors


async def test_no_answer_is_a_504_and_a_late_reply_is_dropped_not_paired_with_the_next_call(server, operator):
    async with connected(server, operator, "CMD-TIMEOUT") as cp:
        first_command = send(operator, "CMD-TIMEOUT", "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
        first = await cp.next_call()
        timed_out = await first_command  # the server's call timeout is 2 s

        second_command = send(operator, "CMD-TIMEOUT", "DataTransfer", {"vendorId": "com.example"})
        second = await cp.next_call()
        # Both would fit a DataTransfer reply: neither may be taken for one.
        await cp.reply(first, {"status": "Accepted"})
        await cp.send_raw(json.dumps([3, "no-such-call", {"status": "Rejected"}]))
        await cp.reply(second, {"status": "Accepted", "data": "the real answer"})
        answered = await second_command
        connectors = (await status_of(operator, "CMD-TIMEOUT"))["connectors"]

    assert timed_out[0] == 504 and "error" in timed_out[1]
    assert answered == (200, {"status": "Accepted", "data": "the real answer"})
    history = await calls_in_history(operator, "CMD-TIMEOUT")
    assert [event["type"] for event in history[first[1]]] == ["CallSent", "CallTimedOut"]
    assert [event["type"] for event in history[second[1]]] == ["CallSent", "CallAnswered"]
    assert set(history) == {first[1], second[1]}
    assert "1" not in connectors  # the late Accepted taught nothing


async def test_a_registered_charge_point_that_is_not_connected_is_a_409_and_nothing_is_recorded(server, operator):
    await operator.register("CMD-NEVER")
    never = await operator.command("CMD-NEVER", "Reset", {"type": "Soft"})
    async with connected(server, operator, "CMD-GONE") as cp:
        await cp.call("Heartbeat", {})
    gone = await operator.command("CMD-GONE", "Reset", {"type": "Soft"})

    assert never[0] == gone[0] == 409
    assert "not connected" in never[1]["error"]
    assert await calls_in_history(operator, "CMD-NEVER") == {}
    assert await calls_in_history(operator, "CMD-GONE") == {}


async def test_a_charge_point_that_disconnects_before_answering_is_a_409_and_a_failed_call(server, operator):
    async with connected(server, operator, "CMD-HANGUP") as cp:
        command = send(operator, "CMD-HANGUP", "Reset", {"type": "Hard"})
        call = await cp.next_call()
    status, body = await command

    assert status == 409 and "error" in body
    history = (await calls_in_history(operator, "CMD-HANGUP"))[call[1]]
    assert [event["type"] for event in history] == ["CallSent", "CallFailed"]
    assert history[1]["data"]["errorCode"] == "ConnectionLost"


async def test_an_unknown_charge_point_is_a_404(server, operator):
    status, body = await operator.command("CMD-NOBODY", "Reset", {"type": "Soft"})
    events_status, _ = await operator.request("GET", "/api/chargepoints/CMD-NOBODY/events")

    assert status == 404 and "CMD-NOBODY" in body["error"]
    assert events_status == 404


@pytest.mark.parametrize("action", ["NoSuchAction", "BootNotification", "reset", "SecurityEventNotification"])
async def test_an_unknown_action_is_a_404_and_nothing_is_sent(server, operator, action):
    charge_point_id = f"CMD-UNKNOWN-{action}"
    async with connected(server, operator, charge_point_id) as cp:
        status, body = await operator.command(charge_point_id, action, {})
        await assert_nothing_was_sent(cp, operator)

    assert status == 404
    assert action in body["error"]
    assert body["actions"] == sorted(CENTRAL_SYSTEM_ACTIONS)


NOT_JSON_OBJECTS = [b"{not json", b"[1, 2]", b'"Soft"', b"\xff\xfe"]


@pytest.mark.parametrize("raw", NOT_JSON_OBJECTS)
async def test_a_body_that_is_not_a_json_object_is_a_400_and_nothing_is_sent(server, operator, raw):
    charge_point_id = f"CMD-BADJSON-{NOT_JSON_OBJECTS.index(raw)}"
    async with connected(server, operator, charge_point_id) as cp:
        status, body = await operator.request(
            "POST", f"/api/chargepoints/{charge_point_id}/commands/Reset", raw=raw
        )
        await assert_nothing_was_sent(cp, operator)
        history = await calls_in_history(operator, charge_point_id)

    assert status == 400 and isinstance(body["error"], str)
    assert [events[0]["data"]["action"] for events in history.values()] == ["ClearCache"]


INVALID_PAYLOADS = [
    ("Reset", {}, "OccurenceConstraintViolation"),  # required type missing
    ("Reset", {"type": "Sideways"}, "PropertyConstraintViolation"),  # not in the enum
    ("ChangeAvailability", {"connectorId": "one", "type": "Operative"}, "TypeConstraintViolation"),
    ("ClearCache", {"please": True}, "FormationViolation"),  # additionalProperties: false
    ("ChangeConfiguration", {"key": "K" * 51, "value": "1"}, "PropertyConstraintViolation"),  # CiString50
    ("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": {"chargingProfileId": 1}},
     "OccurenceConstraintViolation"),
]


@pytest.mark.parametrize(("action", "payload", "code"), INVALID_PAYLOADS)
async def test_a_payload_that_breaks_the_schema_is_a_422_and_nothing_is_sent(server, operator, action, payload, code):
    charge_point_id = f"CMD-INVALID-{INVALID_PAYLOADS.index((action, payload, code))}"
    async with connected(server, operator, charge_point_id) as cp:
        status, body = await operator.command(charge_point_id, action, payload)
        await assert_nothing_was_sent(cp, operator)
        history = await calls_in_history(operator, charge_point_id)

    assert status == 422
    assert body["code"] == code
    assert action in body["error"]
    assert [events[0]["data"]["action"] for events in history.values()] == ["ClearCache"]


async def test_a_payload_is_checked_before_the_connection(server, operator):
    await operator.register("CMD-INVALID-OFFLINE")
    status, body = await operator.command("CMD-INVALID-OFFLINE", "Reset", {"type": "Sideways"})

    assert status == 422 and "error" in body


async def test_concurrent_commands_queue_behind_the_outstanding_call(server, operator):
    async with connected(server, operator, "CMD-QUEUE") as cp:
        first_command = send(operator, "CMD-QUEUE", "Reset", {"type": "Soft"})
        first = await cp.next_call()
        second_command = send(operator, "CMD-QUEUE", "ClearCache", {})
        await wait_for_pending_commands(operator, "CMD-QUEUE", 2)
        third_command = send(operator, "CMD-QUEUE", "GetLocalListVersion", {})
        await wait_for_pending_commands(operator, "CMD-QUEUE", 3)
        # A round trip through the charge point's connection: a second CALL
        # sent while the first is unanswered would have arrived before its answer.
        await cp.call("Heartbeat", {})
        nothing_else_yet = cp.incoming_calls.empty()

        await cp.reply(first, {"status": "Accepted"})
        second = await cp.next_call()
        queued_behind_second = cp.incoming_calls.empty()
        await cp.reply(second, {"status": "Rejected"})
        third = await cp.next_call()
        await cp.reply(third, {"listVersion": 9})
        results = [await first_command, await second_command, await third_command]
        pending_after = (await status_of(operator, "CMD-QUEUE"))["pendingCommands"]

    assert nothing_else_yet and queued_behind_second
    assert [call[2] for call in (first, second, third)] == ["Reset", "ClearCache", "GetLocalListVersion"]
    assert results == [(200, {"status": "Accepted"}), (200, {"status": "Rejected"}), (200, {"listVersion": 9})]
    assert pending_after == 0
    calls = [(event["type"], event["data"]["messageId"]) for event in await operator.events("CMD-QUEUE")
             if event["type"].startswith("Call")]
    assert calls == [
        ("CallSent", first[1]), ("CallAnswered", first[1]),
        ("CallSent", second[1]), ("CallAnswered", second[1]),
        ("CallSent", third[1]), ("CallAnswered", third[1]),
    ]


async def wait_for_pending_commands(operator: Operator, charge_point_id: str, count: int) -> None:
    """Polls the status (no sleeping: each look is a round trip) until ``count`` commands are in progress."""
    for _ in range(2000):
        if (await status_of(operator, charge_point_id))["pendingCommands"] == count:
            return
    pytest.fail(f"{charge_point_id} never had {count} commands in progress")


# ---- the AuthorizationKey (OCPP 1.6 security profile 1) -------------------------------------


def key_of(password: str | bytes) -> str:
    """The AuthorizationKey that sets a password: its hexadecimal form (OCPP 1.6 Security Whitepaper)."""
    return (password if isinstance(password, bytes) else password.encode()).hex()


async def test_an_accepted_authorization_key_is_the_new_password_and_is_never_shown(server, operator):
    old, password = "initial-password-1", "Rotated-Key-0042"
    new = key_of(password)
    async with connected(server, operator, "CMD-AUTHKEY", password=old) as cp:
        _, status, body = await exchange(cp, operator, "ChangeConfiguration",
                                         {"key": "AuthorizationKey", "value": new}, {"status": "Accepted"})
    assert (status, body) == (200, {"status": "Accepted"})

    with pytest.raises(aiohttp.WSServerHandshakeError) as refused_old:
        await ChargePointClient(ws_base(server), "CMD-AUTHKEY", password=old).connect()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused_none:
        await ChargePointClient(ws_base(server), "CMD-AUTHKEY").connect()
    # The Whitepaper's charge point decodes the key: its password is the bytes the hex stands for.
    async with ChargePointClient(ws_base(server), "CMD-AUTHKEY", password=password) as cp:
        assert (await cp.call("Heartbeat", {}))["currentTime"]

    assert refused_old.value.status == refused_none.value.status == 401
    texts = await everything_the_api_says_about(operator, "CMD-AUTHKEY")
    assert all(new not in text and password not in text for text in texts)
    status_now = await status_of(operator, "CMD-AUTHKEY")
    assert status_now["configuration"]["AuthorizationKey"]["value"] == "<hidden>"
    assert status_now["hasPassword"] is True
    assert not stored_anywhere(server, new) and not stored_anywhere(server, password)


async def test_an_authorization_key_of_random_bytes_admits_those_bytes_and_its_hex_text(server, operator):
    password = bytes([0xFF, 0x00, 0x3A, 0x80]) + bytes(range(0xF0, 0x100))  # 20 bytes, not UTF-8, a colon
    async with connected(server, operator, "CMD-AUTHKEY-BIN", password="initial-password-b") as cp:
        await exchange(cp, operator, "ChangeConfiguration", {"key": "AuthorizationKey", "value": key_of(password)},
                       {"status": "Accepted"})

    async with ChargePointClient(ws_base(server), "CMD-AUTHKEY-BIN", password=password) as cp:
        assert (await cp.call("Heartbeat", {}))["currentTime"]
    # A charge point that sends the key as it came, not the bytes it stands for, is let in too.
    async with ChargePointClient(ws_base(server), "CMD-AUTHKEY-BIN", password=key_of(password)) as cp:
        assert (await cp.call("Heartbeat", {}))["currentTime"]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await ChargePointClient(ws_base(server), "CMD-AUTHKEY-BIN", password=password[:-1] + b"\x00").connect()
    assert refused.value.status == 401


async def test_an_authorization_key_that_is_not_the_hex_form_of_16_to_20_bytes_is_not_sent(server, operator):
    async with connected(server, operator, "CMD-AUTHKEY-BAD", password="initial-password-c") as cp:
        for bad in ("Rotated-AuthorizationKey-0042", key_of("15-bytes-secret"), key_of("21-bytes-secret-value"),
                    key_of("Rotated-Key-0042")[:-1]):
            status, body = await operator.command("CMD-AUTHKEY-BAD", "ChangeConfiguration",
                                                  {"key": "AuthorizationKey", "value": bad})
            assert status == 422 and "hex" in body["error"] and bad not in body["error"]
        await assert_nothing_was_sent(cp, operator)


@pytest.mark.parametrize("comes_back_with", ["old", "new"])
async def test_while_a_new_authorization_key_is_outstanding_either_key_admits(server, operator, comes_back_with):
    charge_point_id = f"CMD-AUTHKEY-LOST-{comes_back_with}"
    # Coming back with the new key's hex text as it came (compatibility): it stands for "Pending-Key-0-..."
    keys = {"old": f"initial-password-{comes_back_with}", "new": key_of(f"Pending-Key-0-{comes_back_with}")}
    async with connected(server, operator, charge_point_id, password=keys["old"]) as cp:
        command = send(operator, charge_point_id, "ChangeConfiguration", {"key": "AuthorizationKey",
                                                                          "value": keys["new"]})
        call = await cp.next_call()  # the change is outstanding: its reply never comes
        assert call[2:] == ["ChangeConfiguration", {"key": "AuthorizationKey", "value": keys["new"]}]
        # The charge point reconnects (say, it applied the key and restarted): this connection takes over.
        async with ChargePointClient(ws_base(server), charge_point_id, password=keys[comes_back_with]) as back:
            assert (await back.call("Heartbeat", {}))["currentTime"]
        await command

    # The key it authenticated with is its password now, even though the reply was lost.
    other = "new" if comes_back_with == "old" else "old"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await ChargePointClient(ws_base(server), charge_point_id, password=keys[other]).connect()
    async with ChargePointClient(ws_base(server), charge_point_id, password=keys[comes_back_with]) as cp:
        assert (await cp.call("Heartbeat", {}))["currentTime"]
    assert refused.value.status == 401


async def test_a_rejected_authorization_key_leaves_the_password_as_it_was(server, operator):
    old, refused = "initial-password-2", key_of("Refused-Key-0043")
    async with connected(server, operator, "CMD-AUTHKEY-NO", password=old) as cp:
        await exchange(cp, operator, "ChangeConfiguration", {"key": "AuthorizationKey", "value": refused},
                       {"status": "Rejected"})
    async with ChargePointClient(ws_base(server), "CMD-AUTHKEY-NO", password=old) as cp:
        await cp.call("Heartbeat", {})

    assert all(refused not in text for text in await everything_the_api_says_about(operator, "CMD-AUTHKEY-NO"))
    assert not stored_anywhere(server, refused)


async def test_an_authorization_key_that_get_configuration_reports_is_hidden_from_the_api(server, operator):
    secret = "Reported-AuthorizationKey-0044"
    async with connected(server, operator, "CMD-AUTHKEY-READ") as cp:
        _, status, body = await exchange(cp, operator, "GetConfiguration", {}, {"configurationKey": [
            {"key": "AuthorizationKey", "readonly": False, "value": secret},
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        ]})

    assert status == 200
    assert body["configurationKey"] == [
        {"key": "AuthorizationKey", "readonly": False, "value": "<hidden>"},
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
    ]
    assert all(secret not in text for text in await everything_the_api_says_about(operator, "CMD-AUTHKEY-READ"))


async def test_an_authorization_key_that_get_configuration_reports_is_not_stored(server, operator):
    secret = "Reported-AuthorizationKey-0045"
    async with connected(server, operator, "CMD-AUTHKEY-STORED") as cp:
        await exchange(cp, operator, "GetConfiguration", {"key": ["AuthorizationKey"]}, {"configurationKey": [
            {"key": "AuthorizationKey", "readonly": False, "value": secret},
        ]})

    assert not stored_anywhere(server, secret)


async def test_an_authorization_key_in_another_case_is_still_the_password_and_still_secret(server, operator):
    old, new = "initial-password-3", key_of("Lowercase-Key-0046")
    async with connected(server, operator, "CMD-AUTHKEY-CASE", password=old) as cp:
        await exchange(cp, operator, "ChangeConfiguration", {"key": "authorizationkey", "value": new},
                       {"status": "Accepted"})

    api_clean = all(new not in text for text in await everything_the_api_says_about(operator, "CMD-AUTHKEY-CASE"))
    store_clean = not stored_anywhere(server, new)
    try:
        async with ChargePointClient(ws_base(server), "CMD-AUTHKEY-CASE", password=new) as cp:
            await cp.call("Heartbeat", {})
        new_password_works = True
    except aiohttp.WSServerHandshakeError:
        new_password_works = False
    assert (api_clean, store_clean, new_password_works) == (True, True, True)


async def everything_the_api_says_about(operator: Operator, charge_point_id: str) -> list[str]:
    texts = []
    for path in (f"/api/chargepoints/{charge_point_id}", f"/api/chargepoints/{charge_point_id}/events",
                 "/api/chargepoints"):
        status, body = await operator.request("GET", path)
        assert status == 200
        texts.append(json.dumps(body))
    return texts


def stored_anywhere(server: Any, secret: str) -> bool:
    """Whether ``secret`` is anywhere in the store: events, snapshots, read models, side tables."""
    needles = [secret.encode(), secret.encode().hex().encode()]
    if server.store.startswith("sqlite:///"):
        folder = Path(server.store.removeprefix("sqlite:///")).parent
        return any(needle in path.read_bytes() for path in folder.iterdir() if path.is_file() for needle in needles)
    import psycopg

    with psycopg.connect(server.store, autocommit=True) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT quote_ident(table_name) FROM information_schema.tables WHERE table_schema = 'public'"
        )]
        for table in tables:
            for needle in (secret, secret.encode().hex()):
                row = conn.execute(
                    f"SELECT count(*) FROM {table} AS t WHERE strpos(t::text, %s) > 0", (needle,)
                ).fetchone()
                if row is not None and row[0]:
                    return True
    return False
