"""An operator ends a stale transaction: one whose StopTransaction never came.

The billing read model says which charge point owns the transaction; that
charge point's aggregate decides and records TransactionEndedByOperator
(domain/operator_end.py), committed before this returns. No OCPP call is made.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from adapters.service.chargepoints import ChargePoints
from domain.operator_end import TransactionNotOpen, check_reason
from projections import billing
from projections.database import Reader


class UnknownTransaction(LookupError):
    """No charge point ever had a transaction with this id."""


async def end_transaction(charge_points: ChargePoints, read_models: Reader, transaction_id: int, reason: object,
                          now: datetime) -> None:
    """Raises ReasonRejected, UnknownTransaction, or TransactionNotOpen when it has ended already."""
    checked = check_reason(reason)
    found = await asyncio.to_thread(billing.find_transaction, read_models, transaction_id)
    if found is None:
        raise UnknownTransaction(f"unknown transaction {transaction_id}")
    if found["status"] != "active":
        raise TransactionNotOpen(f"transaction {transaction_id} has ended already")
    await charge_points.change(
        found["chargePointId"], lambda cp: cp.end_transaction_by_operator(transaction_id, checked, now)
    )
