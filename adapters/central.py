"""The running central system: the store, the writer, the actors, authorization.

The WebSocket endpoint and the REST API both call into this one object.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Callable

from adapters.actors import AggregateHandle, ChargePointActor, Command, NotConnected, T
from adapters.authorization import Authorizer
from adapters.group_commit import GroupCommitter
from adapters.http import ApiError
from adapters.ocppj import Schemas
from adapters.passwords import VerifiedPasswords, basic_credentials, hash_password
from adapters.reservation_timer import ReservationTimer
from adapters.shared_aggregate import SharedAggregate
from adapters.store import ConflictError, EventStore
from adapters.transaction_ids import TransactionIds
from domain.chargepoint import ChargePoint
from domain.idtags import REGISTRY_ID, IdTagRegistry
from domain.inbound import Facts, VendorHandler
from domain.outbound import BEFORE_SENDING, prepare_call
from domain.redaction import sets_password
from domain.tariffs import TARIFF_BOOK_ID, TariffBook
from projections.runner import ReadModels

log = logging.getLogger(__name__)

# OCPP identities are CiString48-ish; we refuse what cannot be a URL path segment.
CHARGE_POINT_ID = re.compile(r"^[A-Za-z0-9._:\-*+~@|]{1,48}$")
TAKEOVER_WAIT = 10.0
RESERVATION_ID_SEQUENCE = "reservation_id"


@dataclass(frozen=True)
class Settings:
    heartbeat_interval: int = 300
    call_timeout: float = 30.0
    auto_register: bool = False
    ping_interval: float = 60.0
    max_frame_size: int = 256 * 1024
    data_dir: str = "csms-files"  # firmware images and diagnostics uploads
    max_file_size: int = 64 * 1024 * 1024


class Refused(Exception):
    """A WebSocket handshake we refuse, with the HTTP status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class CommandRefused(ApiError):
    """A call the central system will not send: a rule of the domain refuses it.

    An ApiError (422) so the operator API answers it wherever it surfaces.
    """

    def __init__(self, action: str, reason: str) -> None:
        super().__init__(422, f"{action} not sent: {reason}")


def utc_now() -> datetime:
    return datetime.now(UTC)


class CentralSystem:
    def __init__(self, store: EventStore, settings: Settings, clock: Callable[[], datetime] = utc_now) -> None:
        self.store = store
        self.settings = settings
        self.now = clock
        self.schemas = Schemas()
        self.actors: dict[str, ChargePointActor] = {}
        self.vendor_handlers: dict[str, VendorHandler] = {}
        self.registered: set[str] = set()
        # Hashes of AuthorizationKeys sent and not yet answered, by charge point.
        self._pending_passwords: dict[str, set[str]] = {}
        self._connect_locks: dict[str, asyncio.Lock] = {}
        self._passwords = VerifiedPasswords()
        self._registration_lock = asyncio.Lock()
        self.committer: GroupCommitter
        self.authorizer: Authorizer
        self.transaction_ids: TransactionIds
        self.tariffs: SharedAggregate[TariffBook]
        self.read_models: ReadModels
        self.reservation_timer = ReservationTimer(self)

    async def start(self) -> None:
        self.schemas.warm()
        self.committer = GroupCommitter(self.store, asyncio.get_running_loop())
        id_tags = SharedAggregate(self.store, self.committer, REGISTRY_ID, lambda: IdTagRegistry(id=REGISTRY_ID))
        await id_tags.load()
        self.authorizer = Authorizer(id_tags)
        self.tariffs = SharedAggregate(
            self.store, self.committer, TARIFF_BOOK_ID, lambda: TariffBook(id=TARIFF_BOOK_ID)
        )
        await self.tariffs.load()
        # The read models are caught up first: they tell who is registered, who
        # is charging and who was left online, without scanning the history.
        self.read_models = await asyncio.to_thread(ReadModels, self.store)
        await asyncio.to_thread(self.read_models.catch_up)
        rows = await asyncio.to_thread(
            self.read_models.query,
            "SELECT transaction_id, id_tag FROM billing_transactions WHERE status = 'active' AND id_tag_status = ?",
            ["Accepted"],
        )
        self.authorizer.active.load((row["transaction_id"], row["id_tag"]) for row in rows)
        self.committer.add_listener(self.authorizer.active.observe)
        rows = await asyncio.to_thread(self.read_models.query, "SELECT charge_point_id, online FROM cp_status")
        self.registered.update(row["charge_point_id"] for row in rows)
        self.committer.add_listener(self._note_registrations)
        self.transaction_ids = TransactionIds(self.store.side)
        await self.transaction_ids.start()
        for row in rows:
            if row["online"]:
                await self._mark_offline(row["charge_point_id"])
        # Another node's change to the id tags or tariffs reaches us through
        # the read models, which follow every node's events.
        self.read_models.watch(REGISTRY_ID, id_tags.follow)
        self.read_models.watch(TARIFF_BOOK_ID, self.tariffs.follow)
        # From now on the read models follow the store in their own thread.
        self.read_models.start(asyncio.get_running_loop())
        self.committer.add_recorded_listener(self.read_models.offer)
        self.committer.add_listener(self.read_models.wake)
        await self.reservation_timer.start()

    def _note_registrations(self, events: Any) -> None:
        for event in events:
            if isinstance(event, ChargePoint.Registered):
                self.registered.add(event.originator_id)

    async def _mark_offline(self, charge_point_id: str) -> None:
        """A charge point left online by a crash is offline until it reconnects."""
        await self.execute(
            charge_point_id,
            lambda cp: cp.disconnect(reason="central system restarted", disconnected_at=self.now()),
        )

    async def stop(self) -> None:
        actors = list(self.actors.values())
        await asyncio.gather(*(actor.close_socket() for actor in actors), return_exceptions=True)
        # Concurrently, so the disconnections share a few group commits.
        await asyncio.gather(*(self.disconnect(actor, "central system stopping") for actor in actors))
        self.reservation_timer.stop()
        self.committer.stop()
        await asyncio.to_thread(self.read_models.stop)

    def facts(self) -> Facts:
        now = self.now()
        return Facts(
            now=now,
            heartbeat_interval=self.settings.heartbeat_interval,
            id_tag_info=lambda id_tag: self.authorizer.info(id_tag, now),
            allocate_transaction_id=self.transaction_ids.allocate,
            vendor_handlers=self.vendor_handlers,
        )

    # ---- writes to a charge point's aggregate -----------------------------------

    async def execute(self, charge_point_id: str, command: Command[T]) -> T:
        """Runs a command on a charge point, through its actor if it is connected."""
        actor = self.actors.get(charge_point_id)
        if actor is not None and not actor.stopped:
            return await actor.execute(command)
        return await AggregateHandle(self, charge_point_id).execute(command)

    async def register(self, charge_point_id: str, description: str | None, password: str | None,
                       auto: bool = False) -> bool:
        """Registers a charge point or updates it; True when it is new."""
        async with self._registration_lock:
            existing = await asyncio.to_thread(self.store.load_charge_point, charge_point_id)
            if password is not None:
                # The hash goes first: a charge point never exists without its password.
                await asyncio.to_thread(self.store.side.set_password_hash, charge_point_id, hash_password(password))
            if existing is None:
                cp = ChargePoint(id=charge_point_id, description=description or "", auto_registered=auto)
                if password is not None:
                    cp.change_credentials(has_password=True, reason="registered with a password")
                try:
                    await self.committer.commit(cp.collect_events())
                    return True
                except ConflictError:
                    pass  # registered a moment ago by someone else: update instead

        def update(cp: ChargePoint) -> None:
            if description is not None and description != cp.description:
                cp.update_details(description=description)
            if password is not None:
                cp.change_credentials(has_password=True, reason="password set by operator")

        await self.execute(charge_point_id, update)
        return False

    async def change_password(self, charge_point_id: str, password: str, reason: str) -> None:
        await self._store_password_hash(charge_point_id, await asyncio.to_thread(hash_password, password), reason)

    async def _store_password_hash(self, charge_point_id: str, password_hash: str, reason: str) -> None:
        await asyncio.to_thread(self.store.side.set_password_hash, charge_point_id, password_hash)
        await self.execute(charge_point_id, lambda cp: cp.change_credentials(has_password=True, reason=reason))

    async def allocate_reservation_id(self) -> int:
        """A reservationId that no other reservation made by this CSMS has."""
        block = await asyncio.to_thread(self.store.side.reserve_block, RESERVATION_ID_SEQUENCE, 1)
        return block[0]

    # ---- connections --------------------------------------------------------------

    async def admit(self, charge_point_id: str, authorization: str | None) -> None:
        """Checks a WebSocket handshake; raises Refused with 400, 401 or 404."""
        if not CHARGE_POINT_ID.match(charge_point_id):
            raise Refused(400, "not a valid charge point identity")
        # The registered set is kept from commits; the store is asked only about
        # ids it does not hold (one registered by another node, say).
        known = charge_point_id in self.registered or (
            await asyncio.to_thread(self.store.load_charge_point, charge_point_id) is not None
        )
        if not known:
            if not self.settings.auto_register:
                raise Refused(404, f"unknown charge point {charge_point_id}")
            await self.register(charge_point_id, description=None, password=None, auto=True)
        stored_hash = await asyncio.to_thread(self.store.side.password_hash, charge_point_id)
        if stored_hash is None:
            return
        credentials = basic_credentials(authorization)
        if credentials is None or credentials[0] != charge_point_id:
            raise Refused(401, "this charge point needs HTTP Basic authentication")
        if await asyncio.to_thread(self._passwords.check, credentials[1], stored_hash):
            return
        for pending_hash in list(self._pending_passwords.get(charge_point_id, ())):
            if await asyncio.to_thread(self._passwords.check, credentials[1], pending_hash):
                break
        else:
            raise Refused(401, "wrong password")
        # It authenticates with the key just sent: it has adopted it, whatever
        # becomes of the reply on its old connection.
        await self._store_password_hash(charge_point_id, pending_hash, "charge point adopted the new AuthorizationKey")

    async def connect(self, charge_point_id: str, send: Callable[[bytes], Any], close: Callable[[], Any],
                      remote: str) -> ChargePointActor:
        # One connection at a time per charge point goes through this, so two
        # simultaneous reconnects cannot both take over the same old one.
        async with self._connect_locks.setdefault(charge_point_id, asyncio.Lock()):
            while (previous := self.actors.get(charge_point_id)) is not None:
                # A new connection takes over: the old one is closed and its
                # Disconnected recorded before the new Connected, so history reads right.
                log.info("%s reconnected; closing the previous connection", charge_point_id)
                await previous.close_socket()
                try:
                    await asyncio.wait_for(previous.gone.wait(), TAKEOVER_WAIT)
                except TimeoutError:
                    await self.disconnect(previous, "taken over by a new connection")
            actor = ChargePointActor(self, charge_point_id, send, close)
            self.actors[charge_point_id] = actor
            actor.start()
            try:
                await actor.execute(lambda cp: cp.connect(remote=remote, connected_at=self.now()))
            except BaseException:
                # Not recorded as connected, so not connected: nothing may wait for it.
                await actor.stop()
                if self.actors.get(charge_point_id) is actor:
                    del self.actors[charge_point_id]
                actor.gone.set()
                raise
        return actor

    async def disconnect(self, actor: ChargePointActor, reason: str) -> None:
        if self.actors.get(actor.id) is not actor:
            return
        try:
            await actor.execute(lambda cp: cp.disconnect(reason=reason, disconnected_at=self.now()))
        except Exception:
            log.exception("could not record the disconnection of %s", actor.id)
        finally:
            await actor.stop()
            if self.actors.get(actor.id) is actor:
                del self.actors[actor.id]
            actor.gone.set()

    async def call(self, charge_point_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Sends an OCPP call to a connected charge point and returns its reply."""
        actor = self.actors.get(charge_point_id)
        if actor is None or actor.stopped:
            raise NotConnected(charge_point_id)
        if action in BEFORE_SENDING:
            # In the actor's order, so the check sees the state the call will meet.
            reason = await actor.execute(lambda cp: prepare_call(cp, action, payload, self.now()))
            if reason is not None:
                raise CommandRefused(action, reason)
        new_password = sets_password(action, payload)
        if new_password is None:
            return await actor.call(action, payload)
        # Security profile 1: an accepted AuthorizationKey is the new password. A
        # charge point may reconnect with it the moment it answers, so it is
        # admitted with either password until the answer is recorded.
        pending_hash = await asyncio.to_thread(hash_password, new_password)
        pending = self._pending_passwords.setdefault(charge_point_id, set())
        pending.add(pending_hash)
        try:
            reply = await actor.call(action, payload)
            if reply.get("status") == "Accepted":
                await self._store_password_hash(charge_point_id, pending_hash, "AuthorizationKey accepted")
            return reply
        finally:
            pending.discard(pending_hash)  # only our own: another queued change keeps its key
