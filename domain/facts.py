"""What the aggregate may know beyond itself when it answers a charge point.

The caller supplies the clock, authorization and transaction id allocation,
so that the aggregate decides from facts and a replay never calls the outside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Collection, Mapping

from domain.certificate_facts import CertificateSigning

Payload = dict[str, Any]
VendorHandler = Callable[[str, Payload], Payload]  # (charge point id, DataTransfer request) -> reply


@dataclass(frozen=True)
class Facts:
    """What an answer may know beyond the aggregate, supplied by the caller."""

    now: datetime
    heartbeat_interval: int
    # The IdTagInfo for a tag as the registry says now: its own status (Authorize, StopTransaction).
    id_tag_info: Callable[[str], Payload]
    # A transactionId never handed out before, by any node, ever.
    allocate_transaction_id: Callable[[], int]
    vendor_handlers: Mapping[str, VendorHandler] = field(default_factory=dict)
    # The IdTagInfo a StartTransaction gets: ConcurrentTx once the tag runs as many transactions, on
    # any charge point, as its maxConcurrentTransactions allows, not counting the transactions (by id)
    # the same answer ends (stale_sessions.py). Unset: the tag's own (id_tag_info).
    start_id_tag_info: Callable[[str, Collection[int]], Payload] | None = None
    # How a SignCertificate's CSR is read and the signing policy; unset: no certificate authority at all.
    certificate_signing: CertificateSigning | None = None

    def id_tag_info_at_start(self, id_tag: str, ending: Collection[int] = ()) -> Payload:
        if self.start_id_tag_info is None:
            return self.id_tag_info(id_tag)
        return self.start_id_tag_info(id_tag, ending)

    def vendor_handler(self, vendor_id: str) -> VendorHandler | None:
        """The DataTransfer handler of a vendor: vendorId is CiString255, so any case names the same vendor."""
        vendor = vendor_id.lower()
        return next((handler for name, handler in self.vendor_handlers.items() if name.lower() == vendor), None)
