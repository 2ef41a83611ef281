"""The method that answers each action a charge point may call, by the action's OCPP name."""

from __future__ import annotations

from typing import Callable

from domain import certificates, logs, security_events, signed_firmware
from domain.chargepoint import ChargePoint
from domain.facts import Facts, Payload

Answer = Callable[[ChargePoint, str, Payload, Facts], Payload]

ANSWERS: dict[str, Answer] = {
    "BootNotification": ChargePoint.answer_boot_notification,
    "Heartbeat": ChargePoint.answer_heartbeat,
    "StatusNotification": ChargePoint.answer_status_notification,
    "Authorize": ChargePoint.answer_authorize,
    "StartTransaction": ChargePoint.answer_start_transaction,
    "StopTransaction": ChargePoint.answer_stop_transaction,
    "MeterValues": ChargePoint.answer_meter_values,
    "DataTransfer": ChargePoint.answer_data_transfer,
    "FirmwareStatusNotification": ChargePoint.answer_firmware_status_notification,
    "DiagnosticsStatusNotification": ChargePoint.answer_diagnostics_status_notification,
    # The Security Whitepaper's, answered by the modules named for them.
    "SecurityEventNotification": security_events.answer_security_event_notification,
    "SignCertificate": certificates.answer_sign_certificate,
    "LogStatusNotification": logs.answer_log_status_notification,
    "SignedFirmwareStatusNotification": signed_firmware.answer_signed_firmware_status_notification,
}
