"""Charging profiles and the composite schedule (OCPP 1.6 section 3.13).

Profiles are the plain dicts of OCPP 1.6 JSON payloads (csChargingProfiles);
the installed set is a list of {"connectorId": int, "chargingProfile": dict}
entries. Every function here is pure: the current time, when needed, is an
argument, and inputs are never modified.
"""

from __future__ import annotations

import copy
import math
from bisect import bisect_right
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeGuard

from domain.timestamps import format_ocpp_time, parse_ocpp_time

Profile = dict[str, Any]
Entry = dict[str, Any]

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


def composite_schedule(
    installed: list[Entry],
    connector_id: int,
    start: datetime,
    duration: int,
    charging_rate_unit: str | None,
    transaction_start: datetime | None,
    transaction_id: int | None,
    voltage: float = 230.0,
    phases: int = 3,
) -> dict[str, Any]:
    """The limits the charge point will apply from `start` for `duration` seconds.

    Shaped like GetCompositeSchedule.conf, with one addition: where no profile
    is in force the period's limit is None (no limit), so that the periods
    always tile [0, duration). No profile in force at all gives [] periods.
    For connectorId 0 the composite is the ChargePointMaxProfile alone.
    `installed` is assumed to hold only profiles validate_profile accepted.
    """
    if duration < 0:
        raise ValueError("duration must be 0 or more")
    if charging_rate_unit is not None and charging_rate_unit not in UNITS:
        raise ValueError(f"chargingRateUnit must be A or W, not {charging_rate_unit!r}")
    start = _as_utc(start)
    window = _Window(start, duration)
    anchor = _as_utc(transaction_start) if transaction_start is not None else start

    layers: dict[str, list[_Layer]] = {role: [] for role in ROLES}
    for order, entry in enumerate(installed):
        role = _role(entry, connector_id, transaction_id)
        if role is not None:
            layers[role].append(_layer(entry["chargingProfile"], order, window, anchor))
    caps, tx = layers["cap"], layers["tx"]
    connector_defaults, shared_defaults = (
        layers["connector_default"],
        layers["shared_default"],
    )

    in_force = [layer for group in layers.values() for layer in group if layer.spans]
    if not in_force:
        unit = charging_rate_unit or "A"
        return _composite(connector_id, start, duration, unit, [])
    unit = charging_rate_unit or _common_unit(in_force)

    periods: list[dict[str, Any]] = []
    for begin in _boundaries(in_force, duration):
        # TxProfile overrides TxDefaultProfile, a connector's own default
        # overrides connector 0's (3.13.2); the cap then bounds what is left.
        limit = _top(tx, begin)
        if limit is None:
            limit = _top(connector_defaults, begin)
        if limit is None:
            limit = _top(shared_defaults, begin)
        cap = _top(caps, begin)
        chosen = _lower(_in_unit(limit, unit, voltage, phases), _in_unit(cap, unit, voltage, phases))
        period: dict[str, Any] = {
            "startPeriod": begin,
            "limit": chosen.value if chosen else None,
        }
        if chosen is not None and chosen.number_phases is not None:
            period["numberPhases"] = chosen.number_phases
        if periods and _same_limit(periods[-1], period):
            continue
        periods.append(period)
    return _composite(connector_id, start, duration, unit, periods)


# --- validation ------------------------------------------------------------


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


# --- composite schedule --------------------------------------------------------


class _Limit(NamedTuple):
    value: float
    unit: str
    number_phases: int | None


class _Span(NamedTuple):
    """A stretch, in whole seconds from the window's start, with one limit."""

    begin: int
    end: int
    limit: _Limit


class _Layer(NamedTuple):
    """One profile's spans in the window; `rank` orders profiles of one purpose."""

    rank: tuple[int, int]
    spans: list[_Span]
    begins: list[int]
    unit: str


class _Window(NamedTuple):
    start: datetime
    duration: int

    def offset(self, moment: datetime) -> int:
        # OCPP counts periods in whole seconds; an instant between two seconds
        # takes effect at the next one. Integer arithmetic keeps this exact.
        delta = moment - self.start
        return delta.days * 86_400 + delta.seconds + (1 if delta.microseconds else 0)


def _role(entry: Entry, connector_id: int, transaction_id: int | None) -> str | None:
    """Which of the composite's inputs an installed profile feeds, if any."""
    profile = entry["chargingProfile"]
    purpose = profile["chargingProfilePurpose"]
    on = entry["connectorId"]
    if purpose == CHARGE_POINT_MAX:
        return "cap" if on == 0 else None
    if connector_id == 0:
        # Connector 0's TxDefaultProfile is a default for each connector, not
        # a limit on the grid connection, so only the cap counts for it.
        return None
    if purpose == TX:
        return "tx" if on == connector_id and _for_transaction(profile, transaction_id) else None
    if on == connector_id:
        return "connector_default"
    return "shared_default" if on == 0 else None


def _for_transaction(profile: Profile, transaction_id: int | None) -> bool:
    # Without a transaction there is nothing for a TxProfile to apply to; one
    # that names a transaction applies to that transaction only.
    if transaction_id is None:
        return False
    return profile.get("transactionId") in (None, transaction_id)


def _layer(profile: Profile, order: int, window: _Window, transaction_start: datetime) -> _Layer:
    schedule = profile["chargingSchedule"]
    unit = schedule["chargingRateUnit"]
    valid_from = _optional_offset(window, profile.get("validFrom"))
    valid_to = _optional_offset(window, profile.get("validTo"))
    low = max(0, valid_from) if valid_from is not None else 0
    high = min(window.duration, valid_to) if valid_to is not None else window.duration

    kind = profile["chargingProfileKind"]
    spans: list[_Span] = []
    if kind == "Recurring":
        every = RECURRENCE_SECONDS[profile["recurrencyKind"]]
        first = window.offset(parse_ocpp_time(schedule["startSchedule"]))
        # Choice: the schedule recurs from startSchedule onwards, not before it.
        occurrence = max(0, -first // every)
        while first + occurrence * every < high:
            begin = first + occurrence * every
            spans += _occurrence(schedule, unit, begin, begin + every, low, high)
            occurrence += 1
    else:
        if kind == "Relative":
            # 3.13.1: relative to the start of the transaction (or of the window).
            begin = window.offset(transaction_start)
        elif "startSchedule" in schedule:
            begin = window.offset(parse_ocpp_time(schedule["startSchedule"]))
        else:
            begin = window.offset(parse_ocpp_time(profile["validFrom"]))
        spans = _occurrence(schedule, unit, begin, None, low, high)
    # Ties of stackLevel (which install_profile prevents) go to the later entry.
    return _Layer((profile["stackLevel"], order), spans, [span.begin for span in spans], unit)


def _occurrence(
    schedule: dict[str, Any],
    unit: str,
    begin: int,
    cut: int | None,
    low: int,
    high: int,
) -> list[_Span]:
    """Spans of one run of `schedule` from `begin`, clipped to [low, high)."""
    end = begin + schedule["duration"] if schedule.get("duration") is not None else high
    if cut is not None:
        end = min(end, cut)
    end = min(end, high)
    periods = schedule["chargingSchedulePeriod"]
    spans: list[_Span] = []
    for index, period in enumerate(periods):
        period_begin = max(begin + period["startPeriod"], low)
        period_end = begin + periods[index + 1]["startPeriod"] if index + 1 < len(periods) else end
        period_end = min(period_end, end)
        if period_begin < period_end:
            limit = _Limit(period["limit"], unit, period.get("numberPhases"))
            spans.append(_Span(period_begin, period_end, limit))
    return spans


def _boundaries(layers: Iterable[_Layer], duration: int) -> list[int]:
    points = {0}
    for layer in layers:
        for span in layer.spans:
            points.update((span.begin, span.end))
    return sorted(point for point in points if 0 <= point < duration)


def _top(layers: list[_Layer], moment: int) -> _Limit | None:
    """The limit of the highest-ranked layer in force at `moment`."""
    best: tuple[tuple[int, int], _Limit] | None = None
    for layer in layers:
        index = bisect_right(layer.begins, moment) - 1
        if index < 0 or layer.spans[index].end <= moment:
            continue
        if best is None or layer.rank > best[0]:
            best = (layer.rank, layer.spans[index].limit)
    return best[1] if best else None


def _in_unit(limit: _Limit | None, unit: str, voltage: float, phases: int) -> _Limit | None:
    if limit is None or limit.unit == unit:
        return limit
    # W = A x V x phases; a period without numberPhases is taken as `phases`.
    factor = voltage * (limit.number_phases or phases)
    value = limit.value * factor if unit == "W" else limit.value / factor
    # Rounded down to OCPP's one decimal so a converted cap is never exceeded;
    # the tiny addend stops 2.3 becoming 2.2 through binary rounding.
    return _Limit(math.floor(value * 10 + 1e-9) / 10, unit, limit.number_phases)


def _lower(limit: _Limit | None, cap: _Limit | None) -> _Limit | None:
    if limit is None:
        return cap
    if cap is None or limit.value <= cap.value:
        return limit
    return cap


def _same_limit(previous: dict[str, Any], period: dict[str, Any]) -> bool:
    return bool(previous["limit"] == period["limit"] and previous.get("numberPhases") == period.get("numberPhases"))


def _common_unit(layers: list[_Layer]) -> str:
    # Choice: with no unit asked for, answer in the profiles' own unit when
    # they agree, else in amperes.
    units = {layer.unit for layer in layers}
    return units.pop() if len(units) == 1 else "A"


def _composite(
    connector_id: int,
    start: datetime,
    duration: int,
    unit: str,
    periods: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "connectorId": connector_id,
        "scheduleStart": format_ocpp_time(start),
        "chargingSchedule": {
            "duration": duration,
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": periods,
        },
    }


def _optional_offset(window: _Window, value: str | None) -> int | None:
    return window.offset(parse_ocpp_time(value)) if value is not None else None


def _as_utc(moment: datetime) -> datetime:
    # OCPP date-times are UTC; a naive one is read as UTC rather than local time.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


__all__ = [
    "ProfileRejected",
    "clear_profiles",
    "composite_schedule",
    "drop_transaction_profiles",
    "install_profile",
    "validate_profile",
]
