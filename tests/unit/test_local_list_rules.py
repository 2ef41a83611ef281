"""The Local Authorization List (domain/local_list.py and what replies teach).

Given the registry and what the charge point holds, which SendLocalList
brings it up to date; given a reply, what the CSMS then knows it holds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.chargepoint import ChargePoint
from domain.local_list import (
    in_messages,
    list_after_version_report,
    list_from_registry,
    list_limits,
    plan_update,
    updated_list,
)

NOW = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)


def tag(id_tag: str, status: str = "Accepted", **extra: str) -> dict[str, Any]:
    return {"idTag": id_tag, "status": status, **extra}


def entry(id_tag: str, status: str = "Accepted", **extra: str) -> dict[str, Any]:
    return {"idTag": id_tag, "idTagInfo": {"status": status, **extra}}


def answer(cp: ChargePoint, action: str, request: dict[str, Any], reply: dict[str, Any]) -> None:
    cp.record_call_sent(message_id="m", action=action, request=request, sent_at=NOW)
    cp.record_call_answer(message_id="m", action=action, request=request, reply=reply, received_at=NOW)


def test_the_registry_becomes_a_list_of_every_tag_with_its_info():
    desired = list_from_registry([
        tag("A"), tag("b", "Blocked"), tag("C", expiryDate="2025-01-01T00:00:00.000Z", parentIdTag="P"),
    ])
    assert desired == {
        "a": entry("A"),
        "b": entry("b", "Blocked"),
        "c": entry("C", expiryDate="2025-01-01T00:00:00.000Z", parentIdTag="P"),
    }


@pytest.mark.parametrize("held, version", [(None, None), (None, 4), ({}, None)])
def test_a_list_not_known_is_sent_in_full(held, version):
    desired = list_from_registry([tag("B"), tag("A")])
    update = plan_update(desired, held, version)
    assert update == {
        "listVersion": (version or 0) + 1,
        "updateType": "Full",
        "localAuthorizationList": [entry("A"), entry("B")],
    }


def test_a_known_list_gets_only_its_differences_with_removals_without_info():
    held = list_from_registry([tag("KEEP"), tag("CHANGE"), tag("GONE")])
    desired = list_from_registry([tag("KEEP"), tag("CHANGE", "Blocked"), tag("NEW")])
    update = plan_update(desired, held, 7)
    assert update == {
        "listVersion": 8,
        "updateType": "Differential",
        "localAuthorizationList": [entry("CHANGE", "Blocked"), {"idTag": "GONE"}, entry("NEW")],
    }


def test_a_list_already_in_sync_needs_no_update_unless_full_is_asked():
    held = list_from_registry([tag("A")])
    assert plan_update(held, dict(held), 3) is None
    assert plan_update(held, dict(held), 3, full=True) == {
        "listVersion": 4, "updateType": "Full", "localAuthorizationList": [entry("A")],
    }


def test_a_charge_point_without_list_support_still_gets_version_1():
    assert plan_update({}, None, -1)["listVersion"] == 1  # type: ignore[index]


def test_accepted_updates_change_the_held_list():
    full = updated_list(None, {"updateType": "Full", "listVersion": 1,
                               "localAuthorizationList": [entry("A"), entry("B")]})
    assert full == {"a": entry("A"), "b": entry("B")}
    differential = updated_list(full, {"updateType": "Differential", "listVersion": 2,
                                       "localAuthorizationList": [{"idTag": "a"}, entry("C", "Blocked")]})
    assert differential == {"b": entry("B"), "c": entry("C", "Blocked")}
    assert full == {"a": entry("A"), "b": entry("B")}  # the input is not changed
    assert updated_list(None, {"updateType": "Differential", "listVersion": 2, "localAuthorizationList": []}) is None


def test_a_version_report_keeps_the_list_only_when_it_matches():
    held = {"a": entry("A")}
    assert list_after_version_report(held, 3, 3) == held
    assert list_after_version_report(held, 3, 5) is None
    assert list_after_version_report(None, None, 0) == {}  # version 0: the list is empty


def test_an_accepted_send_local_list_is_learned_and_the_others_are_not():
    cp = ChargePoint(id="CP-1", description="", auto_registered=False)
    answer(cp, "SendLocalList", {"listVersion": 1, "updateType": "Full",
                                 "localAuthorizationList": [entry("A")]}, {"status": "Accepted"})
    for status in ("Failed", "NotSupported", "VersionMismatch"):
        answer(cp, "SendLocalList", {"listVersion": 2, "updateType": "Differential",
                                     "localAuthorizationList": [{"idTag": "A"}]}, {"status": status})
    assert (cp.local_list_version, cp.local_list) == (1, {"a": entry("A")})
    answer(cp, "GetLocalListVersion", {}, {"listVersion": 9})  # changed behind our back
    assert (cp.local_list_version, cp.local_list) == (9, None)


def test_the_limits_are_read_from_the_configuration_in_the_charge_points_spelling():
    assert list_limits({"localauthlistmaxlength": {"value": "500"}, "SendLocalListMaxLength": {"value": " 20 "}}) == (
        500, 20)
    assert list_limits({}) == (None, None)
    # Unreadable or impossible values are no limit; an empty list is a real capacity.
    assert list_limits({"LocalAuthListMaxLength": {"value": "lots"}, "SendLocalListMaxLength": {"value": "0"}}) == (
        None, None)
    assert list_limits({"LocalAuthListMaxLength": {"value": "0"}, "SendLocalListMaxLength": {"value": None}}) == (
        0, None)


def test_a_long_full_list_goes_as_a_full_part_then_differential_parts_with_rising_versions():
    entries = [entry(name) for name in "ABCDE"]
    update = {"listVersion": 4, "updateType": "Full", "localAuthorizationList": entries}
    parts = in_messages(update, 2)
    assert parts == [
        {"listVersion": 4, "updateType": "Full", "localAuthorizationList": entries[0:2]},
        {"listVersion": 5, "updateType": "Differential", "localAuthorizationList": entries[2:4]},
        {"listVersion": 6, "updateType": "Differential", "localAuthorizationList": entries[4:5]},
    ]
    held = None
    for part in parts:  # accepted one after another, they add up to the whole list
        held = updated_list(held, part)
    assert held == updated_list(None, update)


def test_parts_send_removals_first_then_tags_not_accepted():
    update = {"listVersion": 3, "updateType": "Differential", "localAuthorizationList": [
        entry("A"), {"idTag": "B"}, entry("C", "Blocked"), {"idTag": "D"}, entry("E"), entry("F", "Expired")]}
    parts = in_messages(update, 2)
    assert [p["localAuthorizationList"] for p in parts] == [
        [{"idTag": "B"}, {"idTag": "D"}], [entry("C", "Blocked"), entry("F", "Expired")], [entry("A"), entry("E")]]
    assert [p["listVersion"] for p in parts] == [3, 4, 5]


def test_an_update_within_the_limit_or_without_one_goes_as_it_is():
    update = {"listVersion": 2, "updateType": "Differential", "localAuthorizationList": [entry("A"), {"idTag": "B"}]}
    assert in_messages(update, 2) == in_messages(update, None) == [update]
    empty = {"listVersion": 1, "updateType": "Full", "localAuthorizationList": []}
    assert in_messages(empty, 1) == [empty]
