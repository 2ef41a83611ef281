"""The composite schedule: what the installed charging profiles allow, moment by moment (OCPP 1.6 3.13).

Per purpose the highest stackLevel in force wins, TxProfile overrides
TxDefaultProfile, and ChargePointMaxProfile caps the result. Pure: the
start of the window is an argument.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from domain.charging import CHARGE_POINT_MAX, RECURRENCE_SECONDS, ROLES, TX, UNITS, Entry, Profile
from domain.state_shapes import Transaction
from domain.timestamps import format_ocpp_time, parse_ocpp_time


def connector_schedule(installed: list[Entry], connector_id: int, start: datetime, duration: int,
                       charging_rate_unit: str | None, running: Transaction | None) -> dict[str, Any]:
    """The composite schedule of a connector with the transaction ``running`` on it, if any."""
    # Relative profiles count from the start of the connector's transaction (3.13.1).
    transaction_start = parse_ocpp_time(running["startTimestamp"]) if running else None
    transaction_id = running["transactionId"] if running else None
    return composite_schedule(installed, connector_id, start, duration, charging_rate_unit, transaction_start,
                              transaction_id)


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


