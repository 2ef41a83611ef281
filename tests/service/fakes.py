"""Fakes at the socket edge, for the service layer and the actor.

`FakeSocket` is what an actor writes to: the frames it sends are kept, its
close is recorded. `FakeSession` stands in for the actor where the actor would
drag a socket in (Connections, Commands): its changes are committed for real,
one at a time as in the actor's mailbox; its calls are answered by the test.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, Coroutine

import orjson

from adapters.service.chargepoints import ChargePoints
from adapters.service.sessions import Command, T
from domain.chargepoint import ChargePoint

SAFETY = 10.0  # a safety net against a hung test; nothing is timed by it

Payload = dict[str, Any]


async def within_safety(awaitable: Awaitable[T]) -> T:
    """Awaits something that must happen; a hang fails the test instead of stalling the suite."""
    return await asyncio.wait_for(awaitable, SAFETY)


class FrozenClock:
    """The service's clock; it moves only when the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FakeSocket:
    """A charge point's WebSocket as the actor sees it: `send` and `close`."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False
        # Called with each frame (decoded) at the moment it is sent, before it counts as sent.
        self.on_send: Callable[[list[Any]], Awaitable[None]] | None = None
        self._unread: asyncio.Queue[list[Any]] = asyncio.Queue()

    async def send(self, frame: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("the socket is closed")
        message = orjson.loads(frame)
        if self.on_send is not None:
            await self.on_send(message)
        self.sent.append(bytes(frame))
        self._unread.put_nowait(message)

    async def close(self) -> None:
        self.closed = True

    async def next_frame(self) -> list[Any]:
        """The next frame the actor sent (waits for it)."""
        return await within_safety(self._unread.get())


@dataclass
class OutstandingCall:
    action: str
    payload: Payload
    reply: asyncio.Future[Payload]


class FakeSession:
    """A connected charge point without the OCPP actor (the Session of adapters/service/sessions.py).

    Calls whose action is in `answers` are answered at once (an exception is
    raised); the others wait in `unanswered` until the test sets their reply.
    """

    def __init__(self, charge_point_id: str, charge_points: ChargePoints,
                 answers: dict[str, Payload | Exception] | None = None) -> None:
        self.id = charge_point_id
        self.gone = asyncio.Event()
        self.started = False
        self.sockets_closed = 0
        self.calls: list[tuple[str, Payload]] = []
        self.unanswered: asyncio.Queue[OutstandingCall] = asyncio.Queue()
        # What the endpoint does once the socket closed (e.g. record the disconnection), in a task of its own.
        self.on_close: Callable[[], Coroutine[Any, Any, None]] | None = None
        # While set and clear, changes wait before committing: a slow store.
        self.gate: asyncio.Event | None = None
        self._answers = dict(answers or {})
        self._handle = charge_points.handle(charge_point_id)
        self._turn = asyncio.Lock()  # one change at a time, as in the actor's mailbox
        self._requested = asyncio.Condition()
        self.changes_requested = 0
        self._stopped = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self._stopped = True

    async def close_socket(self) -> None:
        self.sockets_closed += 1
        if self.on_close is not None:
            task = asyncio.get_running_loop().create_task(self.on_close())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def change(self, command: Command[T]) -> T:
        async with self._requested:
            self.changes_requested += 1
            self._requested.notify_all()
        async with self._turn:
            if self.gate is not None:
                await self.gate.wait()
            return await self._handle.commit_change(command)

    async def changes_requested_reach(self, count: int) -> None:
        async with self._requested:
            await within_safety(self._requested.wait_for(lambda: self.changes_requested >= count))

    async def call(self, action: str, payload: Payload) -> Payload:
        self.calls.append((action, payload))
        if action in self._answers:
            answer = self._answers[action]
            if isinstance(answer, Exception):
                raise answer
            return answer
        reply: asyncio.Future[Payload] = asyncio.get_running_loop().create_future()
        self.unanswered.put_nowait(OutstandingCall(action, payload, reply))
        return await reply

    async def next_unanswered(self) -> OutstandingCall:
        return await within_safety(self.unanswered.get())

    def committed_state(self) -> ChargePoint | None:
        return self._handle.committed_state()
