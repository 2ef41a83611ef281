"""Stale sessions: a transaction whose StopTransaction never came, ended by what the charge point says next.

A charge point that lost a StopTransaction (a power cut, a full queue, a
replaced controller) would otherwise keep its transaction open for ever, and
its card locked out with ConcurrentTx. OCPP 1.6 runs at most one transaction
on a connector at a time, so the central system ends it itself:

- a StartTransaction on connector N (not a retry, transactions.is_same_start)
  ends the transaction still open on N: cause ``superseded``, flagged
  ``ended_as_stale``; the new one is judged as if it had ended (the card's
  ConcurrentTx count, the connector's transactionId);
- a BootNotification marks the transactions open at that moment; a later
  StatusNotification ``Available`` for connector N (N >= 1) ends N's marked
  transaction (section 4.9: Available means no transaction runs there): cause
  ``restarted``, flagged ``ended_by_restart``. Connector 0 (the charge point as
  a whole), any other status, and transactions started after the boot end none.

Each end is a TransactionEndedAsStale event with the cause, the reason, the
time the central system decided it and, as its meterStop, the last energy
register a MeterValues reported (None when none did). A StopTransaction that
comes later is still accepted and its figures replace the inferred ones,
flagged ``stopped_after_inferred_end`` (operator_end.py, session_totals.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.operator_end import ENDED_AS_STALE, ENDED_BY_RESTART, last_meter_value
from domain.state_shapes import Transaction

Payload = dict[str, Any]
Open = dict[int, Transaction]
End = dict[str, Any]  # the fields of a TransactionEndedAsStale

SUPERSEDED, RESTARTED = "superseded", "restarted"
FLAG_OF_CAUSE = {SUPERSEDED: ENDED_AS_STALE, RESTARTED: ENDED_BY_RESTART}


def superseded_by_start(open_transactions: Open, request: Payload, now: datetime) -> list[End]:
    """The ends a new StartTransaction ``request`` decides: the open transactions on its connector."""
    return [_end(transaction, SUPERSEDED, now) for transaction in open_transactions.values()
            if transaction["connectorId"] == request["connectorId"]]


def marked_at_boot(open_transactions: Open) -> Open:
    """The open transactions once the charge point booted: each marked as open across a restart."""
    return {transaction_id: {**transaction, "openAtBoot": True}
            for transaction_id, transaction in open_transactions.items()}


def ended_by_status(open_transactions: Open, request: Payload, now: datetime) -> list[End]:
    """The ends a StatusNotification ``request`` decides: after a restart, Available on their connector."""
    if request["connectorId"] == 0 or request["status"] != "Available":
        return []
    return [_end(transaction, RESTARTED, now) for transaction in open_transactions.values()
            if transaction["connectorId"] == request["connectorId"] and transaction.get("openAtBoot")]


def _end(transaction: Transaction, cause: str, now: datetime) -> End:
    return {"transaction_id": transaction["transactionId"], "cause": cause,
            "reason": reason(cause, transaction["connectorId"]), "ended_at": now,
            "meter_stop": last_meter_value(transaction)}


def reason(cause: str, connector_id: int) -> str:
    """The stop reason recorded for a transaction ended for ``cause``."""
    if cause == SUPERSEDED:
        return f"stale: a new StartTransaction on connector {connector_id}, no StopTransaction came"
    return f"stale: the charge point restarted and reported connector {connector_id} Available"
