"""The transactions a charge point keeps, and how they are found again (OCPP 1.6 sections 4.8, 4.10).

A charge point keeps its open transactions by id, and the
RECENT_TRANSACTIONS_KEPT most recently stopped ones: enough to recognise a
retried StartTransaction or a repeated StopTransaction. Every function here
is pure; the shapes are state_shapes.Transaction and StoppedTransaction.
"""

from __future__ import annotations

from typing import Any

from domain.state_shapes import Connector, StoppedTransaction, Transaction, new_connector
from domain.timestamps import parse_ocpp_time

Payload = dict[str, Any]
Open = dict[int, Transaction]  # transactionId -> the open transaction
Recent = list[StoppedTransaction]  # oldest first

RECENT_TRANSACTIONS_KEPT = 50  # enough to recognise retried StartTransaction/Stop


def find(open_transactions: Open, recent: Recent, transaction_id: int) -> Transaction | None:
    """The transaction with this id, open or recently stopped."""
    if transaction_id in open_transactions:
        return open_transactions[transaction_id]
    return next((transaction for transaction in recent if transaction["transactionId"] == transaction_id), None)


def started_by(open_transactions: Open, recent: Recent, request: Payload) -> Transaction | None:
    """A transaction the StartTransaction ``request`` already started (a retry, see is_same_start)."""
    earlier = [*open_transactions.values(), *recent]
    return next((transaction for transaction in earlier if is_same_start(transaction, request)), None)


def is_same_start(transaction: Transaction, request: Payload) -> bool:
    """Whether the StartTransaction `request` is a retry of the one that opened `transaction`.

    OCPP 1.6 section 4.8 lets a charge point resend a StartTransaction it got
    no answer to; the same connector, idTag, timestamp and meterStart mean
    the same transaction.
    """
    return bool(
        transaction["connectorId"] == request["connectorId"]
        and transaction["idTag"].lower() == request["idTag"].lower()
        and transaction["meterStart"] == request["meterStart"]
        and parse_ocpp_time(transaction["startTimestamp"]) == parse_ocpp_time(request["timestamp"])
    )


def repeated_start_reply(earlier: Transaction) -> Payload:
    """The answer to a retried StartTransaction: the same transaction, the same id, the same verdict."""
    # Transactions recorded before idTagInfo was kept have the status alone.
    info = earlier.get("idTagInfo", {"status": earlier["idTagStatus"]})
    return {"transactionId": earlier["transactionId"], "idTagInfo": info}


def kept_after_stop(recent: Recent, stopped: StoppedTransaction) -> Recent:
    """The recently stopped transactions once ``stopped`` joined them: the newest are kept."""
    return (recent + [stopped])[-RECENT_TRANSACTIONS_KEPT:]


def connectors_at_start(connectors: dict[int, Connector], started: Transaction) -> dict[int, Connector]:
    """The connectors once ``started`` began: its connector runs it."""
    connector_id = started["connectorId"]
    return {**connectors, connector_id: {**connectors.get(connector_id, new_connector()),
                                         "transactionId": started["transactionId"]}}


def connectors_at_stop(connectors: dict[int, Connector], stopped: Transaction) -> dict[int, Connector]:
    """The connectors once ``stopped`` ended: its connector runs nothing, unless it started another since."""
    connector_id = stopped["connectorId"]
    connector = connectors.get(connector_id, new_connector())
    if connector["transactionId"] == stopped["transactionId"]:
        connector = {**connector, "transactionId": None}
    return {**connectors, connector_id: connector}


def by_connector(open_transactions: Open) -> dict[int, int]:
    """connectorId -> the transaction running on it."""
    return {transaction["connectorId"]: transaction_id for transaction_id, transaction in open_transactions.items()}


def running_on(connectors: dict[int, Connector], open_transactions: Open, connector_id: int) -> Transaction | None:
    """The open transaction the connector last started, if it is still open."""
    connector = connectors.get(connector_id)
    transaction_id = connector["transactionId"] if connector is not None else None
    return open_transactions.get(transaction_id) if transaction_id is not None else None
