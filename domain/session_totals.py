"""What a StopTransaction settles: the session's energy, its duration, and what looks odd.

Decided once, when the stop arrives (ChargePoint.answer_stop_transaction),
and carried by the TransactionStopped event (``energy_wh``,
``duration_seconds``, ``flags``), so billing reads it instead of working it
out again. A stop is never refused (OCPP 1.6 section 4.10); what looks odd
is flagged:

- ``unknown_transaction``: this charge point has no transaction with that id;
- ``repeated_stop``: the transaction was stopped before;
- ``stopped_after_operator_end``: the operator ended it first (operator_end.py);
  the stop's figures settle it;
- ``stopped_after_inferred_end``: the central system ended it as stale first
  (stale_sessions.py); the stop's figures settle it;
- ``meter_out_of_range``: a register beyond a signed 64-bit value (what
  uninitialised meters send) or an energy above MAX_SESSION_WH; energy 0;
- ``meter_went_backwards``: meterStop below meterStart; energy 0;
- ``stopped_before_started``: the stop's timestamp before the start's; duration 0.

Timestamps are the charge point's (offline sessions arrive late); energy is Wh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

from domain.operator_end import late_stop_flag
from domain.state_shapes import Transaction
from domain.timestamps import parse_ocpp_time

Payload = dict[str, Any]

# More than any vehicle takes in one session by orders of magnitude: a meter
# reporting this is broken, and its sum must not overflow daily totals.
MAX_SESSION_WH = 10**9
# Meter registers beyond a signed 64-bit value are no meter's reading.
LOWEST_REGISTER, HIGHEST_REGISTER = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class SessionTotals:
    """What ending a session settles."""

    energy_wh: int
    duration_seconds: int
    flags: list[str]


@dataclass(frozen=True)
class StopTotals:
    """What a TransactionStopped carries: no energy or duration when it ended no session."""

    energy_wh: int | None
    duration_seconds: int | None
    flags: list[str]


def stop_totals(transaction: Transaction | None, still_open: bool, request: Payload) -> StopTotals:
    """The totals of the StopTransaction ``request`` for ``transaction``, as this charge point knows it.

    ``transaction`` is the one with the stop's transactionId (open or recently
    stopped), None when there is none.
    """
    if transaction is None:
        return StopTotals(None, None, ["unknown_transaction"])
    late = late_stop_flag(transaction["flags"]) if not still_open else None
    if not still_open and late is None:
        return StopTotals(None, None, ["repeated_stop"])
    ended = session_totals(
        transaction["meterStart"],
        request["meterStop"],
        parse_ocpp_time(transaction["startTimestamp"]),
        parse_ocpp_time(request["timestamp"]),
    )
    # A stop after the transaction was ended without one settles it with its own figures.
    flags = ended.flags + ([late] if late is not None else [])
    return StopTotals(ended.energy_wh, ended.duration_seconds, flags)


def session_totals(meter_start: int | None, meter_stop: int | None,
                   started_at: datetime, stopped_at: datetime) -> SessionTotals:
    """Energy, duration and flags of a session from its registers and times.

    A register given as None is one nothing could read (how a read model
    keeps a value beyond 64 bits).
    """
    flags = []
    energy_wh = meter_stop - meter_start if _readable(meter_start) and _readable(meter_stop) else None
    if energy_wh is None or energy_wh > MAX_SESSION_WH:
        flags.append("meter_out_of_range")
        energy_wh = 0
    elif energy_wh < 0:
        flags.append("meter_went_backwards")
        energy_wh = 0
    duration_seconds = int((stopped_at - started_at).total_seconds())
    if duration_seconds < 0:
        flags.append("stopped_before_started")
        duration_seconds = 0
    return SessionTotals(energy_wh, duration_seconds, flags)


def carried_by(stopped: Any) -> SessionTotals | None:
    """The totals a TransactionStopped event carries.

    None when it carries none: a stop that ended no session, or one stored
    before events carried a duration (class_version 1), whose reader works
    them out with session_totals from the start as it holds it.
    """
    if stopped.duration_seconds is None or stopped.energy_wh is None:
        return None
    return SessionTotals(stopped.energy_wh, stopped.duration_seconds, list(stopped.flags))


def _readable(register: int | None) -> TypeGuard[int]:
    return isinstance(register, int) and LOWEST_REGISTER <= register <= HIGHEST_REGISTER
