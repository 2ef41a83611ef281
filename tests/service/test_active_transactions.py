"""Who is charging (adapters/service/authorization.py ActiveTransactions): committed starts, and decided ones."""

from __future__ import annotations

from typing import Any

from adapters.service.authorization import ActiveTransactions
from domain.chargepoint import topic


class Started:
    """Stands in for a TransactionStarted: what ActiveTransactions reads of one."""

    TOPIC = topic("TransactionStarted")

    def __init__(self, transaction_id: int, id_tag: str, status: str = "Accepted") -> None:
        self.transaction_id = transaction_id
        self.request: dict[str, Any] = {"idTag": id_tag}
        self.reply: dict[str, Any] = {"idTagInfo": {"status": status}}


def test_an_accepted_start_counts_from_its_decision_and_once_only_after_its_commit() -> None:
    active = ActiveTransactions()
    start = [Started(7, "Card-1")]

    active.decided(start)  # handed to the writer
    deciding = active.running("CARD-1")
    active.observe(start)  # committed: the listeners see it, then the hold is settled
    active.settled(start)

    assert (deciding, active.running("card-1"), active.running("CARD-1", ending=[7])) == (1, 1, 0)


def test_a_start_whose_commit_failed_no_longer_counts_and_a_refused_one_never_did() -> None:
    active = ActiveTransactions()
    failed, refused = [Started(7, "CARD-1")], [Started(8, "CARD-1", status="Blocked")]

    active.decided(failed + refused)
    active.settled(failed + refused)  # the commit failed: not observed

    assert active.running("CARD-1") == 0

