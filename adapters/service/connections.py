"""Charge points connecting and going: admission, takeover, disconnection.

A handshake is admitted (identity, registration, the security profile's
transport and client certificate, Basic-auth password); the
session is registered and its Connected recorded; a new connection for a
connected id takes over, its predecessor's Disconnected recorded first, so
history reads in the order things happened.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from concurrent.futures import ThreadPoolExecutor

from adapters.service.admission_facts import AdmissionFacts
from adapters.service.chargepoints import ChargePoints
from adapters.service.node_registry import LocalRegistry, NodeRegistry
from adapters.service.passwords import (
    FREE_FAILURES_PER_ADDRESS,
    FREE_FAILURES_PER_ID,
    FailedAttempts,
    PendingKeys,
    VerifiedPasswords,
    basic_credentials,
    presented_passwords,
)
from adapters.service.sessions import Session, Sessions
from adapters.service.settings import Clock
from domain.admission import Transport, certificate_refusal, needs_password, transport_refusal

log = logging.getLogger(__name__)

# OCPP identities are CiString48-ish; we refuse what cannot be a URL path segment:
# ".", ".." and "..." are relative path steps (also as %2E%2E), never names.
CHARGE_POINT_ID = re.compile(r"^(?!\.+$)[A-Za-z0-9._:\-*+~@|]{1,48}$")


def is_charge_point_id(text: str) -> bool:
    """Whether ``text`` is a charge point identity we accept (the whole of it: no trailing newline)."""
    return CHARGE_POINT_ID.fullmatch(text) is not None


PLAIN = Transport()  # a plain WebSocket: no TLS, no client certificate
TAKEOVER_WAIT = 10.0
# Password checks (PBKDF2) waiting for the one hashing thread; beyond this a handshake is told to retry.
MAX_WAITING_CHECKS = 64


class Refused(Exception):
    """A WebSocket handshake we refuse, with the HTTP status to answer (and when to retry)."""

    def __init__(self, status: int, reason: str, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


class Connections:
    def __init__(self, charge_points: ChargePoints, sessions: Sessions, pending_keys: PendingKeys,
                 auto_register: bool, clock: Clock, cpo_name: str | None = None,
                 registry: NodeRegistry | None = None) -> None:
        self._charge_points = charge_points
        self.admission = AdmissionFacts(charge_points)
        self._cpo_name = cpo_name
        self._sessions = sessions
        self._pending_keys = pending_keys
        self._auto_register = auto_register
        self._now = clock
        self._passwords = VerifiedPasswords()
        self._failed_ids = FailedAttempts(FREE_FAILURES_PER_ID)
        self._failed_addresses = FailedAttempts(FREE_FAILURES_PER_ADDRESS)
        # One thread hashes: a flood of handshakes burns at most one core, and
        # the default executor (store reads) never queues behind PBKDF2.
        self._hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="password-check")
        self._waiting_checks = 0
        self._locks: dict[str, asyncio.Lock] = {}
        self._leaving: set[Session] = set()  # sessions whose Disconnected is being committed
        # Which node holds which charge point (several nodes on PostgreSQL); see node_registry.py.
        self._registry: NodeRegistry = registry or LocalRegistry(sessions)

    async def admit(self, charge_point_id: str, authorization: str | None, remote: str = "",
                    transport: Transport = PLAIN) -> None:
        """Checks a WebSocket handshake; raises Refused with 400, 401, 403, 404 or 503."""
        if not is_charge_point_id(charge_point_id):
            raise Refused(400, "not a valid charge point identity")
        if not await self._charge_points.exists(charge_point_id):
            if not self._auto_register:
                raise Refused(404, f"unknown charge point {charge_point_id}")
            await self._charge_points.register(charge_point_id, description=None, password=None, auto=True)
        required = await self.admission.requirements(charge_point_id)
        certificate, now = transport.client_certificate, self._now()
        problem = None if certificate is None else certificate_refusal(
            certificate, required.certificate_name, required.signed_fingerprint, self._cpo_name, now)
        refusal = transport_refusal(required.profile, transport, problem)
        if refusal is not None:
            await self.admission.record_refusal(charge_point_id, refusal, now)
            raise Refused(refusal.status, refusal.reason)
        if not needs_password(required.profile, required.has_password, problem, transport):
            return
        stored_hash = await self._charge_points.password_hash(charge_point_id)
        if stored_hash is None:
            return
        credentials = basic_credentials(authorization)
        if credentials is None or credentials[0] != charge_point_id:
            raise Refused(401, "this charge point needs HTTP Basic authentication")
        now = self._now()
        wait = max(self._failed_ids.wait(now, charge_point_id), self._failed_addresses.wait(now, remote))
        if wait:
            # Answered without hashing: guessing costs the guesser time, not us CPU.
            raise Refused(401, "too many wrong passwords; try again later", retry_after=math.ceil(wait.total_seconds()))
        candidates = presented_passwords(credentials[1])
        if await self._check_any(candidates, stored_hash):
            self._failed_ids.succeeded(charge_point_id)
            return
        for pending_hash in self._pending_keys.of(charge_point_id):
            if await self._check_any(candidates, pending_hash):
                self._failed_ids.succeeded(charge_point_id)
                break
        else:
            self._failed_ids.failed(self._now(), charge_point_id)
            self._failed_addresses.failed(self._now(), remote)
            raise Refused(401, "wrong password")
        # It authenticates with the key just sent: it has adopted it, whatever
        # becomes of the reply on its old connection.
        await self._charge_points.adopt_password_hash(
            charge_point_id, pending_hash, "charge point adopted the new AuthorizationKey"
        )

    async def _check_any(self, passwords: list[str], stored_hash: str) -> bool:
        for password in passwords:
            if await self._check(password, stored_hash):
                return True
        return False

    async def _check(self, password: str, stored_hash: str) -> bool:
        """The password against a hash, on the hashing thread; 503 when too many checks wait."""
        if self._waiting_checks >= MAX_WAITING_CHECKS:
            raise Refused(503, "too many password checks in progress; try again", retry_after=1)
        self._waiting_checks += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._hashing, self._passwords.check, password, stored_hash)
        finally:
            self._waiting_checks -= 1

    def close(self) -> None:
        self._hashing.shutdown(wait=False, cancel_futures=True)

    async def connect(self, session: Session, remote: str) -> None:
        """Registers the session and records the connection; the session then takes work."""
        # One connection at a time per charge point goes through this, so two
        # simultaneous reconnects cannot both take over the same old one.
        async with self._locks.setdefault(session.id, asyncio.Lock()):
            await self.hand_over(session.id)
            with self._sessions.arrival(session.id):
                await self._registry.claim(session)  # from another node, if one holds it: its Disconnected first
                self._sessions.add(session)
                session.start()
            try:
                await session.change(lambda cp: cp.record_connection(remote=remote, connected_at=self._now()))
            except BaseException:
                # Not recorded as connected, so not connected: nothing may wait for it.
                await session.stop()
                self._sessions.remove(session)
                await self._release(session)
                session.gone.set()
                raise

    async def hand_over(self, charge_point_id: str) -> None:
        """Closes the charge point's connection to this node, if any; returns once its end is recorded."""
        while (previous := self._sessions.get(charge_point_id)) is not None:
            log.info("%s reconnected; closing the previous connection", charge_point_id)
            await previous.close_socket()
            try:
                await asyncio.wait_for(previous.gone.wait(), TAKEOVER_WAIT)
            except TimeoutError:
                await self.disconnect(previous, "taken over by a new connection")

    async def disconnect(self, session: Session, reason: str) -> None:
        """Records the session's end once, however many see it end; returns when it is recorded."""
        if self._sessions.get(session.id) is not session:
            return
        if session in self._leaving:
            # Its end is being recorded already (its endpoint saw the socket close
            # while a takeover gave up waiting): one Disconnected, then go on.
            await session.gone.wait()
            return
        self._leaving.add(session)
        try:
            if await self._registry.holds(session):  # else taken over by another node, which recorded this
                await session.change(lambda cp: cp.record_disconnection(reason=reason, disconnected_at=self._now()))
        except Exception:
            log.exception("could not record the disconnection of %s", session.id)
        finally:
            await session.stop()
            self._sessions.remove(session)
            await self._release(session)
            self._leaving.discard(session)
            session.gone.set()

    async def _release(self, session: Session) -> None:
        try:
            await self._registry.release(session)
        except Exception as failure:
            # The lease then runs out by itself: another node may take the charge point after that.
            log.warning("could not release the lease on %s: %s", session.id, failure)

    async def let_go(self, session: Session) -> None:
        """Another node took the charge point (this one's lease ran out): close, and record nothing,
        since its history goes on there."""
        if self._sessions.get(session.id) is not session:
            return
        self._sessions.remove(session)
        await session.stop()
        session.gone.set()
        await session.close_socket()

    async def record_gone(self, charge_point_id: str, reason: str) -> None:
        """Records the end of a connection another node held and cannot record (dead, cut off)."""
        await self._charge_points.change(
            charge_point_id,
            lambda cp: cp.record_disconnection(reason=reason, disconnected_at=self._now()) if cp.online else None,
        )

    async def close_sockets(self) -> None:
        """Closes every connected charge point's socket; each endpoint then records its disconnection."""
        await asyncio.gather(*(session.close_socket() for session in self._sessions), return_exceptions=True)

    async def disconnect_all(self, reason: str) -> None:
        sessions = list(self._sessions)
        await asyncio.gather(*(session.close_socket() for session in sessions), return_exceptions=True)
        # Concurrently, so the disconnections share a few group commits.
        await asyncio.gather(*(self.disconnect(session, reason) for session in sessions))

    async def mark_offline(self, charge_point_ids: list[str]) -> None:
        """Charge points left online by a crash are offline until they reconnect."""
        for charge_point_id in charge_point_ids:
            await self._charge_points.change(
                charge_point_id,
                lambda cp: cp.record_disconnection(reason="central system restarted", disconnected_at=self._now()),
            )
