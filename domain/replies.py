"""What the central system learns from the replies to its own calls.

Each function runs inside the CallAnswered event, so it must depend on the
event alone (request and reply), never on the clock or anything outside.
Configuration keys are CiString50 (OCPP 1.6 section 9): matched without
regard to case, and a secret key's value is never kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from domain.charging import clear_profiles, install_profile
from domain.idtags import tag_key
from domain.redaction import HIDDEN, is_secret

if TYPE_CHECKING:
    from domain.chargepoint import ChargePoint

Payload = dict[str, Any]



def command_outcomes(cp: ChargePoint) -> dict[str, Payload]:
    """The latest answer to each command whose effect the charge point keeps, by action."""
    return cp.command_outcomes


def _known_key(cp: ChargePoint, key: str) -> str:
    """The spelling under which the configuration already holds ``key``, else ``key``."""
    wanted = key.lower()
    for known in cp.configuration:
        if known.lower() == wanted:
            return known
    return key


def _shown(key: str, value: str | None) -> str | None:
    return HIDDEN if value is not None and is_secret(key) else value


def _learn_configuration(cp: ChargePoint, request: Payload, reply: Payload) -> None:
    for entry in reply.get("configurationKey", []):
        key = entry["key"]
        # The charge point's own spelling of a key wins over ours.
        cp.configuration.pop(_known_key(cp, key), None)
        cp.configuration[key] = {
            "value": _shown(key, entry.get("value")),
            "readonly": entry.get("readonly", False),
        }
    for key in reply.get("unknownKey", []):
        cp.configuration.pop(_known_key(cp, key), None)


def _learn_changed_configuration(cp: ChargePoint, request: Payload, reply: Payload) -> None:
    if reply["status"] in ("Accepted", "RebootRequired"):
        key = _known_key(cp, request["key"])
        # A key not reported before is known by its value alone.
        previous = cp.configuration.get(key, {"value": None})
        cp.configuration[key] = {**previous, "value": _shown(key, request["value"]), "status": reply["status"]}


def _learn_availability(cp: ChargePoint, request: Payload, reply: Payload) -> None:
    # Scheduled: the change happens once the transaction in progress ends.
    if reply["status"] in ("Accepted", "Scheduled"):
        cp.availability[request["connectorId"]] = request["type"]


def _learn_unlock(cp: ChargePoint, request: Payload, reply: Payload) -> None:
    cp.connector(request["connectorId"])["unlockStatus"] = reply["status"]


def _learn_charging_profile(cp: ChargePoint, request: Payload, reply: Payload) -> None:
    # The CSMS checked the profile before sending it (domain/outbound.py).
    if reply["status"] == "Accepted":
        cp.charging_profiles = install_profile(cp.charging_profiles, request["connectorId"],
                                               request["csChargingProfiles"])


def _learn_cleared_profiles(cp: ChargePoint, request: Payload, reply: Payload) -> None:
    if reply["status"] == "Accepted":
        cp.charging_profiles, _ = clear_profiles(
            cp.charging_profiles,
            id=request.get("id"),
            connector_id=request.get("connectorId"),
            purpose=request.get("chargingProfilePurpose"),
            stack_level=request.get("stackLevel"),
        )


def _learn_remote_start(cp: ChargePoint, request: Payload, reply: Payload) -> None:
    # OCPP 1.6 section 5.11: the profile becomes the TxProfile of the transaction
    # this start begins; StartTransaction picks it up by idTag (and connector).
    if reply["status"] == "Accepted" and "chargingProfile" in request:
        cp.remote_start_profiles[tag_key(request["idTag"])] = {
            "connectorId": request.get("connectorId"),
            "chargingProfile": request["chargingProfile"],
        }


def _outcome(action: str, request_fields: tuple[str, ...]) -> Callable[[ChargePoint, Payload, Payload], None]:
    """Keeps the answer to ``action`` with the request fields that say what was asked."""

    def learn(cp: ChargePoint, request: Payload, reply: Payload) -> None:
        asked = {name: request[name] for name in request_fields if name in request}
        cp.command_outcomes[action] = {**asked, **reply}

    return learn


# Commands whose answer is worth keeping as state, with the request fields kept beside it.
OUTCOME_FIELDS: dict[str, tuple[str, ...]] = {
    "Reset": ("type",),
    "ClearCache": (),
    "TriggerMessage": ("requestedMessage", "connectorId"),
    "GetDiagnostics": ("location", "startTime", "stopTime"),
    "UpdateFirmware": ("location", "retrieveDate"),
}

LEARNED_FROM_REPLIES: dict[str, Callable[[ChargePoint, Payload, Payload], None]] = {
    "GetConfiguration": _learn_configuration,
    "ChangeConfiguration": _learn_changed_configuration,
    "ChangeAvailability": _learn_availability,
    "UnlockConnector": _learn_unlock,
    "SetChargingProfile": _learn_charging_profile,
    "ClearChargingProfile": _learn_cleared_profiles,
    "RemoteStartTransaction": _learn_remote_start,
    **{action: _outcome(action, fields) for action, fields in OUTCOME_FIELDS.items()},
}
