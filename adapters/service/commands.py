"""Operators' commands: CSMS-initiated calls, checked, sent and followed.

A command takes its turn in the charge point's session: the domain checks
and records what must happen before it is sent (ChargePoint.prepare_call), then
the session sends it and records the outcome. An accepted AuthorizationKey
becomes the charge point's Basic-auth password.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, Awaitable, Callable

from adapters.security.x509_reading import Unreadable, read_certificate
from adapters.service.chargepoints import ChargePoints
from adapters.service.passwords import PendingKeys, hash_password, key_password
from adapters.service.sessions import NotConnected, Sessions
from adapters.service.settings import Clock
from adapters.store import SideTables
from domain.certificates import record_install_requested
from domain.chargepoint import BEFORE_SENDING
from domain.redaction import sets_password

RESERVATION_ID_SEQUENCE = "reservation_id"
# The calls that carry certificates, and the field: it must read as PEM X.509 before anything is sent.
CERTIFICATE_FIELDS = {"InstallCertificate": "certificate", "CertificateSigned": "certificateChain"}

# Sends a command through the node that holds the charge point (adapters/service/forwarding.py).
Elsewhere = Callable[[str, str, dict[str, Any]], Awaitable[dict[str, Any]]]


class CommandRefused(Exception):
    """A call the central system will not send: a rule of the domain refuses it."""

    def __init__(self, action: str, reason: str) -> None:
        super().__init__(f"{action} not sent: {reason}")
        self.action = action
        self.reason = reason


class Commands:
    def __init__(self, charge_points: ChargePoints, sessions: Sessions, pending_keys: PendingKeys,
                 side: SideTables, clock: Clock, elsewhere: Elsewhere | None = None) -> None:
        self._charge_points = charge_points
        self._sessions = sessions
        self._pending_keys = pending_keys
        self._side = side
        self._now = clock
        self._elsewhere = elsewhere
        # Commands in progress per charge point: sent and unanswered, or queued behind one.
        self._in_progress: Counter[str] = Counter()

    def pending(self, charge_point_id: str) -> int:
        return self._in_progress[charge_point_id]

    async def send(self, charge_point_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Sends an OCPP call to a connected charge point and returns its reply.

        Raises CommandRefused, NotConnected, CallTimeout or CallRejected. A charge point
        connected to another node is sent the command by that node.
        """
        arriving = self._sessions.arriving(charge_point_id)
        if arriving is not None:
            await arriving.wait()  # connected a moment ago: its lease is being taken
        if self._elsewhere is not None and self._sessions.live(charge_point_id) is None:
            return await self._elsewhere(charge_point_id, action, payload)
        return await self.send_here(charge_point_id, action, payload)

    async def send_here(self, charge_point_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Sends an OCPP call to a charge point connected to this node; raises as ``send`` does."""
        self._in_progress[charge_point_id] += 1
        try:
            return await self._send(charge_point_id, action, payload)
        finally:
            self._in_progress[charge_point_id] -= 1
            if not self._in_progress[charge_point_id]:
                del self._in_progress[charge_point_id]

    async def _send(self, charge_point_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        certificate_field = CERTIFICATE_FIELDS.get(action)
        try:
            certificate = read_certificate(payload[certificate_field]) if certificate_field else None
        except Unreadable as failure:
            raise CommandRefused(action, f"{certificate_field}: {failure}") from None
        session = self._sessions.live(charge_point_id)
        if session is None:
            raise NotConnected(f"{charge_point_id} is not connected")
        if action == "InstallCertificate" and certificate is not None:
            # What is installed is history once answered: what the certificate is, read before it goes.
            await session.change(lambda cp: record_install_requested(cp, payload, certificate, self._now()))
        if action in BEFORE_SENDING:
            # In the session's order, so the check sees the state the call will meet.
            reason = await session.change(lambda cp: cp.prepare_call(action, payload, self._now()))
            if reason is not None:
                raise CommandRefused(action, reason)
        new_password = sets_password(action, payload)
        if new_password is None:
            return await session.call(action, payload)
        pending_hash = await asyncio.to_thread(hash_password, key_password(new_password))
        self._pending_keys.add(charge_point_id, pending_hash)
        try:
            reply = await session.call(action, payload)
            if reply.get("status") == "Accepted":
                await self._charge_points.adopt_password_hash(
                    charge_point_id, pending_hash, "AuthorizationKey accepted"
                )
            return reply
        finally:
            self._pending_keys.discard(charge_point_id, pending_hash)

    async def allocate_reservation_id(self) -> int:
        """A reservationId that no other reservation made by this CSMS has."""
        block = await asyncio.to_thread(self._side.reserve_block, RESERVATION_ID_SEQUENCE, 1)
        return block[0]
