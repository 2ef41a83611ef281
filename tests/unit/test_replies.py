"""What the central system learns from answers (domain/replies.py), on the aggregate alone.

Each story ends where an auditor would check it: the state rebuilt from the
events, and from a snapshot, equals the state as it was learned.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.chargepoint import ChargePoint
from domain.event_bases import Snapshot
from domain.replies import LEARNED_FROM_REPLIES, OUTCOME_FIELDS, command_outcomes

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def answered(*exchanges: tuple[str, dict[str, Any], dict[str, Any]]) -> ChargePoint:
    cp = ChargePoint(id="CP-REPLIES", description="", auto_registered=False)
    for number, (action, request, reply) in enumerate(exchanges):
        cp.record_call_answer(message_id=f"m{number}", action=action, request=request, reply=reply, received_at=NOW)
    return cp


def rebuilt(cp: ChargePoint) -> tuple[ChargePoint, ChargePoint]:
    """(replayed from the events, restored from a snapshot) of ``cp``."""
    replayed: Any = None
    for domain_event in cp.collect_events():
        replayed = domain_event.mutate(replayed)
    return replayed, Snapshot.take(cp).mutate(None)


def test_every_outcome_kept_is_something_the_central_system_learns():
    assert set(OUTCOME_FIELDS) <= set(LEARNED_FROM_REPLIES)


def test_outcomes_keep_the_answer_with_what_was_asked_and_survive_replay_and_snapshot():
    cp = answered(  # given
        ("Reset", {"type": "Soft"}, {"status": "Rejected"}),
        ("Reset", {"type": "Hard"}, {"status": "Accepted"}),  # when a later answer
        ("ClearCache", {}, {"status": "Accepted"}),
        ("GetDiagnostics", {"location": "ftp://d.example/", "retries": 3}, {}),
    )

    assert command_outcomes(cp) == {  # then the latest of each is kept
        "Reset": {"type": "Hard", "status": "Accepted"},
        "ClearCache": {"status": "Accepted"},
        "GetDiagnostics": {"location": "ftp://d.example/"},
    }
    for copy in rebuilt(cp):
        assert vars(copy) == vars(cp)


def test_a_charge_point_that_never_answered_such_a_command_has_no_outcomes():
    cp = answered(("GetLocalListVersion", {}, {"listVersion": 2}))

    assert command_outcomes(cp) == cp.command_outcomes == {}


def test_a_snapshot_from_before_outcomes_were_declared_is_upcast_keeping_any_it_had():
    never_answered: dict[str, Any] = {"description": ""}  # given snapshots of class_version 2
    answered_once: dict[str, Any] = {"command_outcomes": {"ClearCache": {"status": "Accepted"}}}

    for state in (never_answered, answered_once):  # when
        ChargePoint.upcast_v2_v3(state)

    assert never_answered["command_outcomes"] == {}  # then
    assert answered_once["command_outcomes"] == {"ClearCache": {"status": "Accepted"}}


def test_an_authorization_key_is_hidden_in_the_configuration_whatever_its_spelling():
    cp = answered(
        ("ChangeConfiguration", {"key": "authorizationkey", "value": "k" * 20}, {"status": "Accepted"}),
        ("GetConfiguration", {}, {"configurationKey": [{"key": "AUTHORIZATIONKEY", "readonly": False,
                                                        "value": "k" * 20}]}),
    )

    assert cp.configuration == {"AUTHORIZATIONKEY": {"value": "<hidden>", "readonly": False}}


def test_keys_the_charge_point_does_not_know_are_forgotten():
    cp = answered(
        ("ChangeConfiguration", {"key": "MaxEnergyOnInvalidId", "value": "0"}, {"status": "Accepted"}),
        ("GetConfiguration", {"key": ["maxenergyoninvalidid"]}, {"unknownKey": ["maxenergyoninvalidid"]}),
    )

    assert cp.configuration == {}
