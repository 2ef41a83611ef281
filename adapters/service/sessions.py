"""The connection registry: which charge points hold a live session on this node.

A session is a connected charge point's actor (adapters/ocpp/actor.py); the
service layer knows it only by this protocol, so it never imports an entry
point. Its failures are the outcomes an operator's command can meet.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Iterator, Protocol, TypeVar

from adapters.store import Command
from domain.chargepoint import ChargePoint

T = TypeVar("T")


class NotConnected(Exception):
    """The charge point has no live session (or lost it before answering)."""


class CallTimeout(Exception):
    """The charge point did not answer a call within the call timeout."""


class CallRejected(Exception):
    """The charge point answered a call with a CALLERROR (or an invalid reply)."""

    def __init__(self, charge_point_id: str, action: str, code: str, description: str,
                 details: dict[str, Any]) -> None:
        super().__init__(f"{charge_point_id} answered {action} with {code}")
        self.code = code
        self.description = description
        self.details = details


class Session(Protocol):
    id: str
    gone: asyncio.Event  # set once its disconnection is recorded

    @property
    def stopped(self) -> bool: ...

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def close_socket(self) -> None: ...

    async def change(self, command: Command[T]) -> T:
        """Runs the command on the aggregate in the session's order; returns once committed."""
        ...

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Sends a CSMS-initiated call; raises NotConnected, CallTimeout or CallRejected."""
        ...

    def committed_state(self) -> ChargePoint | None:
        """The aggregate as durably stored, when the session holds it in memory."""
        ...


class Sessions:
    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}
        self._arriving: dict[str, asyncio.Event] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._by_id.values()))

    def get(self, charge_point_id: str) -> Session | None:
        """The registered session, running or on its way out."""
        return self._by_id.get(charge_point_id)

    def live(self, charge_point_id: str) -> Session | None:
        """The session that still takes work, if any."""
        session = self._by_id.get(charge_point_id)
        return session if session is not None and not session.stopped else None

    @contextlib.contextmanager
    def arrival(self, charge_point_id: str) -> Iterator[None]:
        """A connection on its way in (its handshake done, its lease being taken): see ``arriving``."""
        arriving = self._arriving[charge_point_id] = asyncio.Event()
        try:
            yield
        finally:
            arriving.set()
            if self._arriving.get(charge_point_id) is arriving:
                del self._arriving[charge_point_id]

    def arriving(self, charge_point_id: str) -> asyncio.Event | None:
        """Set once the arriving connection is registered (or failed): a command waits for it
        rather than find the charge point not connected."""
        return self._arriving.get(charge_point_id)

    def add(self, session: Session) -> None:
        self._by_id[session.id] = session

    def remove(self, session: Session) -> None:
        """Forgets ``session``, unless a newer one took its place already."""
        if self._by_id.get(session.id) is session:
            del self._by_id[session.id]
