"""Certificate management (OCPP 1.6 Security Whitepaper, A02/A03 and M): who was given which certificate, when.

- SignCertificate.req (a CSR): checked (certificate_facts.csr_refusal on what the
  adapter read from it), answered Accepted or Rejected, recorded as
  CertificateSigningRequested; an accepted one waits, under its request id,
  until the central system signs it (at once, or when an operator approves)
  or an operator rejects it.
- CertificateIssued is recorded before the CertificateSigned.req carrying it
  goes out; the charge point's answer is its outcome
  (ChargePointCertificateAccepted: now its certificate; or ...Refused).
- InstallCertificate, DeleteCertificate, GetInstalledCertificateIds: their
  answers are recorded in these words (CertificateInstalled,
  CertificateDeleted, InstalledCertificatesReported) and keep
  ``installed_certificates`` (by certificateType, the CertificateHashData).

Every event names the certificate by serial number, SHA-256 fingerprint,
subject and validity; none ever holds a private key. The aggregate is known
here only as what these need of it (``CertificateHolder``), so that
domain/chargepoint.py may call record_answer without an import cycle.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Callable, Protocol

from domain.certificate_facts import (
    ACCEPTED,
    NO_CERTIFICATE_AUTHORITY,
    REJECTED,
    Certificate,
    csr_refusal,
    same_hash_data,
)
from domain.chargepoint_events import ChargePointEvent, declared, topic
from domain.facts import Facts, Payload

# Request ids are derived from the charge point and the version of the request's event: unique, and the
# same on every replay.
REQUEST_IDS = uuid.UUID("6f1d0d0e-5a43-4b8e-9a58-9b0f1c3e2a71")
# Certificates sent and not answered (a CALLERROR, a timeout) are forgotten beyond this many: the events keep them.
UNANSWERED_KEPT = 8
AUTO, MANUAL = "auto", "manual"


class CertificateHolder(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def version(self) -> int: ...

    last_seen: datetime | None
    installed_certificates: dict[str, list[Payload]]
    charge_point_certificate: Payload | None
    certificate_requests: dict[str, Payload]
    certificates_sent: dict[str, Payload]

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None: ...


class RequestNotPending(Exception):
    """The certificate request was decided already (signed or rejected), or never waited."""


def certificate_name(cp: CertificateHolder) -> str:
    """The name a charge point's certificate must carry as CN: its certificateName when registered with one."""
    return getattr(cp, "certificate_name", None) or cp.id


# ---- a charge point asks for a certificate ------------------------------------------------


@declared
class CertificateSigningRequested(ChargePointEvent):
    """A SignCertificate.req as received, what was read from its CSR, and the verdict."""

    TOPIC = topic("CertificateSigningRequested")
    message_id: str
    request: Payload
    reply: Payload
    received_at: datetime
    request_id: str
    subject: str
    key_type: str
    verdict: str  # Accepted or Rejected
    reason: str | None
    approval: str | None  # auto or manual, for an accepted one

    def apply(self, cp: CertificateHolder) -> None:
        if self.verdict == ACCEPTED:
            cp.certificate_requests = {**cp.certificate_requests, self.request_id: {
                "csr": self.request["csr"], "subject": self.subject, "receivedAt": self.received_at,
                "approval": self.approval}}
        cp.last_seen = self.received_at


def answer_sign_certificate(cp: CertificateHolder, message_id: str, request: Payload, facts: Facts) -> Payload:
    signing = facts.certificate_signing
    subject, key_type, approval = "", "", None
    reason: str | None = NO_CERTIFICATE_AUTHORITY
    if signing is not None:
        csr = signing.read_csr(request["csr"])
        subject, key_type = csr.subject, csr.key_type if csr.unreadable is None else ""
        reason = csr_refusal(csr, certificate_name(cp), signing.cpo_name)
        if reason is None and not signing.can_sign:
            reason = NO_CERTIFICATE_AUTHORITY
        approval = MANUAL if signing.manual_approval else AUTO
    verdict = ACCEPTED if reason is None else REJECTED
    reply = {"status": verdict}
    request_id = str(uuid.uuid5(REQUEST_IDS, f"{cp.id}\n{cp.version + 1}"))
    cp.trigger_event(CertificateSigningRequested, message_id=message_id, request=request, reply=reply,
                     received_at=facts.now, request_id=request_id, subject=subject, key_type=key_type,
                     verdict=verdict, reason=reason, approval=approval if verdict == ACCEPTED else None)
    return reply


def pending_csr(cp: CertificateHolder, request_id: str) -> str:
    """The CSR of a request still waiting to be signed; raises RequestNotPending."""
    waiting = cp.certificate_requests.get(request_id)
    if waiting is None:
        raise RequestNotPending(f"certificate request {request_id} of {cp.id} is not pending")
    return str(waiting["csr"])


# ---- the central system decides ----------------------------------------------------------


@declared
class CertificateIssued(ChargePointEvent):
    """The central system signed a charge point certificate; recorded before CertificateSigned.req goes out."""

    TOPIC = topic("CertificateIssued")
    request_id: str
    serial_number: str
    fingerprint: str
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    certificate_chain: str  # PEM, leaf first: public, as sent
    issued_at: datetime

    def apply(self, cp: CertificateHolder) -> None:
        requests = dict(cp.certificate_requests)
        requests.pop(self.request_id, None)
        cp.certificate_requests = requests
        cp.certificates_sent = _remembered(cp.certificates_sent, self.certificate_chain, {
            "requestId": self.request_id, "serialNumber": self.serial_number, "fingerprint": self.fingerprint,
            "subject": self.subject, "notBefore": self.not_before, "notAfter": self.not_after})


def record_issued(cp: CertificateHolder, request_id: str, certificate: Certificate, chain: str,
                  now: datetime) -> None:
    pending_csr(cp, request_id)  # signed once only
    cp.trigger_event(CertificateIssued, request_id=request_id, serial_number=certificate.serial_number,
                     fingerprint=certificate.fingerprint, subject=certificate.subject, issuer=certificate.issuer,
                     not_before=certificate.not_before, not_after=certificate.not_after, certificate_chain=chain,
                     issued_at=now)


@declared
class CertificateRequestRejected(ChargePointEvent):
    """An operator refused to sign a waiting request."""

    TOPIC = topic("CertificateRequestRejected")
    request_id: str
    reason: str
    rejected_at: datetime

    def apply(self, cp: CertificateHolder) -> None:
        requests = dict(cp.certificate_requests)
        requests.pop(self.request_id, None)
        cp.certificate_requests = requests


def reject_request(cp: CertificateHolder, request_id: str, reason: str, now: datetime) -> None:
    pending_csr(cp, request_id)
    cp.trigger_event(CertificateRequestRejected, request_id=request_id, reason=reason, rejected_at=now)


@declared
class CertificateInstallRequested(ChargePointEvent):
    """An InstallCertificate.req is about to go out with this certificate (read by the adapter)."""

    TOPIC = topic("CertificateInstallRequested")
    certificate_type: str
    serial_number: str
    fingerprint: str
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    hash_data: Payload
    certificate: str  # PEM, as sent
    requested_at: datetime

    def apply(self, cp: CertificateHolder) -> None:
        cp.certificates_sent = _remembered(cp.certificates_sent, self.certificate, {
            "certificateType": self.certificate_type, "serialNumber": self.serial_number,
            "fingerprint": self.fingerprint, "subject": self.subject, "notBefore": self.not_before,
            "notAfter": self.not_after, "hashData": self.hash_data})


def record_install_requested(cp: CertificateHolder, request: Payload, certificate: Certificate,
                             now: datetime) -> None:
    cp.trigger_event(CertificateInstallRequested, certificate_type=request["certificateType"],
                     serial_number=certificate.serial_number, fingerprint=certificate.fingerprint,
                     subject=certificate.subject, issuer=certificate.issuer, not_before=certificate.not_before,
                     not_after=certificate.not_after, hash_data=certificate.hash_data,
                     certificate=request["certificate"], requested_at=now)


# ---- what the charge point's answers mean ----------------------------------------------------


def _remembered(sent: dict[str, Payload], pem: str, what: Payload) -> dict[str, Payload]:
    """What was sent, by its PEM, until answered; the oldest unanswered beyond UNANSWERED_KEPT go."""
    kept = {key: value for key, value in sent.items() if key != pem}
    kept[pem] = what
    return dict(list(kept.items())[-UNANSWERED_KEPT:])


def _sent_no_more(cp: CertificateHolder, pem: str) -> None:
    sent = dict(cp.certificates_sent)
    sent.pop(pem, None)
    cp.certificates_sent = sent


@declared
class ChargePointCertificateAccepted(ChargePointEvent):
    """The charge point accepted the certificate this central system signed for it (CertificateSigned.conf)."""

    TOPIC = topic("ChargePointCertificateAccepted")
    request_id: str | None
    serial_number: str
    fingerprint: str
    subject: str
    not_before: datetime
    not_after: datetime
    certificate_chain: str
    accepted_at: datetime

    def apply(self, cp: CertificateHolder) -> None:
        _sent_no_more(cp, self.certificate_chain)
        cp.charge_point_certificate = {"serialNumber": self.serial_number, "fingerprint": self.fingerprint,
                                       "subject": self.subject, "notBefore": self.not_before,
                                       "notAfter": self.not_after, "acceptedAt": self.accepted_at}


@declared
class ChargePointCertificateRefused(ChargePointEvent):
    """The charge point did not take the certificate signed for it (CertificateSigned.conf Rejected)."""

    TOPIC = topic("ChargePointCertificateRefused")
    request_id: str | None
    fingerprint: str | None
    status: str
    certificate_chain: str
    refused_at: datetime

    def apply(self, cp: CertificateHolder) -> None:
        _sent_no_more(cp, self.certificate_chain)


@declared
class CertificateInstalled(ChargePointEvent):
    """The charge point installed a root certificate (InstallCertificate.conf Accepted)."""

    TOPIC = topic("CertificateInstalled")
    certificate_type: str
    hash_data: Payload
    serial_number: str
    fingerprint: str
    subject: str
    not_before: datetime
    not_after: datetime
    certificate: str
    installed_at: datetime

    def apply(self, cp: CertificateHolder) -> None:
        _sent_no_more(cp, self.certificate)
        of_type = [data for data in cp.installed_certificates.get(self.certificate_type, [])
                   if not same_hash_data(data, self.hash_data)]
        cp.installed_certificates = {**cp.installed_certificates, self.certificate_type: [*of_type, self.hash_data]}


@declared
class CertificateInstallRefused(ChargePointEvent):
    """InstallCertificate.conf Failed or Rejected."""

    TOPIC = topic("CertificateInstallRefused")
    certificate_type: str
    status: str
    fingerprint: str | None
    certificate: str
    refused_at: datetime

    def apply(self, cp: CertificateHolder) -> None:
        _sent_no_more(cp, self.certificate)


@declared
class CertificateDeleted(ChargePointEvent):
    """The charge point deleted an installed certificate (DeleteCertificate.conf Accepted)."""

    TOPIC = topic("CertificateDeleted")
    hash_data: Payload
    deleted_at: datetime

    def apply(self, cp: CertificateHolder) -> None:
        cp.installed_certificates = {
            kind: [data for data in installed if not same_hash_data(data, self.hash_data)]
            for kind, installed in cp.installed_certificates.items()}


@declared
class InstalledCertificatesReported(ChargePointEvent):
    """What the charge point says it has installed of a type (GetInstalledCertificateIds.conf)."""

    TOPIC = topic("InstalledCertificatesReported")
    certificate_type: str
    status: str  # Accepted, or NotFound: none of that type
    hash_data: list[Payload]
    reported_at: datetime

    def apply(self, cp: CertificateHolder) -> None:
        cp.installed_certificates = {**cp.installed_certificates, self.certificate_type: list(self.hash_data)}


def _certificate_signed(cp: CertificateHolder, request: Payload, reply: Payload, at: datetime) -> None:
    chain = request["certificateChain"]
    sent = cp.certificates_sent.get(chain)
    if reply["status"] == ACCEPTED:
        if sent is None:
            return  # a chain this central system did not sign: the exchange is history enough
        cp.trigger_event(ChargePointCertificateAccepted, request_id=sent.get("requestId"),
                         serial_number=sent["serialNumber"], fingerprint=sent["fingerprint"], subject=sent["subject"],
                         not_before=sent["notBefore"], not_after=sent["notAfter"], certificate_chain=chain,
                         accepted_at=at)
    else:
        cp.trigger_event(ChargePointCertificateRefused, request_id=sent and sent.get("requestId"),
                         fingerprint=sent and sent["fingerprint"], status=reply["status"], certificate_chain=chain,
                         refused_at=at)


def _install_certificate(cp: CertificateHolder, request: Payload, reply: Payload, at: datetime) -> None:
    pem = request["certificate"]
    sent = cp.certificates_sent.get(pem)
    if reply["status"] == ACCEPTED and sent is not None:
        cp.trigger_event(CertificateInstalled, certificate_type=request["certificateType"],
                         hash_data=sent["hashData"], serial_number=sent["serialNumber"],
                         fingerprint=sent["fingerprint"], subject=sent["subject"], not_before=sent["notBefore"],
                         not_after=sent["notAfter"], certificate=pem, installed_at=at)
    elif reply["status"] != ACCEPTED:
        cp.trigger_event(CertificateInstallRefused, certificate_type=request["certificateType"],
                         status=reply["status"], fingerprint=sent and sent["fingerprint"], certificate=pem,
                         refused_at=at)


def _delete_certificate(cp: CertificateHolder, request: Payload, reply: Payload, at: datetime) -> None:
    if reply["status"] == ACCEPTED:
        cp.trigger_event(CertificateDeleted, hash_data=request["certificateHashData"], deleted_at=at)


def _get_installed_certificate_ids(cp: CertificateHolder, request: Payload, reply: Payload, at: datetime) -> None:
    cp.trigger_event(InstalledCertificatesReported, certificate_type=request["certificateType"],
                     status=reply["status"], hash_data=list(reply.get("certificateHashData") or []), reported_at=at)


MEANING_OF_ANSWERS: dict[str, Callable[[CertificateHolder, Payload, Payload, datetime], None]] = {
    "CertificateSigned": _certificate_signed,
    "InstallCertificate": _install_certificate,
    "DeleteCertificate": _delete_certificate,
    "GetInstalledCertificateIds": _get_installed_certificate_ids,
}


def record_answer(cp: CertificateHolder, action: str, request: Payload, reply: Payload, received_at: datetime) -> None:
    """What a CALLRESULT to one of the certificate calls means, recorded beside the exchange."""
    meaning = MEANING_OF_ANSWERS.get(action)
    if meaning is not None:
        meaning(cp, request, reply, received_at)
