"""Logs a charge point uploads on request (OCPP 1.6 Security Whitepaper, GetLog and LogStatusNotification).

The operator sends GetLog; what its answer means (Accepted, Rejected,
AcceptedCanceled, and the ``filename`` the charge point will upload) is
recorded beside the exchange as LogRequestAnswered (domain/call_outcomes.py).
The charge point reports its progress with LogStatusNotification
(LogStatusReported) and uploads the file to the location it was given; the
receipt, with the file's sha256, is LogUploaded. ``log_upload`` follows the
latest request: a status or an upload for another requestId starts following
that one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from domain.chargepoint_events import ChargePointEvent, declared, topic
from domain.facts import Facts, Payload
from domain.timestamps import format_ocpp_time


class Uploader(Protocol):
    """The charge point as these events know it (ChargePoint's attributes of the same names)."""

    log_upload: Payload | None
    last_seen: datetime | None

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None: ...


def _following(log_upload: Payload | None, request_id: int | None) -> Payload:
    """The followed request, or a fresh one when ``request_id`` names another request."""
    if log_upload is None or (request_id is not None and log_upload.get("requestId") != request_id):
        return {"requestId": request_id, "logType": None, "status": None, "filename": None, "lastStatus": None,
                "file": None}
    return dict(log_upload)


@declared
class LogRequestAnswered(ChargePointEvent):
    """GetLog.conf: the charge point's answer to a GetLog (``filename``: the file it will upload, if it said)."""

    TOPIC = topic("LogRequestAnswered")
    request_id: int
    log_type: str
    status: str
    filename: str | None
    answered_at: datetime

    def apply(self, cp: Uploader) -> None:
        # A new request: what is followed starts again from its answer.
        cp.log_upload = {**_following(None, self.request_id), "logType": self.log_type, "status": self.status,
                         "filename": self.filename, "answeredAt": format_ocpp_time(self.answered_at)}


@declared
class LogStatusReported(ChargePointEvent):
    """A LogStatusNotification, as received."""

    TOPIC = topic("LogStatusReported")
    message_id: str
    request: Payload
    reply: Payload
    received_at: datetime

    def apply(self, cp: Uploader) -> None:
        followed = _following(cp.log_upload, self.request.get("requestId"))
        cp.log_upload = {**followed, "lastStatus": self.request["status"],
                         "lastStatusAt": format_ocpp_time(self.received_at)}
        cp.last_seen = self.received_at


@declared
class LogUploaded(ChargePointEvent):
    """The receipt of a log file uploaded to the location of a GetLog; the file lives in the data directory."""

    TOPIC = topic("LogUploaded")
    file_name: str
    size: int
    sha256: str
    request_id: int | None
    log_type: str | None
    received_at: datetime

    def apply(self, cp: Uploader) -> None:
        followed = _following(cp.log_upload, self.request_id)
        if followed["logType"] is None:
            followed["logType"] = self.log_type
        cp.log_upload = {**followed, "file": {"fileName": self.file_name, "size": self.size, "sha256": self.sha256,
                                              "receivedAt": format_ocpp_time(self.received_at)}}


def answer_log_status_notification(cp: Uploader, message_id: str, request: Payload, facts: Facts) -> Payload:
    cp.trigger_event(LogStatusReported, message_id=message_id, request=request, reply={}, received_at=facts.now)
    return {}


def record_log_upload(cp: Uploader, file_name: str, size: int, sha256: str, request_id: int | None,
                      log_type: str | None, received_at: datetime) -> None:
    cp.trigger_event(LogUploaded, file_name=file_name, size=size, sha256=sha256, request_id=request_id,
                     log_type=log_type, received_at=received_at)


def log_status(cp: Uploader) -> str | None:
    """The status the charge point last reported of its log upload."""
    return (cp.log_upload or {}).get("lastStatus")
