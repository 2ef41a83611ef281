"""Signing the CSRs charge points send (SignCertificate.req) and sending them their certificates.

An accepted CSR is signed once its SignCertificate.conf went out: in auto
mode a committed CertificateSigningRequested starts a task (the request's
events are committed before its reply is sent, and this task's first write
queues in the charge point's mailbox behind that reply); in manual mode an
operator approves it (POST /api/certificate-requests/{id}/approve) or
rejects it. Signing records CertificateIssued first, then sends
CertificateSigned.req with the chain through the command path, whose answer
the domain records as its outcome (domain/certificates.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Sequence

from adapters.security.ca import CertificateAuthority
from adapters.service.chargepoints import ChargePoints
from adapters.service.commands import Commands
from adapters.service.sessions import CallRejected, CallTimeout, NotConnected, Sessions
from adapters.service.settings import Clock
from domain.certificate_facts import ACCEPTED
from domain.certificates import AUTO, CertificateSigningRequested, pending_csr, record_issued, reject_request

log = logging.getLogger(__name__)

Payload = dict[str, Any]


class NoCertificateAuthority(Exception):
    """Nothing can be signed: no CA is configured."""


class CertificateSigner:
    def __init__(self, charge_points: ChargePoints, sessions: Sessions, commands: Commands,
                 authority: CertificateAuthority | None, clock: Clock) -> None:
        self._charge_points = charge_points
        self._sessions = sessions
        self._commands = commands
        self._authority = authority
        self._now = clock
        self._running: set[asyncio.Task[Any]] = set()

    def observe(self, events: Sequence[Any]) -> None:
        """Committed events: an accepted CSR in auto mode is signed and sent, after its answer."""
        for event in events:
            if (isinstance(event, CertificateSigningRequested) and event.verdict == ACCEPTED
                    and event.approval == AUTO):
                task = asyncio.get_running_loop().create_task(self._auto(event.originator_id, event.request_id))
                self._running.add(task)
                task.add_done_callback(self._running.discard)

    def stop(self) -> None:
        for task in self._running:
            task.cancel()

    async def _auto(self, charge_point_id: str, request_id: str) -> None:
        try:
            result = await self.sign_and_send(charge_point_id, request_id)
        except (NotConnected, CallTimeout, CallRejected) as failure:
            log.warning("%s: the certificate for request %s was not delivered: %s", charge_point_id, request_id,
                        failure)
        except Exception:
            log.exception("%s: signing certificate request %s failed", charge_point_id, request_id)
        else:
            log.info("%s: certificate %s sent, answered %s", charge_point_id,
                     result["certificate"]["serialNumber"], result["chargePointAnswer"].get("status"))

    async def sign_and_send(self, charge_point_id: str, request_id: str) -> Payload:
        """Signs a waiting request, records it issued, sends it; the certificate and the charge point's answer.

        Raises NoCertificateAuthority, RequestNotPending (decided already), NotConnected (before anything is
        signed), and after it is issued CallTimeout, CallRejected or NotConnected.
        """
        authority = self._authority
        if authority is None:
            raise NoCertificateAuthority("no certificate authority is configured (csms ca init, or --ca-cert)")
        csr = await self._charge_points.change(charge_point_id, lambda cp: pending_csr(cp, request_id))
        if self._sessions.live(charge_point_id) is None:
            raise NotConnected(f"{charge_point_id} is not connected; its certificate request stays pending")
        signed = await asyncio.to_thread(authority.sign, csr, self._now())
        await self._charge_points.change(
            charge_point_id, lambda cp: record_issued(cp, request_id, signed.certificate, signed.chain, self._now()))
        issued = {"requestId": request_id, **signed.certificate.summary()}
        reply = await self._commands.send(charge_point_id, "CertificateSigned", {"certificateChain": signed.chain})
        return {"certificate": issued, "chargePointAnswer": reply}

    async def reject(self, charge_point_id: str, request_id: str, reason: str) -> None:
        """Records an operator's refusal; raises RequestNotPending when it was decided already."""
        await self._charge_points.change(
            charge_point_id, lambda cp: reject_request(cp, request_id, reason, self._now()))

    def csms_root(self) -> str:
        """The root certificate charge points should trust for this central system (its CA's root)."""
        if self._authority is None:
            raise NoCertificateAuthority("no certificate authority is configured (csms ca init, or --ca-cert)")
        return self._authority.root_pem()
