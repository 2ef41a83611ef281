"""The actor (adapters/ocpp/actor.py): one mailbox per charge point, answers after commit, one call at a time.

A real store and group-commit writer behind it; only the socket is fake.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, AsyncIterator, Awaitable, Callable

import orjson
import pytest

from adapters.ocpp.actor import ChargePointActor
from adapters.ocpp.schemas import Schemas
from adapters.service.chargepoints import ChargePoints
from adapters.service.facts import FactSource
from adapters.service.sessions import CallRejected, CallTimeout, NotConnected
from adapters.store import EventStore
from tests.service.fakes import SAFETY, FakeSocket, FrozenClock, within_safety
from tests.stories import event_names

CP = "CP-1"
BOOT = {"chargePointVendor": "Acme", "chargePointModel": "X1"}
GET_CONFIGURATION = {"key": ["HeartbeatInterval"]}
CONFIGURATION = {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]}
TINY_TIMEOUT = 0.05  # the call timeout under test; nothing waits on it to synchronise
SCHEMAS = Schemas()
REPEAT_WINDOW = 32  # README: the last 32 calls per connection are remembered
MAILBOX_FRAMES = 64  # README: each charge point's mailbox holds up to 64 frames

StartActor = Callable[..., Awaitable[ChargePointActor]]


def frame(*parts: Any) -> bytes:
    return orjson.dumps(list(parts))


@pytest.fixture
def socket() -> FakeSocket:
    return FakeSocket()


@pytest.fixture
async def start_actor(charge_points: ChargePoints, facts: FactSource, clock: FrozenClock,
                      socket: FakeSocket) -> AsyncIterator[StartActor]:
    """Starts the actor of a registered charge point on the fake socket; stops it after the test."""
    started: list[ChargePointActor] = []

    async def start(call_timeout: float = SAFETY, facts_of: Callable[[FactSource], Any] = lambda f: f
                    ) -> ChargePointActor:
        await charge_points.register(CP, description="", password=None)
        actor = ChargePointActor(CP, socket.send, socket.close, charge_points=charge_points, facts=facts_of(facts),
                                 schemas=SCHEMAS, call_timeout=call_timeout, clock=clock)
        actor.start()
        started.append(actor)
        return actor

    yield start
    for actor in started:
        await actor.stop()


# ---- calls from the charge point ------------------------------------------------------------


async def test_a_call_is_answered_only_once_its_events_are_committed(
    start_actor: StartActor, socket: FakeSocket, store: EventStore
) -> None:
    stored_when_answered: list[list[str]] = []  # given a socket that reads the store as each frame goes out

    async def witness(_: list[Any]) -> None:
        stored_when_answered.append(await asyncio.to_thread(event_names, store, CP))

    socket.on_send = witness
    actor = await start_actor()

    await actor.receive(frame(2, "boot-1", "BootNotification", BOOT))  # when
    answer = await socket.next_frame()

    assert answer[:2] == [3, "boot-1"] and answer[2]["status"] == "Accepted"  # then
    assert stored_when_answered == [["Registered", "Booted"]]


async def test_a_repeated_message_id_gets_the_remembered_reply_and_is_not_processed_again(
    start_actor: StartActor, socket: FakeSocket, store: EventStore, clock: FrozenClock
) -> None:
    actor = await start_actor()  # given a heartbeat answered
    await actor.receive(frame(2, "beat-1", "Heartbeat", {}))
    await socket.next_frame()
    clock.advance(minutes=5)  # a new answer would tell another time

    await actor.receive(frame(2, "beat-1", "Heartbeat", {}))  # when it comes again under the same id
    await socket.next_frame()

    assert socket.sent[1] == socket.sent[0]  # then the very same reply, and one exchange in history
    assert event_names(store, CP) == ["Registered", "HeartbeatReceived"]


async def test_the_last_32_calls_are_remembered_and_an_older_one_is_processed_afresh(
    start_actor: StartActor, socket: FakeSocket, store: EventStore
) -> None:
    actor = await start_actor()  # given 33 heartbeats answered on this connection
    for n in range(REPEAT_WINDOW + 1):
        await actor.receive(frame(2, f"beat-{n}", "Heartbeat", {}))
        await socket.next_frame()

    await actor.receive(frame(2, "beat-1", "Heartbeat", {}))  # when the oldest of the last 32 comes again
    await socket.next_frame()
    remembered = event_names(store, CP).count("HeartbeatReceived")
    await actor.receive(frame(2, "beat-0", "Heartbeat", {}))  # and the one before it
    await socket.next_frame()

    assert remembered == REPEAT_WINDOW + 1  # then the first is answered from memory
    assert event_names(store, CP).count("HeartbeatReceived") == REPEAT_WINDOW + 2  # the second is processed


class FailingOnce:
    """Facts whose first use fails, as when the store is briefly unavailable."""

    def __init__(self, facts: FactSource) -> None:
        self._facts = facts
        self.failed = False

    def __call__(self) -> Any:
        if not self.failed:
            self.failed = True
            raise RuntimeError("the store is briefly unavailable")
        return self._facts()


async def test_an_internal_error_has_no_traceback_and_a_retry_is_processed_afresh(
    start_actor: StartActor, socket: FakeSocket, store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    actor = await start_actor(facts_of=FailingOnce)  # given a fault on the first call

    await actor.receive(frame(2, "beat-1", "Heartbeat", {}))  # when a heartbeat comes, then again under its id
    failed = await socket.next_frame()
    await actor.receive(frame(2, "beat-1", "Heartbeat", {}))
    retried = await socket.next_frame()

    assert failed[:3] == [4, "beat-1", "InternalError"]  # then the fault is InternalError, without its details
    assert "Traceback" not in socket.sent[0].decode() and "briefly unavailable" not in socket.sent[0].decode()
    assert "briefly unavailable" in caplog.text  # (which the log keeps)
    assert retried[:2] == [3, "beat-1"] and "currentTime" in retried[2]  # the retry is processed
    assert event_names(store, CP) == ["Registered", "HeartbeatReceived"]


async def test_an_invalid_reply_of_our_own_is_internal_error_and_nothing_is_recorded(
    start_actor: StartActor, socket: FakeSocket, store: EventStore
) -> None:
    # given facts that make BootNotification's interval a string, which its schema refuses
    actor = await start_actor(facts_of=lambda facts: lambda: dataclasses.replace(facts(), heartbeat_interval="300"))

    await actor.receive(frame(2, "boot-1", "BootNotification", BOOT))  # when
    answer = await socket.next_frame()

    assert answer[:3] == [4, "boot-1", "InternalError"]  # then
    assert event_names(store, CP) == ["Registered"]


async def test_the_mailbox_holds_64_frames_and_the_next_waits_for_room(
    start_actor: StartActor, socket: FakeSocket
) -> None:
    sending, release = asyncio.Event(), asyncio.Event()  # given a reply stuck on its way out

    async def stuck(_: list[Any]) -> None:
        sending.set()
        await release.wait()

    socket.on_send = stuck
    actor = await start_actor()
    await actor.receive(frame(2, "beat-0", "Heartbeat", {}))
    await within_safety(sending.wait())

    for n in range(1, MAILBOX_FRAMES + 1):  # when 64 more frames come, and one beyond
        await within_safety(actor.receive(frame(2, f"beat-{n}", "Heartbeat", {})))
    beyond = asyncio.ensure_future(actor.receive(frame(2, "beat-65", "Heartbeat", {})))
    for _ in range(20):  # nothing can make room while the reply is stuck: let every ready task run
        await asyncio.sleep(0)
    waited = not beyond.done()
    release.set()
    await within_safety(beyond)
    answers = [(await socket.next_frame())[1] for _ in range(MAILBOX_FRAMES + 2)]

    assert waited  # then the frame beyond 64 waited (the endpoint stops reading the socket meanwhile)
    assert answers == [f"beat-{n}" for n in range(MAILBOX_FRAMES + 2)]  # and every frame was answered, in order


REFUSED_CALLS = {
    "an unknown action": ("MakeCoffee", {}, "NotImplemented"),
    "an action only the central system sends": ("Reset", {"type": "Hard"}, "NotSupported"),
    "a status outside the enumeration": (
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"},
        "PropertyConstraintViolation",
    ),
    "a required field missing": ("BootNotification", {"chargePointVendor": "Acme"}, "OccurenceConstraintViolation"),
}


async def test_a_call_the_central_system_cannot_serve_gets_the_callerror_that_names_why(
    start_actor: StartActor, socket: FakeSocket, store: EventStore
) -> None:
    actor = await start_actor()  # given
    answers = {}

    for n, (case, (action, payload, _)) in enumerate(REFUSED_CALLS.items()):  # when each call comes
        await actor.receive(frame(2, f"m-{n}", action, payload))
        answers[case] = (await socket.next_frame())[:3]

    assert answers == {  # then each gets a CALLERROR with its code
        case: [4, f"m-{n}", code] for n, (case, (_, _, code)) in enumerate(REFUSED_CALLS.items())
    }
    assert event_names(store, CP) == ["Registered"]


async def test_an_unparseable_frame_is_dropped_and_the_next_call_is_still_answered(
    start_actor: StartActor, socket: FakeSocket
) -> None:
    actor = await start_actor()  # given

    for garbage in (b"not json at all", b"[2]", frame(2, 42, "Heartbeat", {})):  # when
        await actor.receive(garbage)
    await actor.receive(frame(2, "beat-1", "Heartbeat", {}))
    answer = await socket.next_frame()

    assert answer[:2] == [3, "beat-1"]  # then only the heartbeat was answered
    assert len(socket.sent) == 1


# ---- calls to the charge point --------------------------------------------------------------


async def test_a_reply_resolves_the_central_systems_call_and_both_are_history(
    start_actor: StartActor, socket: FakeSocket, store: EventStore
) -> None:
    actor = await start_actor()  # given

    call = asyncio.ensure_future(actor.call("GetConfiguration", GET_CONFIGURATION))  # when
    sent = await socket.next_frame()
    await actor.receive(frame(3, sent[1], CONFIGURATION))
    reply = await within_safety(call)

    assert sent[0] == 2 and sent[2:] == ["GetConfiguration", GET_CONFIGURATION]  # then
    assert reply == CONFIGURATION
    *_, call_sent, answered = store.history(CP)
    assert event_names(store, CP) == ["Registered", "CallSent", "CallAnswered"]
    assert call_sent.message_id == answered.message_id == sent[1]
    assert answered.reply == CONFIGURATION


async def test_a_callerror_reply_raises_call_rejected_and_is_recorded_as_call_failed(
    start_actor: StartActor, socket: FakeSocket, store: EventStore
) -> None:
    actor = await start_actor()  # given

    call = asyncio.ensure_future(actor.call("Reset", {"type": "Soft"}))  # when the charge point answers a CALLERROR
    sent = await socket.next_frame()
    await actor.receive(frame(4, sent[1], "NotSupported", "no resets here", {"why": "policy"}))

    with pytest.raises(CallRejected) as rejected:  # then
        await within_safety(call)
    assert (rejected.value.code, rejected.value.description) == ("NotSupported", "no resets here")
    *_, failed = store.history(CP)
    assert event_names(store, CP) == ["Registered", "CallSent", "CallFailed"]
    assert (failed.message_id, failed.error_code, failed.error_details) == (sent[1], "NotSupported", {"why": "policy"})


async def test_a_reply_that_breaks_the_schema_is_rejected_and_recorded_as_call_failed(
    start_actor: StartActor, socket: FakeSocket, store: EventStore
) -> None:
    actor = await start_actor()  # given

    call = asyncio.ensure_future(actor.call("Reset", {"type": "Soft"}))  # when the reply is no ResetResponse
    sent = await socket.next_frame()
    await actor.receive(frame(3, sent[1], {"status": "Maybe"}))

    with pytest.raises(CallRejected) as rejected:  # then
        await within_safety(call)
    assert rejected.value.code == "PropertyConstraintViolation"
    *_, failed = store.history(CP)
    assert type(failed).__name__ == "CallFailed" and failed.error_code == "PropertyConstraintViolation"


@pytest.mark.parametrize("reply, path", [
    ({"configurationKey": [{"key": "Vendor\x00Key", "readonly": True}]}, "configurationKey[0].key"),
    ({"status": "Accepted", "connectorId": 1, "scheduleStart": "0000-01-01T00:00:00Z"}, "scheduleStart"),
])
async def test_a_reply_no_store_can_hold_is_rejected_and_recorded_as_call_failed_without_it(
    start_actor: StartActor, socket: FakeSocket, store: EventStore, reply: dict[str, Any], path: str
) -> None:
    actor = await start_actor()  # given
    action, request = ("GetConfiguration", {}) if "configurationKey" in reply else (
        "GetCompositeSchedule", {"connectorId": 1, "duration": 60})

    call = asyncio.ensure_future(actor.call(action, request))  # when the reply holds a NUL or year 0
    sent = await socket.next_frame()
    await actor.receive(frame(3, sent[1], reply))

    with pytest.raises(CallRejected) as rejected:  # then it is refused like a CALL with such a value
        await within_safety(call)
    assert rejected.value.code == "PropertyConstraintViolation"
    assert path in rejected.value.description
    *_, failed = store.history(CP)
    assert type(failed).__name__ == "CallFailed" and failed.error_code == "PropertyConstraintViolation"
    assert "\x00" not in repr(failed.__dict__)  # nothing of it is kept


async def test_no_reply_in_time_raises_call_timeout_and_the_late_reply_is_not_paired_with_the_next_call(
    start_actor: StartActor, socket: FakeSocket, store: EventStore
) -> None:
    actor = await start_actor(call_timeout=TINY_TIMEOUT)  # given a call the charge point never answers in time
    with pytest.raises(CallTimeout):
        await within_safety(actor.call("Reset", {"type": "Soft"}))
    late = (await socket.next_frame())[1]
    await actor.receive(frame(3, late, {"status": "Rejected"}))  # its reply arrives with no call outstanding

    async def answer_late_then_own(sent: list[Any]) -> None:
        # The charge point answers the next call at once: first the old reply again, then its own.
        if sent[0] == 2:
            await actor.receive(frame(3, late, {"status": "Rejected"}))
            await actor.receive(frame(3, sent[1], {"status": "Accepted"}))

    socket.on_send = answer_late_then_own
    reply = await within_safety(actor.call("Reset", {"type": "Hard"}))  # when the next call goes out

    assert reply == {"status": "Accepted"}  # then it gets its own reply
    assert event_names(store, CP) == ["Registered", "CallSent", "CallTimedOut", "CallSent", "CallAnswered"]
    *_, timed_out, second, answered = store.history(CP)
    assert timed_out.message_id == late
    assert answered.message_id == second.message_id != late and answered.reply == {"status": "Accepted"}


async def test_a_second_call_goes_out_only_once_the_first_is_answered(
    start_actor: StartActor, socket: FakeSocket, store: EventStore
) -> None:
    actor = await start_actor()  # given a call outstanding
    first = asyncio.ensure_future(actor.call("Reset", {"type": "Soft"}))
    first_id = (await socket.next_frame())[1]
    first_answered = False
    answered_when_sent: list[bool] = []

    async def witness(sent: list[Any]) -> None:
        if sent[0] == 2:
            answered_when_sent.append(first_answered)

    socket.on_send = witness

    second = asyncio.ensure_future(actor.call("ClearCache", {}))  # when a second call is made
    for n in range(2):  # and the actor serves two of the charge point's calls meanwhile
        await actor.receive(frame(2, f"beat-{n}", "Heartbeat", {}))
        assert (await socket.next_frame())[:2] == [3, f"beat-{n}"]
    first_answered = True
    await actor.receive(frame(3, first_id, {"status": "Accepted"}))
    sent = await socket.next_frame()
    await actor.receive(frame(3, sent[1], {"status": "Accepted"}))

    assert sent[2] == "ClearCache" and answered_when_sent == [True]  # then it went out after the first's answer
    assert await within_safety(first) == await within_safety(second) == {"status": "Accepted"}
    assert [name for name in event_names(store, CP) if name.startswith("Call")] == [
        "CallSent", "CallAnswered", "CallSent", "CallAnswered",
    ]


async def test_a_call_outstanding_when_the_actor_stops_fails_as_not_connected(
    start_actor: StartActor, socket: FakeSocket, store: EventStore
) -> None:
    actor = await start_actor()  # given a call outstanding
    call = asyncio.ensure_future(actor.call("Reset", {"type": "Soft"}))
    await socket.next_frame()

    await actor.stop()  # when

    with pytest.raises(NotConnected):  # then
        await within_safety(call)
    *_, failed = store.history(CP)
    assert type(failed).__name__ == "CallFailed" and failed.error_code == "ConnectionLost"
    with pytest.raises(NotConnected):  # and nothing more is sent
        await actor.call("Reset", {"type": "Soft"})
