"""An operator ends a stale transaction: one whose StopTransaction never came.

No OCPP call is made: the central system records that the operator ended it,
with the operator's reason and time and, as its meterStop, the last energy
register a MeterValues reported for it (None when none did). The transaction
is no longer open; a StopTransaction that arrives for it later is still
answered (OCPP 1.6 section 4.10), and its figures settle the session in place
of the inferred ones: the stop is flagged ``stopped_after_operator_end``.

The central system ends a stale transaction itself the same way, flagged
``ended_as_stale`` or ``ended_by_restart`` (stale_sessions.py); a late stop
for one of those is flagged ``stopped_after_inferred_end``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from domain.state_shapes import StoppedTransaction, Transaction
from domain.timestamps import format_ocpp_time

ENDED_BY_OPERATOR = "ended_by_operator"
STOPPED_AFTER_OPERATOR_END = "stopped_after_operator_end"
ENDED_AS_STALE = "ended_as_stale"  # a new StartTransaction on its connector (stale_sessions.py)
ENDED_BY_RESTART = "ended_by_restart"  # the charge point restarted, then reported its connector Available
STOPPED_AFTER_INFERRED_END = "stopped_after_inferred_end"
# How a transaction was ended without a StopTransaction -> the flag of a StopTransaction that comes later.
LATE_STOP_FLAGS = {
    ENDED_BY_OPERATOR: STOPPED_AFTER_OPERATOR_END,
    ENDED_AS_STALE: STOPPED_AFTER_INFERRED_END,
    ENDED_BY_RESTART: STOPPED_AFTER_INFERRED_END,
}
MAX_REASON_LENGTH = 255


class TransactionNotOpen(ValueError):
    """The charge point has no open transaction with that id: never started, or ended already."""


class ReasonRejected(ValueError):
    """An operator's reason that cannot be recorded."""


def check_reason(reason: object) -> str:
    """The operator's reason, as it will be recorded; raises ReasonRejected."""
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_LENGTH:
        raise ReasonRejected(f"reason must be a non-empty string of at most {MAX_REASON_LENGTH} characters")
    return reason


def still_open(open_transactions: dict[int, Transaction], transaction_id: int, reason: str) -> Transaction:
    """The open transaction the operator may end; raises ReasonRejected or TransactionNotOpen."""
    check_reason(reason)
    if transaction_id not in open_transactions:
        raise TransactionNotOpen(f"transaction {transaction_id} is not open; it has ended already")
    return open_transactions[transaction_id]


def last_meter_value(transaction: Transaction) -> int | None:
    """The transaction's last known energy register in Wh, if a MeterValues reported one."""
    last = transaction.get("lastEnergyWh")
    return int(last) if last is not None else None


def ended(started: Transaction, reason: str, ended_at: datetime, meter_stop: int | None,
          flag: str = ENDED_BY_OPERATOR) -> StoppedTransaction:
    """The transaction ``started`` as the operator (or, per ``flag``, the central system) ended it."""
    energy = meter_stop - started["meterStart"] if meter_stop is not None else None
    return {
        **started,
        "meterStop": meter_stop,  # type: ignore[typeddict-item]  # None: no meter value was ever reported
        "stopTimestamp": format_ocpp_time(ended_at),
        "stopReason": reason,
        "energyWh": energy if energy is None or energy >= 0 else 0,
        "flags": started["flags"] + [flag],
    }



def late_stop_flag(flags: Sequence[str]) -> str | None:
    """The flag a StopTransaction gets that settles a transaction with these flags: None when none awaits one.

    One awaits it when it was ended without a StopTransaction and none has settled it since.
    """
    late = next((LATE_STOP_FLAGS[flag] for flag in flags if flag in LATE_STOP_FLAGS), None)
    return late if late is not None and late not in flags else None


def awaits_late_stop(transaction: StoppedTransaction | Transaction) -> bool:
    """Whether this transaction was ended without a StopTransaction and none has settled it since."""
    return late_stop_flag(transaction["flags"]) is not None


def is_late_stop(flags: Sequence[str]) -> bool:
    """Whether a TransactionStopped with these flags settled a transaction ended without one."""
    return any(flag in LATE_STOP_FLAGS.values() for flag in flags)


def settled_late(recent: list[StoppedTransaction], transaction_id: int) -> list[StoppedTransaction]:
    """The recently stopped transactions once a late StopTransaction settled the one ended without it."""
    return [
        {**stopped, "flags": stopped["flags"] + [late_stop_flag(stopped["flags"]) or STOPPED_AFTER_OPERATOR_END]}
        if stopped["transactionId"] == transaction_id and awaits_late_stop(stopped) else stopped
        for stopped in recent
    ]
