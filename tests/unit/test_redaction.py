"""Secrets never land in history (domain/redaction.py).

The AuthorizationKey is a charge point's Basic-auth password (OCPP 1.6
security profile 1): the call that sets it is sent as is, recorded without it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.chargepoint import ChargePoint
from domain.redaction import HIDDEN, recorded_request, sets_password

NOW = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
SECRET = "0123456789abcdef-s3cret"


def holds(value: Any, needle: str) -> bool:
    """Whether ``needle`` appears anywhere inside ``value`` (dicts, lists, objects' attributes)."""
    if isinstance(value, str):
        return needle in value
    if isinstance(value, dict):
        return any(holds(k, needle) or holds(v, needle) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return any(holds(item, needle) for item in value)
    if hasattr(value, "__dict__"):
        return holds(vars(value), needle)
    return False


def test_the_authorization_key_is_hidden_in_what_is_recorded_but_not_in_what_is_sent() -> None:
    payload = {"key": "AuthorizationKey", "value": SECRET}  # given

    recorded = recorded_request("ChangeConfiguration", payload)  # when

    assert recorded == {"key": "AuthorizationKey", "value": HIDDEN}  # then
    assert payload == {"key": "AuthorizationKey", "value": SECRET}  # the charge point still gets it


def test_other_configuration_keys_are_recorded_as_sent() -> None:
    payload = {"key": "HeartbeatInterval", "value": "60"}

    assert recorded_request("ChangeConfiguration", payload) == payload


def test_other_actions_are_recorded_as_sent_even_with_a_key_field() -> None:
    payload = {"vendorId": "com.acme", "key": "AuthorizationKey", "value": "not a configuration change"}

    assert recorded_request("DataTransfer", payload) == payload


def test_an_authorization_key_change_sets_the_password_and_nothing_else_does() -> None:
    assert sets_password("ChangeConfiguration", {"key": "AuthorizationKey", "value": SECRET}) == SECRET
    assert sets_password("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}) is None
    assert sets_password("GetConfiguration", {"key": ["AuthorizationKey"]}) is None


def test_an_accepted_authorization_key_change_leaves_no_secret_in_events_or_state() -> None:
    cp = ChargePoint(id="CP-1", description="", auto_registered=False)  # given
    recorded = recorded_request("ChangeConfiguration", {"key": "AuthorizationKey", "value": SECRET})

    cp.record_call_sent(message_id="c1", action="ChangeConfiguration", request=recorded, sent_at=NOW)  # when
    cp.record_call_answer(message_id="c1", action="ChangeConfiguration", request=recorded,
                          reply={"status": "Accepted"}, received_at=NOW)

    assert not holds(cp.collect_events(), SECRET)  # then
    assert not holds(vars(cp), SECRET)
    assert cp.configuration["AuthorizationKey"]["value"] == HIDDEN


@pytest.mark.parametrize("key", ["authorizationkey", "AUTHORIZATIONKEY"])
def test_the_authorization_key_is_hidden_whatever_the_case_of_its_name(key: str) -> None:
    recorded = recorded_request("ChangeConfiguration", {"key": key, "value": SECRET})

    assert not holds(recorded, SECRET)


def test_an_authorization_key_change_sets_the_password_whatever_the_case_of_its_name() -> None:
    assert sets_password("ChangeConfiguration", {"key": "authorizationKey", "value": SECRET}) == SECRET
