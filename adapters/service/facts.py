"""What a charge point's call may know beyond its aggregate, fresh for each call."""

from __future__ import annotations

from adapters.security.csr import read_csr
from adapters.service.authorization import Authorizer
from adapters.service.settings import Clock
from adapters.service.transaction_ids import TransactionIds
from domain.certificate_facts import CertificateSigning
from domain.facts import Facts, VendorHandler


class FactSource:
    def __init__(self, clock: Clock, heartbeat_interval: int, authorizer: Authorizer,
                 transaction_ids: TransactionIds, certificate_signing: CertificateSigning | None = None) -> None:
        self._now = clock
        self._heartbeat_interval = heartbeat_interval
        self._authorizer = authorizer
        self._transaction_ids = transaction_ids
        # DataTransfer handlers by vendorId; none are shipped, so DataTransfer answers UnknownVendorId.
        self.vendor_handlers: dict[str, VendorHandler] = {}
        # CSRs are always read, so even one refused for want of a CA is recorded with its subject.
        self._certificate_signing = certificate_signing or CertificateSigning(read_csr=read_csr, can_sign=False)

    def __call__(self) -> Facts:
        now = self._now()
        return Facts(
            now=now,
            heartbeat_interval=self._heartbeat_interval,
            id_tag_info=lambda id_tag: self._authorizer.info(id_tag, now),
            allocate_transaction_id=self._transaction_ids.allocate,
            vendor_handlers=self.vendor_handlers,
            start_id_tag_info=lambda id_tag, ending: self._authorizer.start_info(id_tag, now, ending),
            certificate_signing=self._certificate_signing,
        )
