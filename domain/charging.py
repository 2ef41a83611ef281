"""Charging profiles: which may be installed, and the installed set (OCPP 1.6 section 3.13).

Profiles are the plain dicts of OCPP 1.6 JSON payloads (csChargingProfiles);
the installed set is a list of {"connectorId": int, "chargingProfile": dict}
entries. Every function here is pure: the current time, when needed, is an
argument, and inputs are never modified.
"""

from __future__ import annotations

import copy
import math
from datetime import datetime
from typing import Any, TypeGuard

from domain.idtags import tag_key
from domain.state_shapes import InstalledProfile, Profile, WaitingProfile
from domain.timestamps import parse_ocpp_time

Entry = InstalledProfile  # one profile of the installed set

CHARGE_POINT_MAX = "ChargePointMaxProfile"
TX_DEFAULT = "TxDefaultProfile"
TX = "TxProfile"
PURPOSES = frozenset({CHARGE_POINT_MAX, TX_DEFAULT, TX})
KINDS = frozenset({"Absolute", "Recurring", "Relative"})
UNITS = frozenset({"A", "W"})
ROLES = ("cap", "tx", "connector_default", "shared_default")
# "Daily" and "Weekly" are fixed lengths of UTC time: a recurrence does not
# move with daylight saving, as the payload carries no time zone.
RECURRENCE_SECONDS = {"Daily": 86_400, "Weekly": 7 * 86_400}


class ProfileRejected(ValueError):
    """A charging profile that SetChargingProfile must not accept."""


def validate_profile(connector_id: int, profile: Profile, active_transaction_ids: dict[int, int]) -> None:
    """Raise ProfileRejected unless `profile` may be installed on `connector_id`.

    `active_transaction_ids` maps connectorId to the transaction running on it.
    The JSON schema is assumed to have checked types; this checks the rules.
    """
    if not _is_int(connector_id) or connector_id < 0:
        raise ProfileRejected(f"connectorId must be 0 or more, not {connector_id!r}")
    if not _is_int(profile.get("chargingProfileId")):
        raise ProfileRejected("chargingProfileId must be an integer")
    stack_level = profile.get("stackLevel")
    if not _is_int(stack_level) or stack_level < 0:
        raise ProfileRejected(f"stackLevel must be 0 or more, not {stack_level!r}")

    purpose = profile.get("chargingProfilePurpose")
    if purpose not in PURPOSES:
        raise ProfileRejected(f"unknown chargingProfilePurpose {purpose!r}")
    _check_purpose(connector_id, profile, purpose, active_transaction_ids)

    kind = profile.get("chargingProfileKind")
    if kind not in KINDS:
        raise ProfileRejected(f"unknown chargingProfileKind {kind!r}")
    schedule = profile.get("chargingSchedule")
    if not isinstance(schedule, dict):
        raise ProfileRejected("chargingSchedule is missing")
    if kind == "Recurring":
        if profile.get("recurrencyKind") not in RECURRENCE_SECONDS:
            raise ProfileRejected("a Recurring profile needs recurrencyKind Daily or Weekly")
        # The recurrence needs an anchor to repeat from (3.13.1).
        if "startSchedule" not in schedule:
            raise ProfileRejected("a Recurring profile needs chargingSchedule.startSchedule")
    if kind == "Absolute" and "startSchedule" not in schedule and "validFrom" not in profile:
        # Choice: an Absolute schedule without startSchedule starts at validFrom;
        # with neither, its start would depend on when the charge point got it,
        # which the Central System cannot know, so it is refused.
        raise ProfileRejected("an Absolute profile needs startSchedule or validFrom")

    valid_from = _parse_field(profile, "validFrom")
    valid_to = _parse_field(profile, "validTo")
    if valid_from is not None and valid_to is not None and valid_to <= valid_from:
        raise ProfileRejected("validTo must be after validFrom")
    _parse_field(schedule, "startSchedule")
    _check_schedule(schedule)


def install_profile(installed: list[Entry], connector_id: int, profile: Profile) -> list[Entry]:
    """Return the installed entries after SetChargingProfile of `profile`.

    Call validate_profile first; this only applies the replacement rules.
    """
    # OCPP 1.6 3.13.2: the same chargingProfileId (on any connector), or the
    # same stackLevel and purpose on the same connector, replaces the old one.
    profile_id = profile["chargingProfileId"]
    key = (connector_id, profile["stackLevel"], profile["chargingProfilePurpose"])
    remaining = [
        entry
        for entry in installed
        if entry["chargingProfile"]["chargingProfileId"] != profile_id and _stack_key(entry) != key
    ]
    # A copy, so the caller changing its payload later cannot change our state.
    return [
        *remaining,
        {"connectorId": connector_id, "chargingProfile": copy.deepcopy(profile)},
    ]


def drop_transaction_profiles(
    installed: list[Entry], transaction_id: int, connector_id: int | None = None
) -> list[Entry]:
    """Return the installed entries without the TxProfiles of a stopped transaction.

    OCPP 1.6 3.13.1: a TxProfile lives only as long as its transaction. A
    TxProfile sent without transactionId belongs to whatever transaction ran on
    its connector, so pass `connector_id` to drop those too.
    """

    def belongs(entry: Entry) -> bool:
        profile = entry["chargingProfile"]
        if profile["chargingProfilePurpose"] != TX:
            return False
        return bool(profile.get("transactionId") == transaction_id or entry["connectorId"] == connector_id)

    return [entry for entry in installed if not belongs(entry)]


def set_profile_refusal(request: dict[str, Any], active_transaction_ids: dict[int, int]) -> str | None:
    """Why the SetChargingProfile `request` must not be sent, or None (see validate_profile)."""
    try:
        validate_profile(request["connectorId"], request["csChargingProfiles"], active_transaction_ids)
    except ProfileRejected as rejected:
        return str(rejected)
    return None


def remote_start_refusal(request: dict[str, Any]) -> str | None:
    """Why the RemoteStartTransaction `request` must not be sent, or None: its chargingProfile, if any,
    must be the TxProfile of the transaction it starts, which has no id yet (OCPP 1.6 section 5.11)."""
    profile = request.get("chargingProfile")
    if profile is None:
        return None
    if profile.get("chargingProfilePurpose") != TX:
        return "the chargingProfile of RemoteStartTransaction must be a TxProfile"
    if "transactionId" in profile:
        return "the chargingProfile of RemoteStartTransaction cannot name a transactionId: it has none yet"
    connector_id = request.get("connectorId", 1)  # the charge point picks one; any above 0 checks the same
    # The transaction this profile is for is the one about to start.
    return set_profile_refusal({"connectorId": connector_id, "csChargingProfiles": profile}, {connector_id: 0})


def started_with_remote_profile(
    waiting: dict[str, WaitingProfile], installed: list[Entry], request: dict[str, Any], transaction_id: int
) -> tuple[dict[str, WaitingProfile], list[Entry]]:
    """(the profiles still waiting, the installed set) once the StartTransaction `request` began `transaction_id`.

    OCPP 1.6 section 5.11: the profile of an accepted RemoteStartTransaction
    waits, by idTag key, for the transaction that start begins, on the
    connector it named (or any, when it named none); then it is that
    transaction's TxProfile.
    """
    key = tag_key(request["idTag"])
    taken = waiting.get(key)
    if taken is None or taken["connectorId"] not in (None, request["connectorId"]):
        return waiting, installed
    remaining = {other: profile for other, profile in waiting.items() if other != key}
    tx_profile = dict(taken["chargingProfile"], transactionId=transaction_id)
    return remaining, install_profile(installed, request["connectorId"], tx_profile)


def clear_profiles(
    installed: list[Entry],
    *,
    id: int | None = None,  # OCPP's own field name
    connector_id: int | None = None,
    purpose: str | None = None,
    stack_level: int | None = None,
) -> tuple[list[Entry], list[Entry]]:
    """Apply ClearChargingProfile; return (remaining, removed) entries.

    OCPP 1.6 5.5 / 6.16: `id` alone selects one profile and the other criteria
    are ignored; otherwise every criterion given must match; none clears all.
    """
    remaining: list[Entry] = []
    removed: list[Entry] = []
    for entry in installed:
        matches = _clear_matches(entry, id, connector_id, purpose, stack_level)
        (removed if matches else remaining).append(entry)
    return remaining, removed




def _check_purpose(
    connector_id: int,
    profile: Profile,
    purpose: str,
    active_transaction_ids: dict[int, int],
) -> None:
    transaction_id = profile.get("transactionId")
    if purpose == CHARGE_POINT_MAX and connector_id != 0:
        raise ProfileRejected("a ChargePointMaxProfile can only be set on connector 0")
    if purpose != TX:
        # 1.6 csChargingProfiles: transactionId is only valid for a TxProfile.
        if transaction_id is not None:
            raise ProfileRejected(f"transactionId is only allowed on a TxProfile, not {purpose}")
        return
    if connector_id == 0:
        raise ProfileRejected("a TxProfile needs a connector above 0")
    active = active_transaction_ids.get(connector_id)
    if active is None:
        raise ProfileRejected(f"a TxProfile needs a transaction, and connector {connector_id} has none")
    if transaction_id is not None and transaction_id != active:
        raise ProfileRejected(
            f"transactionId {transaction_id} is not the transaction on connector {connector_id} ({active})"
        )


def _check_schedule(schedule: dict[str, Any]) -> None:
    if schedule.get("chargingRateUnit") not in UNITS:
        raise ProfileRejected("chargingRateUnit must be A or W")
    duration = schedule.get("duration")
    if duration is not None and (not _is_int(duration) or duration < 0):
        raise ProfileRejected(f"duration must be 0 or more seconds, not {duration!r}")
    min_rate = schedule.get("minChargingRate")
    if min_rate is not None and (not _is_number(min_rate) or min_rate < 0):
        raise ProfileRejected(f"minChargingRate must not be negative, not {min_rate!r}")
    periods = schedule.get("chargingSchedulePeriod")
    if not isinstance(periods, list) or not periods:
        raise ProfileRejected("chargingSchedulePeriod needs at least one period")
    previous: int | None = None
    for period in periods:
        start = period.get("startPeriod")
        if not _is_int(start):
            raise ProfileRejected(f"startPeriod must be whole seconds, not {start!r}")
        if previous is None and start != 0:
            raise ProfileRejected("the first period must have startPeriod 0")
        if previous is not None and start <= previous:
            raise ProfileRejected("chargingSchedulePeriod must be strictly ascending by startPeriod")
        previous = start
        limit = period.get("limit")
        if not _is_number(limit) or limit < 0:
            raise ProfileRejected(f"limit must not be negative, not {limit!r}")
        number_phases = period.get("numberPhases")
        if number_phases is not None and number_phases not in (1, 2, 3):
            raise ProfileRejected(f"numberPhases must be 1, 2 or 3, not {number_phases!r}")


def _parse_field(container: dict[str, Any], field: str) -> datetime | None:
    value = container.get(field)
    if value is None:
        return None
    try:
        return parse_ocpp_time(value)
    except (TypeError, ValueError):
        raise ProfileRejected(f"{field} is not an ISO 8601 date-time: {value!r}") from None


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- installed set -----------------------------------------------------------


def _stack_key(entry: Entry) -> tuple[int, int, str]:
    profile = entry["chargingProfile"]
    return (
        entry["connectorId"],
        profile["stackLevel"],
        profile["chargingProfilePurpose"],
    )


def _clear_matches(
    entry: Entry,
    profile_id: int | None,
    connector_id: int | None,
    purpose: str | None,
    stack_level: int | None,
) -> bool:
    profile = entry["chargingProfile"]
    if profile_id is not None:
        return bool(profile["chargingProfileId"] == profile_id)
    return (
        (connector_id is None or entry["connectorId"] == connector_id)
        and (purpose is None or profile["chargingProfilePurpose"] == purpose)
        and (stack_level is None or profile["stackLevel"] == stack_level)
    )


__all__ = [
    "ProfileRejected",
    "clear_profiles",
    "drop_transaction_profiles",
    "install_profile",
    "remote_start_refusal",
    "set_profile_refusal",
    "started_with_remote_profile",
    "validate_profile",
]
