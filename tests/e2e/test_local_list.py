"""The Local Authorization List end to end: sent as given, or synced from the IdTag registry."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import pytest

from tests.e2e.steps import assert_nothing_was_sent, connected, exchange, sent_actions
from tests.ocpp_client import ChargePointClient, Operator, shared_server

server = shared_server()


@pytest.fixture
async def operator(server: Any) -> AsyncIterator[Operator]:
    async with Operator(server.http) as operator:
        yield operator


# What the helper's charge points report when the CSMS asks for the list's limits.
ROOMY = {"LocalAuthListMaxLength": "10000", "SendLocalListMaxLength": "10000"}


def configuration(limits: dict[str, str]) -> dict[str, Any]:
    return {"configurationKey": [{"key": key, "readonly": True, "value": value} for key, value in limits.items()]}


def sync_requested(cp: ChargePointClient, operator: Operator,
                   body: dict[str, Any] | None = None) -> asyncio.Future[Any]:
    """The sync request, under way while the test plays the charge point."""
    return asyncio.ensure_future(operator.request("POST", f"/api/chargepoints/{cp.id}/local-list/sync", body or {}))


async def sync(cp: ChargePointClient, operator: Operator, reply: str = "Accepted",
               body: dict[str, Any] | None = None) -> tuple[list[Any], Any]:
    """A sync through the API, its SendLocalList answered: (the call, the API body).

    A charge point whose limits the CSMS does not know yet is asked for them first.
    """
    pending = sync_requested(cp, operator, body)
    call = await cp.next_call()
    if call[2] == "GetConfiguration":
        await cp.reply(call, configuration(ROOMY))
        call = await cp.next_call()
    assert call[2] == "SendLocalList", call
    await cp.reply(call, {"status": reply})
    status, result = await pending
    assert status == 200, result
    return call, result


async def local_list(operator: Operator, charge_point_id: str) -> dict[str, Any]:
    return await operator.get(f"/api/chargepoints/{charge_point_id}/local-list")


async def registry_as_list(operator: Operator) -> list[dict[str, Any]]:
    tags = (await operator.get("/api/idtags"))["idTags"]
    fields = ("status", "expiryDate", "parentIdTag")
    return [{"idTag": t["idTag"], "idTagInfo": {f: t[f] for f in fields if f in t}} for t in tags]


async def test_a_list_sent_as_given_is_what_the_charge_point_holds(server, operator):
    given = {"listVersion": 3, "updateType": "Full", "localAuthorizationList": [
        {"idTag": "LL-GIVEN", "idTagInfo": {"status": "Accepted"}}, {"idTag": "LL-GONE"}]}
    async with connected(server, operator, "LL-GIVEN") as cp:
        before = await local_list(operator, "LL-GIVEN")
        await exchange(cp, operator, "SendLocalList", given, {"status": "Accepted"})
        held = await local_list(operator, "LL-GIVEN")
        await exchange(cp, operator, "GetLocalListVersion", {}, {"listVersion": 3})
        confirmed = await local_list(operator, "LL-GIVEN")
        await exchange(cp, operator, "GetLocalListVersion", {}, {"listVersion": 5})
        moved = await local_list(operator, "LL-GIVEN")

    assert (before["listVersion"], before["known"]) == (None, False)
    assert held == confirmed == {
        "chargePointId": "LL-GIVEN", "listVersion": 3, "known": True,
        "localAuthorizationList": [{"idTag": "LL-GIVEN", "idTagInfo": {"status": "Accepted"}}],
    }
    assert (moved["listVersion"], moved["known"], moved["localAuthorizationList"]) == (5, False, None)
    assert (await operator.get("/api/chargepoints/LL-GIVEN"))["localListVersion"] == 5


async def test_sync_sends_the_registry_in_full_then_only_what_changed(server, operator):
    await operator.save_id_tag("LL-KEEP")
    await operator.save_id_tag("LL-BLOCK")
    await operator.save_id_tag("LL-DROP")
    async with connected(server, operator, "LL-SYNC") as cp:
        first, first_result = await sync(cp, operator)
        await operator.save_id_tag("LL-BLOCK", status="Blocked")
        await operator.save_id_tag("LL-NEW", parent_id_tag="LL-KEEP")
        assert (await operator.request("DELETE", "/api/idtags/LL-DROP"))[0] == 204
        second, second_result = await sync(cp, operator)
        up_to_date = await operator.request("POST", "/api/chargepoints/LL-SYNC/local-list/sync")
        held = await local_list(operator, "LL-SYNC")
        forced, _ = await sync(cp, operator, body={"updateType": "Full"})
        registry = await registry_as_list(operator)

    first_payload = first[3]
    assert (first_payload["updateType"], first_payload["listVersion"]) == ("Full", 1)
    assert {"idTag": "LL-DROP", "idTagInfo": {"status": "Accepted"}} in first_payload["localAuthorizationList"]
    assert first_result == {"status": "Accepted", "updateType": "Full", "listVersion": 1,
                            "entries": len(first_payload["localAuthorizationList"]), "attempts": [
                                {"status": "Accepted", "updateType": "Full", "listVersion": 1,
                                 "entries": len(first_payload["localAuthorizationList"])}]}
    assert second[3] == {"listVersion": 2, "updateType": "Differential", "localAuthorizationList": [
        {"idTag": "LL-BLOCK", "idTagInfo": {"status": "Blocked"}},
        {"idTag": "LL-DROP"},
        {"idTag": "LL-NEW", "idTagInfo": {"status": "Accepted", "parentIdTag": "LL-KEEP"}},
    ]}
    assert second_result["status"] == "Accepted"
    assert up_to_date == (200, {"status": "UpToDate", "listVersion": 2, "attempts": []})
    assert held["listVersion"] == 2 and held["localAuthorizationList"] == registry
    assert (forced[3]["updateType"], forced[3]["listVersion"]) == ("Full", 3)
    assert forced[3]["localAuthorizationList"] == registry


async def test_a_version_mismatch_falls_back_to_a_full_list_after_the_charge_point_tells_its_version(
        server, operator):
    await operator.save_id_tag("LL-MISMATCH")
    async with connected(server, operator, "LL-MISMATCH") as cp:
        await sync(cp, operator)  # version 1, known
        await operator.save_id_tag("LL-MISMATCH", status="Blocked")
        pending = sync_requested(cp, operator)
        differential = await cp.next_call()
        await cp.reply(differential, {"status": "VersionMismatch"})
        version_call = await cp.next_call()
        await cp.reply(version_call, {"listVersion": 7})
        full = await cp.next_call()
        await cp.reply(full, {"status": "Accepted"})
        status, result = await pending
        held = await local_list(operator, "LL-MISMATCH")

    assert (differential[3]["updateType"], differential[3]["listVersion"]) == ("Differential", 2)
    assert version_call[2:] == ["GetLocalListVersion", {}]
    assert (full[2], full[3]["updateType"], full[3]["listVersion"]) == ("SendLocalList", "Full", 8)
    assert status == 200
    assert [(a["updateType"], a["status"]) for a in result["attempts"]] == [
        ("Differential", "VersionMismatch"), ("Full", "Accepted")]
    assert (result["status"], result["listVersion"]) == ("Accepted", 8)
    assert (held["listVersion"], held["known"]) == (8, True)


@pytest.mark.parametrize("refusal", ["Failed", "NotSupported"])
async def test_a_refused_sync_leaves_the_known_list_as_it_was(server, operator, refusal):
    charge_point_id = f"LL-{refusal.upper()}"
    await operator.save_id_tag(charge_point_id)
    async with connected(server, operator, charge_point_id) as cp:
        await sync(cp, operator)
        before = await local_list(operator, charge_point_id)
        await operator.save_id_tag(charge_point_id, status="Blocked")
        _, result = await sync(cp, operator, reply=refusal)
        after = await local_list(operator, charge_point_id)

    assert result["status"] == refusal and len(result["attempts"]) == 1
    assert after == before and after["listVersion"] == 1


async def test_sync_needs_a_known_connected_charge_point_and_a_valid_body(server, operator):
    await operator.register("LL-OFFLINE")
    offline = await operator.request("POST", "/api/chargepoints/LL-OFFLINE/local-list/sync")
    unknown = await operator.request("POST", "/api/chargepoints/LL-NOBODY/local-list/sync")
    async with connected(server, operator, "LL-BODY") as cp:
        bad = await operator.request("POST", "/api/chargepoints/LL-BODY/local-list/sync", {"updateType": "Some"})
        assert cp.incoming_calls.empty()

    assert (offline[0], unknown[0], bad[0]) == (409, 404, 422)
    assert await sent_actions(operator, "LL-BODY") == []


async def start_sync(cp: ChargePointClient, operator: Operator,
                     limits: dict[str, str] | None) -> tuple[asyncio.Future[Any], list[Any]]:
    """Starts a sync and answers the CSMS's question for the list's limits (None: with a CALLERROR)."""
    pending = sync_requested(cp, operator)
    asked = await cp.next_call()
    assert asked[2:] == ["GetConfiguration", {"key": ["LocalAuthListMaxLength", "SendLocalListMaxLength"]}]
    if limits is None:
        await cp.reply_error(asked, "NotSupported")
    else:
        await cp.reply(asked, configuration(limits))
    return pending, asked


async def answer_parts(cp: ChargePointClient, replies: list[str]) -> list[list[Any]]:
    """Answers the next SendLocalList calls, one reply each."""
    parts = []
    for reply in replies:
        parts.append(await cp.next_call())
        assert parts[-1][2] == "SendLocalList", parts[-1]
        await cp.reply(parts[-1], {"status": reply})
    return parts


def not_accepted_first(entries: list[dict[str, Any]]) -> bool:
    accepted = [entry["idTagInfo"]["status"] == "Accepted" for entry in entries]
    return accepted == sorted(accepted)


async def test_a_long_update_goes_in_parts_of_send_local_list_max_length(server, operator):
    for number in range(5):
        await operator.save_id_tag(f"LL-PART-{number}")
    registry = await registry_as_list(operator)
    async with connected(server, operator, "LL-PARTS") as cp:
        pending, _ = await start_sync(cp, operator, {"LocalAuthListMaxLength": "10000", "sendlocallistmaxlength": "2"})
        parts = await answer_parts(cp, ["Accepted"] * ((len(registry) + 1) // 2))
        status, result = await pending
        held = await local_list(operator, "LL-PARTS")
        await operator.save_id_tag("LL-PART-0", status="Blocked")
        changed, _ = await sync(cp, operator)

    assert status == 200, result
    payloads = [call[3] for call in parts]
    assert [(p["updateType"], p["listVersion"]) for p in payloads] == [("Full", 1)] + [
        ("Differential", version) for version in range(2, len(parts) + 1)]
    assert all(1 <= len(p["localAuthorizationList"]) <= 2 for p in payloads)
    sent = [entry for p in payloads for entry in p["localAuthorizationList"]]
    assert sorted(sent, key=lambda entry: entry["idTag"].lower()) == registry
    assert not_accepted_first(sent)  # a list cut short still refuses those
    assert (result["status"], result["listVersion"], len(result["attempts"])) == ("Accepted", len(parts), len(parts))
    assert (held["listVersion"], held["known"], held["localAuthorizationList"]) == (len(parts), True, registry)
    assert changed[3] == {"listVersion": len(parts) + 1, "updateType": "Differential",
                          "localAuthorizationList": [{"idTag": "LL-PART-0", "idTagInfo": {"status": "Blocked"}}]}
    # The limits were recorded: the second sync did not ask again.
    assert (await sent_actions(operator, "LL-PARTS")).count("GetConfiguration") == 1


async def test_a_version_mismatch_on_a_later_part_resends_the_whole_list_in_parts(server, operator):
    await operator.save_id_tag("LL-LATE-A")
    await operator.save_id_tag("LL-LATE-B")
    registry = await registry_as_list(operator)
    half = str((len(registry) + 1) // 2)
    async with connected(server, operator, "LL-LATE") as cp:
        pending, _ = await start_sync(cp, operator, {"LocalAuthListMaxLength": "10000", "SendLocalListMaxLength": half})
        first = await answer_parts(cp, ["Accepted", "VersionMismatch"])
        version_call = await cp.next_call()
        await cp.reply(version_call, {"listVersion": 7})
        again = await answer_parts(cp, ["Accepted", "Accepted"])
        status, result = await pending
        held = await local_list(operator, "LL-LATE")

    assert status == 200 and version_call[2:] == ["GetLocalListVersion", {}]
    assert [(a["updateType"], a["listVersion"], a["status"]) for a in result["attempts"]] == [
        ("Full", 1, "Accepted"), ("Differential", 2, "VersionMismatch"),
        ("Full", 8, "Accepted"), ("Differential", 9, "Accepted")]
    assert [call[3] for call in again] == [call[3] | {"listVersion": call[3]["listVersion"] + 7} for call in first]
    assert (held["listVersion"], held["known"], held["localAuthorizationList"]) == (9, True, registry)


async def test_a_part_refused_stops_the_rest_and_the_accepted_parts_are_known(server, operator):
    await operator.save_id_tag("LL-HALF-A")
    await operator.save_id_tag("LL-HALF-B")
    async with connected(server, operator, "LL-HALF") as cp:
        pending, _ = await start_sync(cp, operator, {"LocalAuthListMaxLength": "10000", "SendLocalListMaxLength": "1"})
        first, _ = await answer_parts(cp, ["Accepted", "Failed"])
        status, result = await pending
        held = await local_list(operator, "LL-HALF")
        await assert_nothing_was_sent(cp, operator)

    assert status == 200
    assert [(a["updateType"], a["listVersion"], a["status"]) for a in result["attempts"]] == [
        ("Full", 1, "Accepted"), ("Differential", 2, "Failed")]
    assert result["status"] == "Failed"
    assert (held["listVersion"], held["known"]) == (1, True)
    assert held["localAuthorizationList"] == first[3]["localAuthorizationList"]


async def test_a_registry_larger_than_the_charge_points_list_is_refused_and_nothing_is_sent(server, operator):
    await operator.save_id_tag("LL-SMALL-A")
    await operator.save_id_tag("LL-SMALL-B")
    async with connected(server, operator, "LL-SMALL") as cp:
        pending, _ = await start_sync(cp, operator, {"LocalAuthListMaxLength": "1", "SendLocalListMaxLength": "1"})
        status, result = await pending
        await assert_nothing_was_sent(cp, operator)

    assert status == 409
    assert "LocalAuthListMaxLength" in result["error"] and "at most 1" in result["error"]
    assert result["capacity"] == 1 and result["tags"] == len(await registry_as_list(operator))
    assert "SendLocalList" not in await sent_actions(operator, "LL-SMALL")


async def test_a_charge_point_that_will_not_tell_its_limits_gets_the_list_in_one_message(server, operator):
    await operator.save_id_tag("LL-SILENT")
    async with connected(server, operator, "LL-SILENT") as cp:
        pending, _ = await start_sync(cp, operator, None)
        (sent,) = await answer_parts(cp, ["Accepted"])
        status, result = await pending

    assert sent[3]["updateType"] == "Full"
    assert sent[3]["localAuthorizationList"] == await registry_as_list(operator)
    assert (status, result["status"], len(result["attempts"])) == (200, "Accepted", 1)
