"""Writes to charge points' aggregates, and reads of their committed state.

A write goes through the charge point's live session when it is connected
(so it takes its turn in the actor's mailbox), else through a one-off handle;
either way its events are committed before it returns, and a write that
loses an optimistic-concurrency race reloads the aggregate and runs again.
"""

from __future__ import annotations

import asyncio
import weakref
from datetime import datetime
from typing import Any, Iterator, Sequence, TypeVar

from adapters.service.passwords import hash_password
from adapters.service.sessions import Sessions
from adapters.store import (
    AggregateHandle,
    Command,
    ConflictError,
    EventStore,
    GroupCommitter,
    NotRegistered,
    state_at,
)
from domain.chargepoint import ChargePoint

T = TypeVar("T")



class ChargePoints:
    def __init__(self, store: EventStore, committer: GroupCommitter, sessions: Sessions) -> None:
        self._store = store
        self._committer = committer
        self._sessions = sessions
        # Kept from commits, so a handshake or a command asks the store only
        # about ids it does not hold (one registered by another node, say).
        self.registered: set[str] = set()
        self._registration_lock = asyncio.Lock()
        # Changes to a charge point that is not connected take turns on this
        # node, as a session's mailbox does for a connected one: they never
        # race each other for the next version (only another node's can).
        self._offline_turns: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def handle(self, charge_point_id: str) -> AggregateHandle:
        return AggregateHandle(self._store, self._committer, charge_point_id)

    def observe(self, events: Sequence[Any]) -> None:
        """Committed events (on the event loop): a new charge point is registered."""
        for event in events:
            if isinstance(event, ChargePoint.Registered):
                self.registered.add(event.originator_id)

    async def exists(self, charge_point_id: str) -> bool:
        if charge_point_id in self.registered:
            return True
        if await asyncio.to_thread(self._store.load_charge_point, charge_point_id) is None:
            return False
        self.registered.add(charge_point_id)  # registered through another node
        return True

    async def change(self, charge_point_id: str, command: Command[T]) -> T:
        """Runs a command on a charge point, through its session if it is connected."""
        session = self._sessions.live(charge_point_id)
        if session is not None:
            return await session.change(command)
        turn = self._offline_turns.get(charge_point_id)
        if turn is None:
            turn = self._offline_turns[charge_point_id] = asyncio.Lock()
        async with turn:
            session = self._sessions.live(charge_point_id)  # it may have connected meanwhile
            if session is not None:
                return await session.change(command)
            return await self.handle(charge_point_id).commit_change(command)

    async def read(self, charge_point_id: str) -> ChargePoint:
        """The charge point's committed state; raises NotRegistered."""
        session = self._sessions.get(charge_point_id)
        in_memory = session.committed_state() if session is not None else None
        if in_memory is not None:
            return in_memory
        # Nobody holds it, or a change is on its way to disk: read what is durable.
        cp = await asyncio.to_thread(self._store.load_charge_point, charge_point_id)
        if cp is None:
            raise NotRegistered(f"unknown charge point {charge_point_id}")
        return cp

    async def register(self, charge_point_id: str, description: str | None, password: str | None,
                       auto: bool = False) -> bool:
        """Registers a charge point or updates it; True when it is new."""
        async with self._registration_lock:
            existing = await asyncio.to_thread(self._store.load_charge_point, charge_point_id)
            if password is not None:
                # The hash goes first: a charge point never exists without its password.
                password_hash = await asyncio.to_thread(hash_password, password)
                await asyncio.to_thread(self._store.side.set_password_hash, charge_point_id, password_hash)
            if existing is None:
                cp = ChargePoint(id=charge_point_id, description=description or "", auto_registered=auto)
                if password is not None:
                    cp.record_credentials_changed(has_password=True, reason="registered with a password")
                try:
                    await self._committer.commit(cp.collect_events())
                    return True
                except ConflictError:
                    pass  # registered a moment ago by someone else: update instead

        def update(cp: ChargePoint) -> None:
            if description is not None and description != cp.description:
                cp.update_details(description=description)
            if password is not None:
                cp.record_credentials_changed(has_password=True, reason="password set by operator")

        await self.change(charge_point_id, update)
        return False

    async def password_hash(self, charge_point_id: str) -> str | None:
        return await asyncio.to_thread(self._store.side.password_hash, charge_point_id)

    async def adopt_password_hash(self, charge_point_id: str, password_hash: str, reason: str) -> None:
        """The charge point's Basic-auth password is now the one with this hash."""
        await asyncio.to_thread(self._store.side.set_password_hash, charge_point_id, password_hash)
        await self.change(charge_point_id, lambda cp: cp.record_credentials_changed(has_password=True, reason=reason))

    async def history(self, charge_point_id: str, after: int = 0, limit: int | None = None) -> list[Any]:
        """The charge point's events after version ``after``, oldest first."""
        await self.read(charge_point_id)  # NotRegistered for an unknown id
        return await asyncio.to_thread(lambda: list(self._store.history(charge_point_id, after=after, limit=limit)))

    async def state_at(self, charge_point_id: str, moment: datetime | None) -> tuple[ChargePoint | None, int]:
        """(the aggregate as it was at ``moment``, events applied); raises NotRegistered for no history."""
        events = await asyncio.to_thread(lambda: list(self._store.history(charge_point_id)))
        if not events:
            raise NotRegistered(f"unknown charge point {charge_point_id}")
        return state_at(iter(events), moment)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.registered))
