"""What the central system learns from the replies to its own calls.

Each function runs inside the CallAnswered event, so it must depend on the
event alone (request and reply), never on the clock or anything outside.
Configuration keys are CiString50 (OCPP 1.6 section 9): matched without
regard to case, and a secret key's value is never kept. The charge point is
known here only as the state replies teach (``Learner``): this module does
not import the aggregate.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from domain.charging import clear_profiles, install_profile
from domain.idtags import tag_key
from domain.redaction import HIDDEN, is_secret
from domain.state_shapes import ConfigurationEntry, Connector, InstalledProfile, WaitingProfile, new_connector

Payload = dict[str, Any]


class Learner(Protocol):
    """The state of a charge point that replies teach (ChargePoint's attributes of the same names)."""

    configuration: dict[str, ConfigurationEntry]
    availability: dict[int, str]
    connectors: dict[int, Connector]
    charging_profiles: list[InstalledProfile]
    remote_start_profiles: dict[str, WaitingProfile]
    command_outcomes: dict[str, Payload]


def learn(cp: Learner, action: str, request: Payload, reply: Payload) -> None:
    """What the answer `reply` to the call `action` teaches, learned (most answers teach nothing)."""
    learned = LEARNED_FROM_REPLIES.get(action)
    if learned is not None:
        learned(cp, request, reply)


def command_outcomes(cp: Learner) -> dict[str, Payload]:
    """The latest answer to each command whose effect the charge point keeps, by action."""
    return cp.command_outcomes


def _known_key(cp: Learner, key: str) -> str:
    """The spelling under which the configuration already holds ``key``, else ``key``."""
    wanted = key.lower()
    for known in cp.configuration:
        if known.lower() == wanted:
            return known
    return key


def _shown(key: str, value: str | None) -> str | None:
    return HIDDEN if value is not None and is_secret(key) else value


def _learn_configuration(cp: Learner, request: Payload, reply: Payload) -> None:
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


def _learn_changed_configuration(cp: Learner, request: Payload, reply: Payload) -> None:
    if reply["status"] in ("Accepted", "RebootRequired"):
        key = _known_key(cp, request["key"])
        # A key not reported before is known by its value alone.
        previous = cp.configuration.get(key, {"value": None})
        cp.configuration[key] = {**previous, "value": _shown(key, request["value"]), "status": reply["status"]}


def _learn_availability(cp: Learner, request: Payload, reply: Payload) -> None:
    # Scheduled: the change happens once the transaction in progress ends.
    if reply["status"] in ("Accepted", "Scheduled"):
        cp.availability[request["connectorId"]] = request["type"]


def _learn_unlock(cp: Learner, request: Payload, reply: Payload) -> None:
    cp.connectors.setdefault(request["connectorId"], new_connector())["unlockStatus"] = reply["status"]


def _learn_charging_profile(cp: Learner, request: Payload, reply: Payload) -> None:
    # The CSMS checked the profile before sending it (ChargePoint.prepare_call).
    if reply["status"] == "Accepted":
        cp.charging_profiles = install_profile(cp.charging_profiles, request["connectorId"],
                                               request["csChargingProfiles"])


def _learn_cleared_profiles(cp: Learner, request: Payload, reply: Payload) -> None:
    if reply["status"] == "Accepted":
        cp.charging_profiles, _ = clear_profiles(
            cp.charging_profiles,
            id=request.get("id"),
            connector_id=request.get("connectorId"),
            purpose=request.get("chargingProfilePurpose"),
            stack_level=request.get("stackLevel"),
        )


def _learn_remote_start(cp: Learner, request: Payload, reply: Payload) -> None:
    # OCPP 1.6 section 5.11: the profile becomes the TxProfile of the transaction
    # this start begins; StartTransaction picks it up by idTag (and connector).
    if reply["status"] == "Accepted" and "chargingProfile" in request:
        cp.remote_start_profiles[tag_key(request["idTag"])] = {
            "connectorId": request.get("connectorId"),
            "chargingProfile": request["chargingProfile"],
        }


def _outcome(action: str, request_fields: tuple[str, ...]) -> Callable[[Learner, Payload, Payload], None]:
    """Keeps the answer to ``action`` with the request fields that say what was asked."""

    def learn(cp: Learner, request: Payload, reply: Payload) -> None:
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

LEARNED_FROM_REPLIES: dict[str, Callable[[Learner, Payload, Payload], None]] = {
    "GetConfiguration": _learn_configuration,
    "ChangeConfiguration": _learn_changed_configuration,
    "ChangeAvailability": _learn_availability,
    "UnlockConnector": _learn_unlock,
    "SetChargingProfile": _learn_charging_profile,
    "ClearChargingProfile": _learn_cleared_profiles,
    "RemoteStartTransaction": _learn_remote_start,
    **{action: _outcome(action, fields) for action, fields in OUTCOME_FIELDS.items()},
}
