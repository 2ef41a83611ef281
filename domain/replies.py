"""What the central system learns from the replies to its own calls.

Each function runs inside the CallAnswered event, so it must depend on the
event alone (request and reply), never on the clock or anything outside.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from domain.chargepoint import ChargePoint

Payload = dict[str, Any]


def _learn_configuration(cp: ChargePoint, request: Payload, reply: Payload) -> None:
    for entry in reply.get("configurationKey", []):
        cp.configuration[entry["key"]] = {
            "value": entry.get("value"),
            "readonly": entry.get("readonly", False),
        }


def _learn_changed_configuration(cp: ChargePoint, request: Payload, reply: Payload) -> None:
    if reply.get("status") in ("Accepted", "RebootRequired"):
        key = request["key"]
        previous = cp.configuration.get(key, {})
        # The request was redacted before it was recorded: no secret lands here.
        cp.configuration[key] = dict(previous, value=request["value"], status=reply["status"])


def _learn_availability(cp: ChargePoint, request: Payload, reply: Payload) -> None:
    if reply.get("status") in ("Accepted", "Scheduled"):
        cp.availability[request["connectorId"]] = request["type"]


def _learn_local_list_version(cp: ChargePoint, request: Payload, reply: Payload) -> None:
    cp.local_list_version = reply.get("listVersion")


def _learn_sent_local_list(cp: ChargePoint, request: Payload, reply: Payload) -> None:
    # Failed, NotSupported and VersionMismatch leave the known version as it was.
    if reply.get("status") == "Accepted":
        cp.local_list_version = request["listVersion"]


LEARNED_FROM_REPLIES: dict[str, Callable[[ChargePoint, Payload, Payload], None]] = {
    "GetConfiguration": _learn_configuration,
    "ChangeConfiguration": _learn_changed_configuration,
    "ChangeAvailability": _learn_availability,
    "GetLocalListVersion": _learn_local_list_version,
    "SendLocalList": _learn_sent_local_list,
}
