"""One actor per connected charge point: a mailbox, one message at a time.

The actor owns the charge point's aggregate while the charge point is
connected. Everything that changes the aggregate runs as a job in its mailbox,
in arrival order; a job's events are committed before its reply goes out.
The actor is also the only way to call the charge point: one outstanding
call at a time, a timeout, and late replies dropped.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from typing import Any, Awaitable, Callable, TypeVar

import orjson

from adapters.ocpp.admissibility import refuse_inadmissible
from adapters.ocpp.framing import (
    Call,
    CallError,
    CallResult,
    OcppError,
    UnparseableFrame,
    call_frame,
    error_frame,
    parse_frame,
    result_frame,
)
from adapters.ocpp.schemas import CENTRAL_SYSTEM_ACTIONS, CHARGE_POINT_ACTIONS, Schemas
from adapters.service.chargepoints import ChargePoints
from adapters.service.facts import FactSource
from adapters.service.sessions import CallRejected, CallTimeout, NotConnected
from adapters.service.settings import Clock
from adapters.store import Command
from domain.answers import ANSWERS
from domain.chargepoint import ChargePoint
from domain.redaction import recorded_reply, recorded_request

log = logging.getLogger(__name__)

T = TypeVar("T")

# Per connection, for charge points that resend a CALL whose answer they missed:
# in practice the last one or two; each remembered reply costs ~150 bytes.
REMEMBERED_REPLIES = 32
MAILBOX_SIZE = 64


class ChargePointActor:
    """A connected charge point's session (adapters/service/sessions.py's Session)."""

    def __init__(
        self,
        charge_point_id: str,
        send: Callable[[bytes], Awaitable[None]],
        close: Callable[[], Awaitable[Any]],
        *,
        charge_points: ChargePoints,
        facts: FactSource,
        schemas: Schemas,
        call_timeout: float,
        clock: Clock,
    ) -> None:
        self.id = charge_point_id
        self._charge_points = charge_points
        self._facts = facts
        self._schemas = schemas
        self._call_timeout = call_timeout
        self._now = clock
        self._aggregate = charge_points.handle(charge_point_id)
        self._send = send
        self._close = close
        # Bounded: a charge point that floods us is slowed down by TCP, not by our memory.
        self._mailbox: asyncio.Queue[Callable[[], Awaitable[None]] | None] = asyncio.Queue(MAILBOX_SIZE)
        self._replies: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._call_lock = asyncio.Lock()
        self._pending: tuple[str, asyncio.Future[CallResult | CallError]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._closing = False  # no new jobs enter the mailbox once set
        self.gone = asyncio.Event()  # set once its disconnection is recorded

    # ---- life cycle --------------------------------------------------------

    @property
    def stopped(self) -> bool:
        return self._stopped

    def committed_state(self) -> ChargePoint | None:
        return self._aggregate.committed_state()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"actor {self.id}")

    async def _run(self) -> None:
        while True:
            job = await self._mailbox.get()
            if job is None:
                break
            try:
                await job()
            except Exception:
                log.exception("job for %s failed", self.id)
        self._stopped = True

    async def stop(self) -> None:
        """Lets queued jobs finish, then ends; a pending call fails as disconnected."""
        self._closing = True
        if self._pending is not None and not self._pending[1].done():
            self._pending[1].set_exception(NotConnected(f"{self.id} is not connected"))
        await self._mailbox.put(None)
        if self._task is not None:
            await self._task
        self._stopped = True

    async def close_socket(self) -> None:
        await self._close()

    # ---- jobs ----------------------------------------------------------------

    async def ask(self, job: Callable[[], Awaitable[T]]) -> T:
        """Runs ``job`` in the mailbox's order and returns its result."""
        if self._closing:
            # Nothing queued after the stop mark would run: wait for the mailbox
            # to drain, then run the job directly, still one at a time.
            if self._task is not None:
                await asyncio.shield(self._task)
            return await job()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()

        async def run() -> None:
            try:
                result = await job()
            except BaseException as error:
                if not future.done():
                    future.set_exception(error)
            else:
                if not future.done():
                    future.set_result(result)

        await self._mailbox.put(run)
        return await future

    async def change(self, command: Command[T]) -> T:
        if self._closing:
            # After the stop mark (e.g. a call failing because the socket went):
            # let the mailbox drain, then write through whoever owns the
            # charge point now, a new connection's actor or a one-off handle.
            if self._task is not None:
                await asyncio.shield(self._task)
            return await self._charge_points.change(self.id, command)
        return await self.ask(lambda: self._aggregate.commit_change(command))

    # ---- frames from the charge point -----------------------------------------

    async def receive(self, data: str | bytes) -> None:
        try:
            frame = parse_frame(data)
        except UnparseableFrame as error:
            log.warning("%s: dropped a frame: %s: %.200r", self.id, error, data)
            return
        except OcppError as error:
            # In the mailbox, so the error is sent in order with earlier answers.
            answer = error_frame(error.details["messageId"], error.code, error.description)
            await self._mailbox.put(lambda: self._reply(answer))
            return
        if isinstance(frame, Call):
            await self._mailbox.put(lambda: self._answer(frame))
        else:
            self._take_reply(frame)

    async def _answer(self, call: Call) -> None:
        # Encoded once: it names the call for repeats and is searched for NULs.
        encoded = orjson.dumps([call.action, call.payload], option=orjson.OPT_SORT_KEYS)
        key = (call.message_id, _fingerprint(encoded))
        remembered = self._replies.get(key)
        if remembered is not None:
            # The same CALL again (id, action and payload) on this connection: answered, not redone.
            await self._reply(remembered)
            return
        try:
            reply = await self._handle(call, encoded)
        except OcppError as error:
            frame = error_frame(call.message_id, error.code, error.description, error.details)
        except Exception:
            log.exception("%s: %s %s failed", self.id, call.action, call.message_id)
            # Not remembered: a retry of this message id, once the fault is
            # gone, must be processed, not told the same failure again.
            await self._reply(
                error_frame(call.message_id, "InternalError", "the central system could not process this call")
            )
            return
        else:
            frame = result_frame(call.message_id, reply)
        # orjson's output keeps its 4 KiB working buffer: remember an exact-size copy.
        self._replies[key] = bytes(memoryview(frame))
        if len(self._replies) > REMEMBERED_REPLIES:
            self._replies.popitem(last=False)
        await self._reply(frame)

    async def _reply(self, frame: bytes) -> None:
        try:
            await self._send(frame)
        except ConnectionError:
            log.info("%s: the connection closed before a reply could go out", self.id)

    async def _handle(self, call: Call, encoded: bytes) -> dict[str, Any]:
        answer = ANSWERS.get(call.action)
        if answer is None:
            if call.action in CENTRAL_SYSTEM_ACTIONS or call.action in CHARGE_POINT_ACTIONS:
                raise OcppError("NotSupported", f"{call.action} is not served by this central system")
            raise OcppError("NotImplemented", f"unknown action {call.action!r}")
        assert call.action in CHARGE_POINT_ACTIONS
        schemas = self._schemas
        schemas.validate_request(call.action, call.payload)
        refuse_inadmissible(call.action, call.payload, schemas, encoded)
        facts = self._facts()

        def command(cp: ChargePoint) -> dict[str, Any]:
            reply = answer(cp, call.message_id, call.payload, facts)
            schemas.validate_response(call.action, reply)  # our bug, never sent
            return reply

        try:
            return await self._aggregate.commit_change(command)
        except OcppError as error:
            log.error("%s: invalid reply to %s: %s", self.id, call.action, error)
            raise OcppError("InternalError", "the central system produced an invalid reply") from None

    # ---- calls to the charge point ------------------------------------------------

    def _take_reply(self, frame: CallResult | CallError) -> None:
        pending = self._pending
        if pending is None or pending[0] != frame.message_id or pending[1].done():
            log.warning("%s: dropped a reply to no outstanding call: %s", self.id, frame.message_id)
            return
        pending[1].set_result(frame)

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Sends a call and returns the charge point's reply payload.

        Raises NotConnected, CallTimeout or CallRejected; every outcome is history.
        """
        recorded = recorded_request(action, payload)
        async with self._call_lock:
            if self._stopped or self._closing:
                raise NotConnected(f"{self.id} is not connected")
            message_id = str(uuid.uuid4())
            await self.change(
                lambda cp: cp.record_call_sent(
                    message_id=message_id, action=action, request=recorded, sent_at=self._now()
                )
            )
            future: asyncio.Future[CallResult | CallError] = asyncio.get_running_loop().create_future()
            self._pending = (message_id, future)
            try:
                await self._send(call_frame(message_id, action, payload))
                frame = await asyncio.wait_for(future, self._call_timeout)
            except TimeoutError:
                await self.change(
                    lambda cp: cp.record_call_timeout(
                        message_id=message_id, action=action, request=recorded, timed_out_at=self._now()
                    )
                )
                raise CallTimeout(
                    f"{self.id} did not answer {action} within {self._call_timeout:g} s"
                ) from None
            except (NotConnected, ConnectionError) as error:
                await self.change(
                    lambda cp: cp.record_call_error(
                        message_id=message_id,
                        action=action,
                        request=recorded,
                        error_code="ConnectionLost",
                        error_description="the charge point disconnected before answering",
                        error_details={},
                        received_at=self._now(),
                    )
                )
                raise NotConnected(f"{self.id} is not connected") from error
            finally:
                self._pending = None
            return await self._record_reply(message_id, action, recorded, frame)

    async def _record_reply(
        self, message_id: str, action: str, payload: dict[str, Any], frame: CallResult | CallError
    ) -> dict[str, Any]:
        now = self._now()
        if isinstance(frame, CallResult):
            try:
                self._schemas.validate_response(action, frame.payload)
                # What we record of a reply, every read model must hold, as for a CALL.
                refuse_inadmissible(f"{action}Response", frame.payload, self._schemas)
            except OcppError as error:
                frame = CallError(message_id, error.code, f"invalid {action} reply: {error.description}", {})
            else:
                reply = frame.payload
                kept = recorded_reply(action, reply)  # a reported secret is not kept
                await self.change(
                    lambda cp: cp.record_call_answer(
                        message_id=message_id, action=action, request=payload, reply=kept, received_at=now
                    )
                )
                return reply
        failed = frame
        await self.change(
            lambda cp: cp.record_call_error(
                message_id=message_id,
                action=action,
                request=payload,
                error_code=failed.code,
                error_description=failed.description,
                error_details=failed.details,
                received_at=now,
            )
        )
        raise CallRejected(self.id, action, failed.code, failed.description, failed.details)


def _fingerprint(encoded: bytes) -> int:
    """What makes a CALL a repeat besides its id: its action and payload, as encoded with sorted keys
    (a 64-bit digest, not the payload)."""
    # Message ids are unique per sender only within a session (OCPP-J section 4.1.1):
    # the same id with another action or payload is a new call, answered as such.
    # Python's bytes hash is SipHash keyed at random per process: a sender cannot aim a
    # collision, and a chance one among the 32 replies kept under one id is out of reach;
    # it costs a tenth of a BLAKE2 digest (0.2 against 2 us for a 10-value MeterValues).
    return hash(encoded)
