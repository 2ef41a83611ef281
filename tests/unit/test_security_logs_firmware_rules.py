"""The security extension's logs and signed firmware on the aggregate, as stories; each ends in a replay.

GetLog's answer, LogStatusNotification and the upload follow the latest
request; a SignedUpdateFirmware is followed from before it is sent through
its answer and every status the charge point reports.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain import logs
from domain.answers import ANSWERS
from domain.chargepoint import ChargePoint
from domain.redaction import recorded_request
from domain.security_events import record_observed
from tests.stories import facts_at, registered, replayed

NOW = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
FIRMWARE = {"location": "https://csms.example/firmware/cp-3.0.bin", "retrieveDateTime": "2030-01-01T00:00:00Z",
            "signingCertificate": "-----BEGIN CERTIFICATE-----...", "signature": "c2ln"}


def answered(cp: ChargePoint, action: str, request: dict[str, Any], reply: dict[str, Any]) -> None:
    assert cp.prepare_call(action, request, NOW) is None
    cp.record_call_sent(message_id=f"{action}-1", action=action, request=request, sent_at=NOW)
    cp.record_call_answer(message_id=f"{action}-1", action=action, request=request, reply=reply, received_at=NOW)


def reported(cp: ChargePoint, action: str, request: dict[str, Any]) -> None:
    assert ANSWERS[action](cp, "msg", request, facts_at(NOW)) == {}


def same_after_replay(cp: ChargePoint) -> Any:
    again = replayed(cp.collect_events())
    assert (again.log_upload, again.signed_firmware_update) == (cp.log_upload, cp.signed_firmware_update)
    return again


# ---- logs ---------------------------------------------------------------------------------------


def test_a_get_log_is_followed_from_its_answer_through_its_statuses_to_its_upload():
    cp = registered()
    request = {"logType": "SecurityLog", "requestId": 9, "log": {"remoteLocation": "https://x/logs/CP-1/"}}

    answered(cp, "GetLog", request, {"status": "Accepted", "filename": "sec.log"})
    reported(cp, "LogStatusNotification", {"status": "Uploading", "requestId": 9})
    logs.record_log_upload(cp, "sec.log", 12, "ab" * 32, 9, "SecurityLog", NOW)
    reported(cp, "LogStatusNotification", {"status": "Uploaded", "requestId": 9})

    assert logs.log_status(cp) == "Uploaded"
    assert cp.log_upload is not None
    assert (cp.log_upload["requestId"], cp.log_upload["status"], cp.log_upload["filename"]) == (9, "Accepted",
                                                                                               "sec.log")
    assert cp.log_upload["file"]["sha256"] == "ab" * 32
    same_after_replay(cp)


def test_a_status_of_another_request_starts_following_that_one_and_one_without_id_updates_the_current():
    cp = registered()
    answered(cp, "GetLog", {"logType": "DiagnosticsLog", "requestId": 1, "log": {"remoteLocation": "ftp://x/"}},
             {"status": "Rejected"})

    reported(cp, "LogStatusNotification", {"status": "Idle"})
    kept = dict(cp.log_upload or {})
    reported(cp, "LogStatusNotification", {"status": "Uploading", "requestId": 2})

    assert (kept["requestId"], kept["status"], kept["lastStatus"]) == (1, "Rejected", "Idle")
    assert cp.log_upload is not None
    assert (cp.log_upload["requestId"], cp.log_upload["status"], cp.log_upload["lastStatus"]) == (2, None,
                                                                                                 "Uploading")
    same_after_replay(cp)


def test_the_token_of_a_get_log_location_is_never_kept_in_history():
    token = "A" * 43
    request = {"logType": "SecurityLog", "requestId": 1,
               "log": {"remoteLocation": f"https://csms.example/logs/CP-1/{token}/", "oldestTimestamp": "x"}}

    kept = recorded_request("GetLog", request)

    assert kept["log"] == {"remoteLocation": "https://csms.example/logs/CP-1/<hidden>/", "oldestTimestamp": "x"}
    assert token not in str(kept)


# ---- signed firmware ----------------------------------------------------------------------------


def signed_update(cp: ChargePoint, reply: dict[str, Any], request_id: int = 7) -> None:
    answered(cp, "SignedUpdateFirmware", {"requestId": request_id, "firmware": FIRMWARE}, reply)


@pytest.mark.parametrize("answer, statuses, state", [
    ("Accepted", [], "pending"),
    ("AcceptedCanceled", ["Downloading"], "installing"),
    ("Accepted", ["Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"], "installed"),
    ("Accepted", ["Downloading", "Downloaded", "InvalidSignature"], "failed"),
    ("Accepted", ["Downloading", "Downloaded", "InstallVerificationFailed"], "failed"),
    ("Accepted", ["DownloadFailed", "Idle"], "failed"),
    ("InvalidCertificate", [], "failed"),
    ("RevokedCertificate", [], "failed"),
    ("Rejected", [], "failed"),
])
def test_a_signed_update_is_followed_through_its_answer_and_statuses(answer, statuses, state):
    cp = registered()

    signed_update(cp, {"status": answer})
    for status in statuses:
        reported(cp, "SignedFirmwareStatusNotification", {"status": status, "requestId": 7})

    update = cp.signed_firmware_update
    assert update is not None
    assert (update["state"], update["answer"], update["lastStatus"]) == (state, answer,
                                                                         statuses[-1] if statuses else None)
    assert (update["location"], update["requestId"]) == (FIRMWARE["location"], 7)
    assert "signature" not in update and "signingCertificate" not in update
    same_after_replay(cp)


def test_a_signed_update_is_pending_before_it_is_answered_and_failed_by_a_callerror_not_by_a_lost_connection():
    cp = registered()
    request = {"requestId": 3, "firmware": FIRMWARE}

    assert cp.prepare_call("SignedUpdateFirmware", request, NOW) is None
    pending = dict(cp.signed_firmware_update or {})
    cp.record_call_error("m1", "SignedUpdateFirmware", request, "ConnectionLost", "", {}, NOW)
    after_lost = dict(cp.signed_firmware_update or {})
    cp.record_call_error("m2", "SignedUpdateFirmware", request, "NotSupported", "", {}, NOW)

    assert pending["state"] == after_lost["state"] == "pending"
    assert cp.signed_firmware_update is not None
    assert (cp.signed_firmware_update["state"], cp.signed_firmware_update["error"]) == ("failed", "NotSupported")
    same_after_replay(cp)


def test_an_answer_or_status_for_another_request_does_not_change_the_update_followed():
    cp = registered()
    signed_update(cp, {"status": "Accepted"}, request_id=7)

    cp.record_call_answer("late", "SignedUpdateFirmware", {"requestId": 6, "firmware": FIRMWARE},
                          {"status": "Rejected"}, NOW)
    followed = dict(cp.signed_firmware_update or {})
    reported(cp, "SignedFirmwareStatusNotification", {"status": "Downloading", "requestId": 8})

    assert (followed["requestId"], followed["state"], followed["answer"]) == (7, "pending", "Accepted")
    assert cp.signed_firmware_update is not None
    assert (cp.signed_firmware_update["requestId"], cp.signed_firmware_update["state"]) == (8, "installing")
    same_after_replay(cp)


# ---- security events the central system sees ----------------------------------------------------


@pytest.mark.parametrize("type_, critical", [("ResetOrReboot", True), ("InvalidChargePointCertificate", False)])
def test_an_observed_security_event_says_whether_it_is_critical(type_, critical):
    cp = registered()

    record_observed(cp, type_, "refused: no client certificate", NOW)

    [event] = cp.collect_events()[1:]
    assert (type(event).__name__, event.type, event.critical) == ("SecurityEventObserved", type_, critical)
