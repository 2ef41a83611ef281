"""How a transaction's end applies to a ChargePoint's state, from the event that records it.

A transaction ends by its StopTransaction (TransactionStopped), by an
operator (TransactionEndedByOperator, operator_end.py) or as stale
(TransactionEndedAsStale, stale_sessions.py). These run inside the
aggregate's @event methods, so on every replay: they only apply what the
event carries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain import charging, state_shapes, transactions
from domain.operator_end import ended, is_late_stop, settled_late

Payload = dict[str, Any]


def apply_stop(aggregate: Any, request: Payload, energy_wh: int | None, flags: list[str]) -> None:
    """A StopTransaction: the open transaction stops; one ended without it is settled (its late stop)."""
    transaction_id = request["transactionId"]
    started = aggregate.open_transactions.pop(transaction_id, None)
    if started is not None:
        stopped = state_shapes.stopped_transaction(started, request, energy_wh, flags)
        aggregate.recent_transactions = transactions.kept_after_stop(aggregate.recent_transactions, stopped)
        aggregate.connectors = transactions.connectors_at_stop(aggregate.connectors, started)
    elif is_late_stop(flags):
        aggregate.recent_transactions = settled_late(aggregate.recent_transactions, transaction_id)
    # OCPP 1.6 section 3.13.1: a TxProfile ends with its transaction.
    connector = started["connectorId"] if started else None
    aggregate.charging_profiles = charging.drop_transaction_profiles(aggregate.charging_profiles, transaction_id,
                                                                     connector)


def apply_end(aggregate: Any, transaction_id: int, flag: str, reason: str, ended_at: datetime,
              meter_stop: int | None) -> None:
    """An end without a StopTransaction, flagged ``flag``: the open transaction ends with what is known."""
    started = aggregate.open_transactions.pop(transaction_id)
    aggregate.recent_transactions = transactions.kept_after_stop(
        aggregate.recent_transactions, ended(started, reason, ended_at, meter_stop, flag))
    aggregate.connectors = transactions.connectors_at_stop(aggregate.connectors, started)
    # OCPP 1.6 section 3.13.1: a TxProfile ends with its transaction.
    aggregate.charging_profiles = charging.drop_transaction_profiles(aggregate.charging_profiles, transaction_id,
                                                                     started["connectorId"])
