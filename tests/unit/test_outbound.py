"""Calls the CSMS sends: checked before sending (ChargePoint.prepare_call), learned after.

Smart charging on the aggregate: which profiles are refused before they are
sent, which the charge point holds once it accepted them, and how TxProfiles
follow their transaction; and how an UpdateFirmware is followed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Sequence

import pytest

from domain.chargepoint import ChargePoint
from tests.stories import facts_at, registered, replayed

NOW = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)


def profile(profile_id: int = 1, purpose: str = "TxDefaultProfile", stack_level: int = 0,
            periods: Sequence[tuple[int, float]] = ((0, 16.0),), **extra: Any) -> dict[str, Any]:
    return {
        "chargingProfileId": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": start, "limit": limit} for start, limit in periods],
        },
        **extra,
    }


def answer(cp: ChargePoint, action: str, request: dict[str, Any], reply: dict[str, Any]) -> None:
    cp.record_call_sent(message_id=f"{action}-{len(cp.pending_events)}", action=action, request=request, sent_at=NOW)
    cp.record_call_answer(message_id="m", action=action, request=request, reply=reply, received_at=NOW)


def set_profile(cp: ChargePoint, connector_id: int, charging_profile: dict[str, Any],
                status: str = "Accepted") -> None:
    request = {"connectorId": connector_id, "csChargingProfiles": charging_profile}
    assert cp.prepare_call("SetChargingProfile", request, NOW) is None
    answer(cp, "SetChargingProfile", request, {"status": status})


def start(cp: ChargePoint, transaction_id: int, connector_id: int = 1, id_tag: str = "TAG-1") -> None:
    request = {"connectorId": connector_id, "idTag": id_tag, "meterStart": 0, "timestamp": "2024-03-04T09:00:00Z"}
    cp.answer_start_transaction(f"start-{transaction_id}", request, facts_at(NOW, [transaction_id]))


def stop(cp: ChargePoint, transaction_id: int) -> None:
    request = {"transactionId": transaction_id, "meterStop": 10, "timestamp": "2024-03-04T09:30:00Z"}
    cp.answer_stop_transaction(f"stop-{transaction_id}", request, facts_at(NOW))


def installed_ids(cp: ChargePoint) -> list[tuple[int, int]]:
    return [(e["connectorId"], e["chargingProfile"]["chargingProfileId"]) for e in cp.charging_profiles]


@pytest.mark.parametrize(
    "connector_id, charging_profile, reason",
    [
        (1, profile(purpose="ChargePointMaxProfile"), "connector 0"),
        (1, profile(purpose="TxProfile"), "needs a transaction"),
        (1, profile(periods=[(0, 16), (600, 10), (300, 8)]), "ascending"),
    ],
    ids=["max profile off connector 0", "tx profile without transaction", "periods not ascending"],
)
def test_a_profile_that_breaks_a_rule_is_not_sent(connector_id, charging_profile, reason):
    cp = registered()
    refusal = cp.prepare_call("SetChargingProfile",
                              {"connectorId": connector_id, "csChargingProfiles": charging_profile}, NOW)
    assert refusal is not None and reason in refusal


def test_a_tx_profile_is_accepted_while_its_connector_has_a_transaction():
    cp = registered()
    start(cp, 7)
    assert cp.prepare_call("SetChargingProfile",
                           {"connectorId": 1, "csChargingProfiles": profile(purpose="TxProfile")}, NOW) is None


def test_accepted_profiles_are_installed_with_the_replacement_rules():
    cp = registered()
    set_profile(cp, 0, profile(1, "ChargePointMaxProfile"))
    set_profile(cp, 1, profile(2, stack_level=1))
    set_profile(cp, 2, profile(3, stack_level=1))
    set_profile(cp, 1, profile(4, stack_level=1))  # same stack level and purpose on connector 1: replaces 2
    set_profile(cp, 2, profile(1))  # the same id: replaces the max profile
    set_profile(cp, 1, profile(5, stack_level=3), status="Rejected")  # not held
    assert installed_ids(cp) == [(2, 3), (1, 4), (2, 1)]
    assert replayed(cp.collect_events()) == cp


@pytest.mark.parametrize(
    "criteria, left",
    [
        ({"id": 3}, [(0, 1), (1, 2)]),
        ({"connectorId": 1}, [(0, 1), (2, 3)]),
        ({"chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 2}, [(0, 1), (1, 2)]),
        ({}, []),
    ],
)
def test_an_accepted_clear_removes_what_its_criteria_select(criteria, left):
    cp = registered()
    set_profile(cp, 0, profile(1, "ChargePointMaxProfile"))
    set_profile(cp, 1, profile(2, stack_level=1))
    set_profile(cp, 2, profile(3, stack_level=2))
    answer(cp, "ClearChargingProfile", criteria, {"status": "Unknown"})
    assert len(cp.charging_profiles) == 3
    answer(cp, "ClearChargingProfile", criteria, {"status": "Accepted"})
    assert installed_ids(cp) == left


def test_a_tx_profile_ends_with_its_transaction():
    cp = registered()
    start(cp, 7)
    set_profile(cp, 1, profile(9, "TxProfile"))
    set_profile(cp, 1, profile(2))
    stop(cp, 7)
    assert installed_ids(cp) == [(1, 2)]


@pytest.mark.parametrize(
    "charging_profile, reason",
    [(profile(purpose="TxDefaultProfile"), "must be a TxProfile"),
     (profile(purpose="TxProfile", transactionId=3), "cannot name a transactionId"),
     (profile(purpose="TxProfile", periods=[(10, 16)]), "startPeriod 0")],
)
def test_a_remote_start_with_a_wrong_profile_is_not_sent(charging_profile, reason):
    refusal = registered().prepare_call("RemoteStartTransaction",
                                        {"idTag": "TAG-1", "chargingProfile": charging_profile}, NOW)
    assert refusal is not None and reason in refusal


def test_the_profile_of_an_accepted_remote_start_becomes_its_transactions_tx_profile():
    cp = registered()
    request = {"idTag": "TAG-1", "connectorId": 2, "chargingProfile": profile(4, "TxProfile")}
    assert cp.prepare_call("RemoteStartTransaction", request, NOW) is None
    answer(cp, "RemoteStartTransaction", request, {"status": "Accepted"})
    assert cp.charging_profiles == []  # nothing to limit until the transaction starts
    start(cp, 11, connector_id=2, id_tag="tag-1")
    assert cp.charging_profiles == [
        {"connectorId": 2, "chargingProfile": dict(profile(4, "TxProfile"), transactionId=11)},
    ]
    stop(cp, 11)
    assert cp.charging_profiles == [] and cp.remote_start_profiles == {}
    assert replayed(cp.collect_events()) == cp


def test_a_rejected_remote_start_leaves_no_profile_waiting():
    cp = registered()
    request = {"idTag": "TAG-1", "chargingProfile": profile(4, "TxProfile")}
    answer(cp, "RemoteStartTransaction", request, {"status": "Rejected"})
    start(cp, 11)
    assert cp.charging_profiles == []


@pytest.mark.parametrize(
    "statuses, state",
    [([], "pending"), (["Downloading"], "installing"), (["Downloading", "Downloaded", "Installing"], "installing"),
     (["Downloading", "Installed"], "installed"), (["DownloadFailed"], "failed"),
     (["Installing", "InstallationFailed", "Idle"], "failed")],
)
def test_an_update_firmware_is_followed_through_its_status_notifications(statuses, state):
    cp = registered()
    request = {"location": "http://csms/firmware/v2.bin", "retrieveDate": "2024-03-04T10:00:00Z"}
    answer(cp, "UpdateFirmware", request, {})
    for status in statuses:
        cp.answer_firmware_status_notification(status, {"status": status}, facts_at(NOW))
    assert cp.firmware_update is not None and cp.firmware_update["state"] == state
    assert cp.firmware_update["location"] == "http://csms/firmware/v2.bin"


def test_an_update_firmware_refused_with_a_callerror_failed():
    cp = registered()
    request = {"location": "http://csms/firmware/v2.bin", "retrieveDate": "2024-03-04T10:00:00Z"}
    cp.record_call_sent(message_id="u", action="UpdateFirmware", request=request, sent_at=NOW)
    cp.record_call_error(message_id="u", action="UpdateFirmware", request=request, error_code="NotSupported",
                         error_description="", error_details={}, received_at=NOW)
    assert cp.firmware_update is not None
    assert (cp.firmware_update["state"], cp.firmware_update["error"]) == ("failed", "NotSupported")
