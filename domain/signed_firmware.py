"""Signed firmware updates (OCPP 1.6 Security Whitepaper, SignedUpdateFirmware and SignedFirmwareStatusNotification).

The central system signs an image once, when it is stored (adapters), and
sends SignedUpdateFirmware with the image's location, its signature and the
signing certificate. ``signed_firmware_update`` follows the latest one, as
``firmware_update`` follows UpdateFirmware: recorded as requested before it
is sent (call_checks.BEFORE_SENDING, so a rollout shows it pending at once),
then how it was answered (SignedFirmwareUpdateAnswered or
SignedFirmwareUpdateFailed, domain/call_outcomes.py) and every status the
charge point reports (SignedFirmwareStatusReported): the charge point checks
the certificate and the signature itself and says so (InvalidCertificate,
InvalidSignature, SignatureVerified, ...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from domain.chargepoint_events import ChargePointEvent, declared, topic
from domain.facts import Facts, Payload
from domain.timestamps import format_ocpp_time

PENDING, INSTALLING, INSTALLED, FAILED = "pending", "installing", "installed", "failed"
# The state of the update each SignedFirmwareStatusNotification status means (Idle: none changes).
STATE_OF_STATUS = {
    "DownloadScheduled": INSTALLING,
    "Downloading": INSTALLING,
    "DownloadPaused": INSTALLING,
    "Downloaded": INSTALLING,
    "SignatureVerified": INSTALLING,
    "InstallScheduled": INSTALLING,
    "Installing": INSTALLING,
    "InstallRebooting": INSTALLING,
    "Installed": INSTALLED,
    "DownloadFailed": FAILED,
    "InvalidSignature": FAILED,
    "InstallVerificationFailed": FAILED,
    "InstallationFailed": FAILED,
}
# SignedUpdateFirmware.conf statuses that refuse the update; Accepted and AcceptedCanceled take it.
REFUSALS = frozenset({"Rejected", "InvalidCertificate", "RevokedCertificate"})


class Updated(Protocol):
    """The charge point as these events know it (ChargePoint's attributes of the same names)."""

    signed_firmware_update: Payload | None
    last_seen: datetime | None

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None: ...


def _of_request(update: Payload | None, request_id: int | None) -> Payload | None:
    """The followed update if it is the one ``request_id`` names (or none is named)."""
    if update is None or (request_id is not None and update.get("requestId") != request_id):
        return None
    return update


@declared
class SignedFirmwareUpdateRequested(ChargePointEvent):
    """A SignedUpdateFirmware about to be sent: the image's location and when to fetch and install it."""

    TOPIC = topic("SignedFirmwareUpdateRequested")
    request_id: int
    location: str
    retrieve_date_time: str
    install_date_time: str | None
    requested_at: datetime

    def apply(self, cp: Updated) -> None:
        cp.signed_firmware_update = {
            "requestId": self.request_id, "location": self.location, "retrieveDateTime": self.retrieve_date_time,
            "installDateTime": self.install_date_time, "sentAt": format_ocpp_time(self.requested_at),
            "state": PENDING, "answer": None, "lastStatus": None,
        }


@declared
class SignedFirmwareUpdateAnswered(ChargePointEvent):
    """SignedUpdateFirmware.conf: Accepted, AcceptedCanceled (another was cancelled for it), or a refusal."""

    TOPIC = topic("SignedFirmwareUpdateAnswered")
    request_id: int
    status: str
    answered_at: datetime

    def apply(self, cp: Updated) -> None:
        update = _of_request(cp.signed_firmware_update, self.request_id)
        if update is not None:
            state = FAILED if self.status in REFUSALS else update["state"]
            cp.signed_firmware_update = {**update, "answer": self.status, "state": state}


@declared
class SignedFirmwareUpdateFailed(ChargePointEvent):
    """The charge point answered SignedUpdateFirmware with a CALLERROR (or an invalid reply)."""

    TOPIC = topic("SignedFirmwareUpdateFailed")
    request_id: int
    error_code: str
    failed_at: datetime

    def apply(self, cp: Updated) -> None:
        update = _of_request(cp.signed_firmware_update, self.request_id)
        if update is not None:
            cp.signed_firmware_update = {**update, "state": FAILED, "error": self.error_code}


@declared
class SignedFirmwareStatusReported(ChargePointEvent):
    """A SignedFirmwareStatusNotification, as received."""

    TOPIC = topic("SignedFirmwareStatusReported")
    message_id: str
    request: Payload
    reply: Payload
    received_at: datetime

    def apply(self, cp: Updated) -> None:
        status = self.request["status"]
        update = _of_request(cp.signed_firmware_update, self.request.get("requestId"))
        if update is None:  # an update this central system did not send, or a status it was asked for
            update = {"requestId": self.request.get("requestId"), "state": None, "answer": None}
        cp.signed_firmware_update = {**update, "state": STATE_OF_STATUS.get(status, update["state"]),
                                     "lastStatus": status, "lastStatusAt": format_ocpp_time(self.received_at)}
        cp.last_seen = self.received_at


def record_requested(cp: Updated, request: Payload, now: datetime) -> str | None:
    """Before a SignedUpdateFirmware goes (call_checks.BEFORE_SENDING): followed from now on. Never refused."""
    firmware = request["firmware"]
    cp.trigger_event(SignedFirmwareUpdateRequested, request_id=request["requestId"], location=firmware["location"],
                     retrieve_date_time=firmware["retrieveDateTime"],
                     install_date_time=firmware.get("installDateTime"), requested_at=now)
    return None


def answer_signed_firmware_status_notification(cp: Updated, message_id: str, request: Payload,
                                                facts: Facts) -> Payload:
    cp.trigger_event(SignedFirmwareStatusReported, message_id=message_id, request=request, reply={},
                     received_at=facts.now)
    return {}
