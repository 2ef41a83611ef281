"""Every Core message a charge point sends, through a real socket, on both stores.

One server per store kind serves the whole module; each test uses its own
charge point ids and id tags, so the tests do not see each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, AsyncIterator

import pytest

from tests.ocpp_client import (
    ChargePointClient,
    Operator,
    event_field,
    exchanges,
    registered,
    shared_server,
    ws_base,
)

HEARTBEAT_INTERVAL = 77
OCPP_UTC_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
STATUSES = [
    "Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV",
    "Finishing", "Reserved", "Unavailable", "Faulted",
]
ERROR_CODES = [
    "ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature",
    "InternalError", "LocalListConflict", "NoError", "OtherError", "OverCurrentFailure",
    "PowerMeterFailure", "PowerSwitchFailure", "ReaderFailure", "ResetFailure",
    "UnderVoltage", "OverVoltage", "WeakSignal",
]
PAST = "2020-01-01T00:00:00.000Z"
FUTURE = "2099-12-31T23:59:59.000Z"

server = shared_server("--heartbeat-interval", str(HEARTBEAT_INTERVAL))


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def start_request(id_tag: str, connector_id: int = 1, meter_start: int = 1000,
                  timestamp: str = "2025-01-15T08:00:00.000Z", **extra: Any) -> dict[str, Any]:
    return {"connectorId": connector_id, "idTag": id_tag, "meterStart": meter_start, "timestamp": timestamp, **extra}


def stop_request(transaction_id: int, meter_stop: int = 5000,
                 timestamp: str = "2025-01-15T09:00:00.000Z", **extra: Any) -> dict[str, Any]:
    return {"transactionId": transaction_id, "meterStop": meter_stop, "timestamp": timestamp, **extra}


@pytest.fixture
async def operator(server: Any) -> AsyncIterator[Operator]:
    async with Operator(server.http) as operator:
        yield operator


# ---- BootNotification and Heartbeat ----------------------------------------------


async def test_boot_notification_is_accepted_with_the_configured_interval_and_recorded(server, operator):
    boot = {
        "chargePointVendor": "Acme",
        "chargePointModel": "Volt 22",
        "chargePointSerialNumber": "SN-0042",
        "firmwareVersion": "1.2.3",
        "meterType": "DC-Meter",
    }
    async with await registered(server, operator, "CORE-BOOT") as cp:
        reply = await cp.call("BootNotification", boot, message_id="boot-1")

    assert reply["status"] == "Accepted"
    assert reply["interval"] == HEARTBEAT_INTERVAL
    assert OCPP_UTC_MILLIS.match(reply["currentTime"]), reply
    status = await operator.get("/api/chargepoints/CORE-BOOT")
    assert (status["vendor"], status["model"], status["serialNumber"], status["firmwareVersion"]) == (
        "Acme", "Volt 22", "SN-0042", "1.2.3"
    )
    booted = exchanges(await operator.events("CORE-BOOT"))["boot-1"]
    assert booted["type"] == "Booted"
    assert event_field(booted, "request") == boot
    assert event_field(booted, "reply") == reply


async def test_heartbeat_answers_utc_time_with_milliseconds_and_records_last_seen(server, operator):
    async with await registered(server, operator, "CORE-BEAT") as cp:
        reply = await cp.call("Heartbeat", {})
        status = await operator.get("/api/chargepoints/CORE-BEAT")

    assert OCPP_UTC_MILLIS.match(reply["currentTime"]), reply
    # lastSeen is the moment the heartbeat was received, the one it was told.
    last_seen = datetime.fromisoformat(status["lastSeen"].replace("Z", "+00:00"))
    assert last_seen.utcoffset() == timedelta(0)
    assert last_seen.replace(microsecond=last_seen.microsecond // 1000 * 1000) == instant(reply["currentTime"])
    assert status["online"] is True
    assert (await operator.event_types("CORE-BEAT"))[-2:] == ["HeartbeatReceived", "Disconnected"]


# ---- StatusNotification ---------------------------------------------------------


async def test_status_notifications_keep_every_status_error_code_and_timestamp_per_connector(server, operator):
    sent: list[dict[str, Any]] = []
    for number, status in enumerate(STATUSES):
        sent.append({"connectorId": 1, "status": status, "errorCode": "NoError",
                     "timestamp": f"2025-02-01T10:{number:02d}:00.000Z"})
    for number, code in enumerate(ERROR_CODES):
        sent.append({"connectorId": 2, "status": "Faulted", "errorCode": code, "info": f"case {number}",
                     "vendorId": "Acme", "vendorErrorCode": f"E{number}",
                     "timestamp": f"2025-02-01T11:{number:02d}:00+01:00"})
    sent.append({"connectorId": 0, "status": "Unavailable", "errorCode": "NoError", "info": "Wartung ⚡ läuft",
                 "timestamp": "2025-02-01T12:00:00.000Z"})
    async with await registered(server, operator, "CORE-STATUS") as cp:
        for number, request in enumerate(sent):
            assert await cp.call("StatusNotification", request, message_id=f"sn-{number}") == {}

    recorded = exchanges(await operator.events("CORE-STATUS"))
    for number, request in enumerate(sent):
        assert recorded[f"sn-{number}"]["type"] == "ConnectorStatusChanged"
        assert event_field(recorded[f"sn-{number}"], "request") == request
    connectors = (await operator.get("/api/chargepoints/CORE-STATUS"))["connectors"]
    assert set(connectors) == {"0", "1", "2"}
    assert (connectors["0"]["status"], connectors["0"]["errorCode"]) == ("Unavailable", "NoError")
    assert connectors["0"]["info"] == "Wartung ⚡ läuft"
    assert (connectors["1"]["status"], connectors["1"]["errorCode"]) == ("Faulted", "NoError")
    assert (connectors["2"]["status"], connectors["2"]["errorCode"]) == ("Faulted", "WeakSignal")
    assert connectors["2"]["info"] == f"case {len(ERROR_CODES) - 1}"
    # The charge point's own timestamp is kept, offset and all, not replaced by ours.
    assert instant(connectors["0"]["timestamp"]) == instant("2025-02-01T12:00:00.000Z")
    assert instant(connectors["1"]["timestamp"]) == instant(f"2025-02-01T10:{len(STATUSES) - 1:02d}:00.000Z")
    assert instant(connectors["2"]["timestamp"]) == instant(f"2025-02-01T11:{len(ERROR_CODES) - 1:02d}:00+01:00")


async def test_a_status_notification_without_timestamp_gets_the_time_it_was_received(server, operator):
    async with await registered(server, operator, "CORE-STATUS-NOW") as cp:
        await cp.call("StatusNotification", {"connectorId": 1, "status": "Available", "errorCode": "NoError"})
        beat = await cp.call("Heartbeat", {})

    connector = (await operator.get("/api/chargepoints/CORE-STATUS-NOW"))["connectors"]["1"]
    assert connector["status"] == "Available"
    assert instant(connector["timestamp"]) <= instant(beat["currentTime"])


# ---- Authorize ---------------------------------------------------------------------


async def test_authorize_answers_each_tag_status_with_expiry_and_parent(server, operator):
    await operator.save_id_tag("AUTH-OK", "Accepted", expiry_date=FUTURE, parent_id_tag="AUTH-FLEET")
    await operator.save_id_tag("AUTH-BLOCKED", "Blocked", parent_id_tag="AUTH-FLEET")
    await operator.save_id_tag("AUTH-EXPIRED", "Accepted", expiry_date=PAST)
    await operator.save_id_tag("AUTH-INVALID", "Invalid")
    async with await registered(server, operator, "CORE-AUTH") as cp:
        accepted = (await cp.call("Authorize", {"idTag": "AUTH-OK"}, message_id="a-ok"))["idTagInfo"]
        blocked = (await cp.call("Authorize", {"idTag": "AUTH-BLOCKED"}))["idTagInfo"]
        expired = (await cp.call("Authorize", {"idTag": "AUTH-EXPIRED"}))["idTagInfo"]
        invalid = (await cp.call("Authorize", {"idTag": "AUTH-INVALID"}))["idTagInfo"]
        unknown = (await cp.call("Authorize", {"idTag": "AUTH-NOBODY"}))["idTagInfo"]

    assert accepted["status"] == "Accepted"
    assert instant(accepted["expiryDate"]) == instant(FUTURE)
    assert accepted["parentIdTag"] == "AUTH-FLEET"
    assert (blocked["status"], blocked["parentIdTag"]) == ("Blocked", "AUTH-FLEET")
    assert expired["status"] == "Expired"
    assert instant(expired["expiryDate"]) == instant(PAST)
    assert invalid["status"] == "Invalid"
    assert unknown == {"status": "Invalid"}
    checked = exchanges(await operator.events("CORE-AUTH"))["a-ok"]
    assert checked["type"] == "AuthorizationChecked"
    assert event_field(checked, "reply") == {"idTagInfo": accepted}


async def test_id_tags_are_case_insensitive(server, operator):
    await operator.save_id_tag("CaseTag01", "Accepted", parent_id_tag="CaseParent")
    async with await registered(server, operator, "CORE-CASE") as cp:
        lower = (await cp.call("Authorize", {"idTag": "casetag01"}))["idTagInfo"]
        upper = (await cp.call("Authorize", {"idTag": "CASETAG01"}))["idTagInfo"]
        started = await cp.call("StartTransaction", start_request("CASETAG01"))
        # The same card in another spelling is the same card: already charging.
        concurrent = await cp.call("StartTransaction", start_request("caseTAG01", connector_id=2))
        await cp.call("StopTransaction", stop_request(started["transactionId"]))

    assert lower == upper == {"status": "Accepted", "parentIdTag": "CaseParent"}
    assert started["idTagInfo"]["status"] == "Accepted"
    assert concurrent["idTagInfo"]["status"] == "ConcurrentTx"


async def test_a_tag_in_an_active_transaction_is_concurrent_at_start_on_every_charge_point(server, operator):
    await operator.save_id_tag("CONC-TAG", "Accepted")
    async with await registered(server, operator, "CORE-CONC-A") as a, \
            await registered(server, operator, "CORE-CONC-B") as b:
        started = await a.call("StartTransaction", start_request("CONC-TAG"))
        on_same = (await a.call("Authorize", {"idTag": "CONC-TAG"}))["idTagInfo"]
        on_other = (await b.call("Authorize", {"idTag": "CONC-TAG"}))["idTagInfo"]
        second_start = await b.call("StartTransaction", start_request("CONC-TAG"))
        stopped = await a.call("StopTransaction", stop_request(started["transactionId"], idTag="CONC-TAG"))
        after_stop = await b.call("StartTransaction", start_request("CONC-TAG", connector_id=2))

    assert started["idTagInfo"]["status"] == "Accepted"
    # OCPP 1.6 section 7.2: ConcurrentTx "is only relevant for a StartTransaction.req";
    # Authorize answers the tag's own status.
    assert on_same["status"] == on_other["status"] == "Accepted"
    # Refused, yet it still gets a transactionId (OCPP 1.6 section 4.8).
    assert second_start["idTagInfo"]["status"] == "ConcurrentTx"
    assert isinstance(second_start["transactionId"], int)
    assert second_start["transactionId"] != started["transactionId"]
    assert stopped["idTagInfo"] == {"status": "Accepted"}
    assert after_stop["idTagInfo"]["status"] == "Accepted"


async def test_one_cards_starts_on_several_charge_points_at_once_accept_only_as_many_as_its_limit(
        server, operator):
    # Each start is judged while the others may still be on their way to the disk: what is
    # decided counts from the moment it is decided, not only once it is committed.
    await operator.save_id_tag("RACE-TAG", "Accepted")
    ids = [f"CORE-RACE-{n}" for n in range(8)]
    async with contextlib.AsyncExitStack() as stack:
        cps = [await stack.enter_async_context(await registered(server, operator, cp_id)) for cp_id in ids]
        replies = await asyncio.gather(*(cp.call("StartTransaction", start_request("RACE-TAG")) for cp in cps))
        statuses = sorted(reply["idTagInfo"]["status"] for reply in replies)
        accepted = next(reply["transactionId"] for reply in replies if reply["idTagInfo"]["status"] == "Accepted")
        winner = cps[[reply["transactionId"] for reply in replies].index(accepted)]
        await winner.call("StopTransaction", stop_request(accepted))
        after = await cps[0].call("StartTransaction", start_request("RACE-TAG", connector_id=2))

    assert statuses == ["Accepted"] + ["ConcurrentTx"] * 7
    assert after["idTagInfo"]["status"] == "Accepted"  # nothing held once the race is over


async def test_a_tag_runs_as_many_transactions_as_its_limit_allows(server, operator):
    two = await operator.put("/api/idtags/LIMIT-TWO", {"status": "Accepted", "maxConcurrentTransactions": 2})
    unlimited = await operator.put("/api/idtags/LIMIT-NONE", {"status": "Accepted", "maxConcurrentTransactions": None})
    default = await operator.save_id_tag("LIMIT-DEFAULT")
    async with await registered(server, operator, "CORE-LIMIT-A") as a, \
            await registered(server, operator, "CORE-LIMIT-B") as b:
        first = await a.call("StartTransaction", start_request("LIMIT-TWO"))
        second = await b.call("StartTransaction", start_request("limit-two"))
        third = await b.call("StartTransaction", start_request("LIMIT-TWO", connector_id=2))
        authorized = (await a.call("Authorize", {"idTag": "LIMIT-TWO"}))["idTagInfo"]
        await a.call("StopTransaction", stop_request(first["transactionId"]))
        after_stop = await a.call("StartTransaction", start_request("LIMIT-TWO", connector_id=3))
        free = [await a.call("StartTransaction", start_request("LIMIT-NONE", connector_id=c)) for c in (4, 5, 6)]
        one = await b.call("StartTransaction", start_request("LIMIT-DEFAULT", connector_id=4))
        over_one = await b.call("StartTransaction", start_request("LIMIT-DEFAULT", connector_id=5))

    assert (two["maxConcurrentTransactions"], unlimited["maxConcurrentTransactions"]) == (2, None)
    assert default["maxConcurrentTransactions"] == 1
    assert (await operator.get("/api/idtags/limit-two"))["maxConcurrentTransactions"] == 2
    listed = {tag["idTag"]: tag for tag in (await operator.get("/api/idtags"))["idTags"]}
    assert listed["LIMIT-NONE"]["maxConcurrentTransactions"] is None
    statuses = [reply["idTagInfo"]["status"] for reply in (first, second, third, after_stop)]
    assert statuses == ["Accepted", "Accepted", "ConcurrentTx", "Accepted"]
    assert authorized == {"status": "Accepted"}
    assert [reply["idTagInfo"]["status"] for reply in free] == ["Accepted"] * 3
    assert (one["idTagInfo"]["status"], over_one["idTagInfo"]["status"]) == ("Accepted", "ConcurrentTx")


@pytest.mark.parametrize("limit", [0, -2, 1.5, "2", True, [2]])
async def test_a_limit_that_is_not_a_count_is_refused_with_422(server, operator, limit):
    await operator.put("/api/idtags/LIMIT-BAD", {"status": "Accepted", "maxConcurrentTransactions": 3})

    status, body = await operator.request(
        "PUT", "/api/idtags/LIMIT-BAD", {"status": "Blocked", "maxConcurrentTransactions": limit})

    assert status == 422
    assert "maxConcurrentTransactions" in body["error"]
    kept = await operator.get("/api/idtags/LIMIT-BAD")
    assert (kept["status"], kept["maxConcurrentTransactions"]) == ("Accepted", 3)


# ---- StartTransaction -----------------------------------------------------------------


async def test_start_transaction_always_gets_a_transaction_id_even_for_an_invalid_tag(server, operator):
    await operator.save_id_tag("START-BLOCKED", "Blocked")
    async with await registered(server, operator, "CORE-START-BAD") as cp:
        unknown = await cp.call("StartTransaction", start_request("START-NOBODY", connector_id=1),
                                message_id="start-unknown")
        blocked = await cp.call("StartTransaction", start_request("START-BLOCKED", connector_id=2))

    assert unknown["idTagInfo"]["status"] == "Invalid"
    assert blocked["idTagInfo"]["status"] == "Blocked"
    assert isinstance(unknown["transactionId"], int) and isinstance(blocked["transactionId"], int)
    assert unknown["transactionId"] != blocked["transactionId"]
    started = exchanges(await operator.events("CORE-START-BAD"))["start-unknown"]
    assert started["type"] == "TransactionStarted"
    assert event_field(started, "reply") == unknown


async def test_transaction_ids_are_unique_across_charge_points(server, operator):
    await operator.save_id_tag("UNIQ-TAG", "Accepted")
    ids: list[int] = []
    async with await registered(server, operator, "CORE-UNIQ-A") as a, \
            await registered(server, operator, "CORE-UNIQ-B") as b:
        for number in range(5):
            for cp in (a, b):
                request = start_request("UNIQ-TAG", meter_start=number, timestamp=f"2025-03-01T10:00:0{number}Z")
                reply = await cp.call("StartTransaction", request)
                ids.append(reply["transactionId"])
                await cp.call("StopTransaction", stop_request(reply["transactionId"], meter_stop=number + 10))

    assert len(set(ids)) == len(ids) == 10


async def test_a_retried_start_transaction_gets_the_same_id(server, operator):
    await operator.save_id_tag("RETRY-TAG", "Accepted")
    request = start_request("RETRY-TAG", connector_id=1, meter_start=4711, timestamp="2025-03-02T07:30:00.000Z")
    async with await registered(server, operator, "CORE-RETRY") as cp:
        first = await cp.call("StartTransaction", request, message_id="start-first")
        # The charge point missed our answer and sends it again, with a new message id.
        again = await cp.call("StartTransaction", request, message_id="start-again")
        other = await cp.call("StartTransaction", dict(request, meterStart=4712), message_id="start-other")
        status = await operator.get("/api/chargepoints/CORE-RETRY")
    async with ChargePointClient(ws_base(server), "CORE-RETRY") as cp:
        after_reconnect = await cp.call("StartTransaction", request, message_id="start-later")

    assert again["transactionId"] == first["transactionId"] == after_reconnect["transactionId"]
    assert other["transactionId"] != first["transactionId"]
    # Another start on the same connector ends the first as stale (domain/stale_sessions.py).
    assert status["openTransactions"] == [other["transactionId"]]
    recorded = exchanges(await operator.events("CORE-RETRY"))
    assert recorded["start-first"]["type"] == "TransactionStarted"
    assert recorded["start-again"]["type"] != "TransactionStarted"
    assert event_field(recorded["start-again"], "reply")["transactionId"] == first["transactionId"]


async def test_a_start_transaction_at_a_leap_second_still_gets_a_transaction_id(server, operator):
    await operator.save_id_tag("LEAP-TAG", "Accepted")
    request = start_request("LEAP-TAG", timestamp="2016-12-31T23:59:60Z")
    async with await registered(server, operator, "CORE-LEAP") as cp:
        first = await cp.call("StartTransaction", request)
        again = await cp.call("StartTransaction", request)

    assert isinstance(first["transactionId"], int)
    assert again["transactionId"] == first["transactionId"]


async def test_start_transaction_accepts_a_reservation_id(server, operator):
    await operator.save_id_tag("RESV-TAG", "Accepted")
    request = start_request("RESV-TAG", connector_id=2, reservationId=31)
    async with await registered(server, operator, "CORE-RESV") as cp:
        reply = await cp.call("StartTransaction", request, message_id="start-resv")
        status = await operator.get("/api/chargepoints/CORE-RESV")

    assert reply["idTagInfo"]["status"] == "Accepted"
    assert status["connectors"]["2"]["transactionId"] == reply["transactionId"]
    assert event_field(exchanges(await operator.events("CORE-RESV"))["start-resv"], "request") == request


# ---- StopTransaction -----------------------------------------------------------------


def flags_of(event: dict[str, Any]) -> list[str]:
    return list(event_field(event, "flags"))


async def test_stop_transaction_is_never_refused_and_oddities_are_flagged(server, operator):
    await operator.save_id_tag("STOP-TAG", "Accepted")
    transaction_data = [
        {"timestamp": "2025-04-01T10:00:00.000Z",
         "sampledValue": [{"value": "1000", "context": "Transaction.Begin", "unit": "Wh"}]},
        {"timestamp": "2025-04-01T11:00:00.000Z",
         "sampledValue": [{"value": "9.5", "context": "Transaction.End", "unit": "kWh",
                           "measurand": "Energy.Active.Import.Register", "location": "Outlet"}]},
    ]
    async with await registered(server, operator, "CORE-STOP") as cp:
        normal = await cp.call("StartTransaction", start_request("STOP-TAG", connector_id=1, meter_start=1000))
        backwards = await cp.call("StartTransaction", start_request("STOP-TAG", connector_id=2, meter_start=8000))
        normal_stop = stop_request(normal["transactionId"], meter_stop=9500, idTag="STOP-TAG",
                                   reason="EVDisconnected", transactionData=transaction_data)
        stops = {
            "stop-normal": normal_stop,
            "stop-repeat": normal_stop,
            "stop-unknown": stop_request(987654321),
            "stop-backwards": stop_request(backwards["transactionId"], meter_stop=7000),
        }
        answers = {message_id: await cp.call("StopTransaction", stop, message_id=message_id)
                   for message_id, stop in stops.items()}
        status = await operator.get("/api/chargepoints/CORE-STOP")

    assert answers["stop-normal"] == {"idTagInfo": {"status": "Accepted"}}
    assert answers["stop-unknown"] == answers["stop-backwards"] == {}
    assert answers["stop-repeat"]["idTagInfo"]["status"] == "Accepted"
    assert status["openTransactions"] == []
    recorded = exchanges(await operator.events("CORE-STOP"))
    for message_id, reply in answers.items():
        assert recorded[message_id]["type"] == "TransactionStopped"
        assert event_field(recorded[message_id], "reply") == reply
    assert flags_of(recorded["stop-normal"]) == []
    assert event_field(recorded["stop-normal"], "request")["transactionData"] == transaction_data
    assert "repeated_stop" in flags_of(recorded["stop-repeat"])
    assert "unknown_transaction" in flags_of(recorded["stop-unknown"])
    assert "meter_went_backwards" in flags_of(recorded["stop-backwards"])


# ---- MeterValues, DataTransfer, firmware and diagnostics ----------------------------------


async def test_meter_values_keep_every_sampled_value_field_and_derive_energy_in_wh(server, operator):
    await operator.save_id_tag("METER-TAG", "Accepted")
    async with await registered(server, operator, "CORE-METER") as cp:
        started = await cp.call("StartTransaction", start_request("METER-TAG", meter_start=12000))
        request = {
            "connectorId": 1,
            "transactionId": started["transactionId"],
            "meterValue": [
                {"timestamp": "2025-05-01T10:00:00.000Z", "sampledValue": [
                    {"value": "12.345", "context": "Sample.Periodic", "format": "Raw",
                     "measurand": "Energy.Active.Import.Register", "location": "Outlet", "unit": "kWh"},
                    {"value": "230.1", "context": "Sample.Periodic", "format": "Raw", "measurand": "Voltage",
                     "phase": "L1-N", "location": "Inlet", "unit": "V"},
                    {"value": "12400"},
                ]},
                {"timestamp": "2025-05-01T10:15:00.000Z", "sampledValue": [
                    {"value": "13.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh",
                     "context": "Sample.Clock"},
                    {"value": "0a1b2c", "format": "SignedData", "measurand": "Energy.Active.Import.Register"},
                ]},
            ],
        }
        assert await cp.call("MeterValues", request, message_id="mv-1") == {}
        whole = {"connectorId": 0, "meterValue": [
            {"timestamp": "2025-05-01T10:20:00.000Z", "sampledValue": [{"value": "99.9", "unit": "kWh"}]},
        ]}
        assert await cp.call("MeterValues", whole, message_id="mv-0") == {}

    recorded = exchanges(await operator.events("CORE-METER"))
    assert recorded["mv-1"]["type"] == "MeterValuesReceived"
    assert event_field(recorded["mv-1"], "request") == request
    readings = [(r["timestamp"], Decimal(str(r["energyWh"])), r["context"])
                for r in event_field(recorded["mv-1"], "energyReadings")]
    assert readings == [
        ("2025-05-01T10:00:00.000Z", Decimal(12345), "Sample.Periodic"),
        ("2025-05-01T10:00:00.000Z", Decimal(12400), "Sample.Periodic"),
        ("2025-05-01T10:15:00.000Z", Decimal(13500), "Sample.Clock"),
    ]
    assert event_field(recorded["mv-0"], "request") == whole
    assert [Decimal(str(r["energyWh"])) for r in event_field(recorded["mv-0"], "energyReadings")] == [Decimal(99900)]


async def test_data_transfer_is_answered_unknown_vendor_and_recorded(server, operator):
    request = {"vendorId": "com.example.unknown", "messageId": "Hello", "data": '{"anything": [1, 2]}'}
    async with await registered(server, operator, "CORE-DT") as cp:
        reply = await cp.call("DataTransfer", request, message_id="dt-1")

    assert reply == {"status": "UnknownVendorId"}
    recorded = exchanges(await operator.events("CORE-DT"))["dt-1"]
    assert recorded["type"] == "DataTransferReceived"
    assert (event_field(recorded, "request"), event_field(recorded, "reply")) == (request, reply)


async def test_firmware_and_diagnostics_status_notifications_are_recorded_and_shown(server, operator):
    async with await registered(server, operator, "CORE-FW") as cp:
        for status in ("Downloading", "Downloaded", "Installing", "Installed"):
            assert await cp.call("FirmwareStatusNotification", {"status": status}, message_id=f"fw-{status}") == {}
        for status in ("Uploading", "UploadFailed"):
            assert await cp.call("DiagnosticsStatusNotification", {"status": status}, message_id=f"dg-{status}") == {}

    status = await operator.get("/api/chargepoints/CORE-FW")
    assert status["firmwareStatus"] == "Installed"
    assert status["diagnosticsStatus"] == "UploadFailed"
    recorded = exchanges(await operator.events("CORE-FW"))
    assert recorded["fw-Downloading"]["type"] == "FirmwareStatusReported"
    assert event_field(recorded["fw-Downloading"], "request") == {"status": "Downloading"}
    assert recorded["dg-Uploading"]["type"] == "DiagnosticsStatusReported"
    assert event_field(recorded["dg-UploadFailed"], "request") == {"status": "UploadFailed"}


# ---- the audit trail ---------------------------------------------------------------------


async def test_every_exchange_keeps_its_message_id_request_and_reply(server, operator):
    await operator.save_id_tag("AUDIT-TAG", "Accepted")
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("au-boot", "BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "Audit"}),
        ("au-beat", "Heartbeat", {}),
        ("au-status", "StatusNotification", {"connectorId": 1, "status": "Preparing", "errorCode": "NoError"}),
        ("au-auth", "Authorize", {"idTag": "audit-tag"}),
        ("au-start", "StartTransaction", start_request("AUDIT-TAG")),
        ("au-meter", "MeterValues", {"connectorId": 1, "meterValue": [
            {"timestamp": "2025-01-15T08:30:00Z", "sampledValue": [{"value": "2000"}]}]}),
        ("au-dt", "DataTransfer", {"vendorId": "nobody"}),
        ("au-fw", "FirmwareStatusNotification", {"status": "Idle"}),
        ("au-diag", "DiagnosticsStatusNotification", {"status": "Idle"}),
    ]
    replies: dict[str, dict[str, Any]] = {}
    async with await registered(server, operator, "CORE-AUDIT") as cp:
        for message_id, action, request in calls:
            replies[message_id] = await cp.call(action, request, message_id=message_id)
        transaction_id = replies["au-start"]["transactionId"]
        stop = stop_request(transaction_id, meter_stop=3000)
        replies["au-stop"] = await cp.call("StopTransaction", stop, message_id="au-stop")
    calls.append(("au-stop", "StopTransaction", stop))

    events = await operator.events("CORE-AUDIT")
    assert [e["type"] for e in events] == [
        "Registered", "Connected", "Booted", "HeartbeatReceived", "ConnectorStatusChanged", "AuthorizationChecked",
        "TransactionStarted", "MeterValuesReceived", "DataTransferReceived", "FirmwareStatusReported",
        "DiagnosticsStatusReported", "TransactionStopped", "Disconnected",
    ]
    assert [e["version"] for e in events] == sorted(e["version"] for e in events)
    recorded = exchanges(events)
    assert set(recorded) == {message_id for message_id, _, _ in calls}
    for message_id, _, request in calls:
        assert event_field(recorded[message_id], "request") == request, message_id
        assert event_field(recorded[message_id], "reply") == replies[message_id], message_id
