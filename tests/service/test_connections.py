"""Connections (adapters/service/connections.py): admission, takeover, disconnection, offline after a crash.

Sessions are fakes (tests/service/fakes.py) whose changes are committed for
real, so history is read from the store.
"""

from __future__ import annotations

import asyncio
import base64

import pytest

from adapters.service import connections as connections_module
from adapters.service import passwords as passwords_module
from adapters.service.chargepoints import ChargePoints
from adapters.service.connections import Connections, Refused
from adapters.service.passwords import FREE_FAILURES_PER_ADDRESS, PendingKeys, hash_password, verify_password
from adapters.service.sessions import Sessions
from adapters.store import EventStore
from tests.service.conftest import NOW
from tests.service.fakes import FakeSession, FrozenClock, within_safety
from tests.stories import event_names, registered

CP = "CP-1"
PASSWORD = "Correct-Horse-42"
NEW_PASSWORD = "Battery-Staple-77"
TINY_TAKEOVER_WAIT = 0.05  # the takeover wait under test; nothing waits on it to synchronise


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def connections(charge_points: ChargePoints, sessions: Sessions, pending_keys: PendingKeys,
                clock: FrozenClock) -> Connections:
    return Connections(charge_points, sessions, pending_keys, auto_register=False, clock=clock)


def disconnecting_on_close(session: FakeSession, connections: Connections) -> FakeSession:
    """As the endpoint does: once the socket closes, the session's disconnection is recorded."""
    session.on_close = lambda: connections.disconnect(session, "connection closed")
    return session


# ---- admission ------------------------------------------------------------------------------

REFUSALS = {
    "an identity that cannot be one": ("no/slashes", None, 400),
    "an unknown charge point": ("CP-NOBODY", basic("CP-NOBODY", PASSWORD), 404),
    "no credentials where a password is set": (CP, None, 401),
    "a wrong password": (CP, basic(CP, "Wrong-Password-1"), 401),
    "the right password under another name": (CP, basic("CP-2", PASSWORD), 401),
}


async def test_a_handshake_is_refused_with_the_status_that_says_why_and_the_right_password_admits(
    connections: Connections, charge_points: ChargePoints, store: EventStore
) -> None:
    await charge_points.register(CP, description="", password=PASSWORD)  # given a charge point with a password
    statuses: dict[str, int | str] = {}

    for case, (identity, authorization, _) in REFUSALS.items():  # when each handshake is tried
        try:
            await connections.admit(identity, authorization)
            statuses[case] = "admitted"
        except Refused as refused:
            statuses[case] = refused.status
    await connections.admit(CP, basic(CP, PASSWORD))

    assert statuses == {case: status for case, (_, _, status) in REFUSALS.items()}  # then each is refused as due
    assert event_names(store, CP) == ["Registered", "CredentialsChanged"]  # and nothing was recorded
    assert await charge_points.exists("CP-NOBODY") is False


async def test_after_three_wrong_passwords_a_charge_point_waits_and_no_password_is_hashed_meanwhile(
    connections: Connections, charge_points: ChargePoints, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await charge_points.register(CP, description="", password=PASSWORD)  # given a charge point with a password
    for _ in range(3):  # and three wrong guesses
        with pytest.raises(Refused):
            await connections.admit(CP, basic(CP, "Wrong-Password-1"), "192.0.2.7")
    hashed: list[str] = []
    monkeypatch.setattr(passwords_module, "verify_password",
                        lambda password, stored: hashed.append(password) or verify_password(password, stored))

    with pytest.raises(Refused) as waiting:  # when even the right password comes at once
        await connections.admit(CP, basic(CP, PASSWORD), "198.51.100.1")
    clock.advance(seconds=1)
    await connections.admit(CP, basic(CP, PASSWORD), "198.51.100.1")  # and again once the wait is over
    for _ in range(3):  # then the count starts afresh
        with pytest.raises(Refused) as wrong:
            await connections.admit(CP, basic(CP, "Wrong-Password-2"), "192.0.2.7")

    assert (waiting.value.status, waiting.value.retry_after) == (401, 1)  # then it waited, unhashed
    assert hashed == [PASSWORD, "Wrong-Password-2", "Wrong-Password-2", "Wrong-Password-2"]
    assert wrong.value.reason == "wrong password"


async def test_each_wrong_password_beyond_the_free_ones_doubles_the_wait_up_to_a_minute(
    connections: Connections, charge_points: ChargePoints, clock: FrozenClock
) -> None:
    await charge_points.register(CP, description="", password=PASSWORD)
    waits = []
    for _ in range(10):  # given a guesser who comes back as soon as it may
        with pytest.raises(Refused):
            await connections.admit(CP, basic(CP, "Wrong-Password-1"), "192.0.2.7")
        try:
            await connections.admit(CP, basic(CP, "Wrong-Password-1"), "192.0.2.7")
            waits.append(0)
        except Refused as refused:
            waits.append(refused.retry_after or 0)
            clock.advance(seconds=refused.retry_after or 0)

    assert waits == [0, 1, 2, 4, 8, 16, 32, 60, 60, 60]  # then


async def test_many_wrong_passwords_from_one_address_slow_every_charge_point_behind_it(
    connections: Connections, charge_points: ChargePoints
) -> None:
    for n in range(FREE_FAILURES_PER_ADDRESS):  # given one address guessing for many charge points
        await charge_points.register(f"CP-{n}", description="", password=PASSWORD)
        with pytest.raises(Refused):
            await connections.admit(f"CP-{n}", basic(f"CP-{n}", "Wrong-Password-1"), "192.0.2.7")

    with pytest.raises(Refused) as from_there:  # when a charge point behind it comes with its right password
        await connections.admit("CP-0", basic("CP-0", PASSWORD), "192.0.2.7")
    await connections.admit("CP-0", basic("CP-0", PASSWORD), "198.51.100.1")  # then elsewhere it gets in

    assert (from_there.value.status, from_there.value.retry_after) == (401, 1)


async def test_a_charge_point_without_a_password_is_admitted_without_credentials(
    connections: Connections, charge_points: ChargePoints
) -> None:
    await charge_points.register(CP, description="", password=None)  # given

    await connections.admit(CP, None)  # when, then no Refused


async def test_an_unknown_charge_point_is_registered_when_auto_registration_is_on(
    charge_points: ChargePoints, sessions: Sessions, pending_keys: PendingKeys, clock: FrozenClock,
    store: EventStore,
) -> None:
    welcoming = Connections(charge_points, sessions, pending_keys, auto_register=True, clock=clock)  # given

    await welcoming.admit("CP-NEW", None)  # when

    assert event_names(store, "CP-NEW") == ["Registered"]  # then
    assert (await charge_points.read("CP-NEW")).auto_registered is True
    assert "CP-NEW" in charge_points.registered


async def test_a_pending_authorization_key_admits_and_becomes_the_password(
    connections: Connections, charge_points: ChargePoints, pending_keys: PendingKeys, store: EventStore
) -> None:
    await charge_points.register(CP, description="", password=PASSWORD)  # given a new key sent, not yet answered
    pending_keys.add(CP, hash_password(NEW_PASSWORD))

    await connections.admit(CP, basic(CP, NEW_PASSWORD))  # when the charge point reconnects with it

    stored = await charge_points.password_hash(CP)  # then it is the password from now on
    assert stored is not None and verify_password(NEW_PASSWORD, stored)
    *_, adopted = store.history(CP)
    assert type(adopted).__name__ == "CredentialsChanged"
    assert adopted.reason == "charge point adopted the new AuthorizationKey"
    with pytest.raises(Refused) as refused:  # and the old one no longer admits
        await connections.admit(CP, basic(CP, PASSWORD))
    assert refused.value.status == 401


# ---- connecting and going -----------------------------------------------------------------


async def test_a_connection_is_recorded_and_its_session_takes_work(
    connections: Connections, charge_points: ChargePoints, sessions: Sessions, store: EventStore
) -> None:
    await charge_points.register(CP, description="", password=None)  # given
    session = FakeSession(CP, charge_points)

    await connections.connect(session, "10.0.0.1")  # when

    assert session.started and sessions.live(CP) is session  # then
    *_, connected = store.history(CP)
    assert type(connected).__name__ == "Connected" and connected.remote == "10.0.0.1"
    assert (await charge_points.read(CP)).online is True


async def test_a_new_connection_takes_over_and_the_old_ones_disconnection_is_recorded_first(
    connections: Connections, charge_points: ChargePoints, sessions: Sessions, store: EventStore
) -> None:
    await charge_points.register(CP, description="", password=None)  # given a connected charge point
    old = disconnecting_on_close(FakeSession(CP, charge_points), connections)
    await connections.connect(old, "10.0.0.1")

    new = FakeSession(CP, charge_points)  # when it connects again
    await connections.connect(new, "10.0.0.2")

    assert old.sockets_closed == 1 and old.stopped and old.gone.is_set()  # then the old one is closed and gone
    assert sessions.live(CP) is new
    assert event_names(store, CP) == ["Registered", "Connected", "Disconnected", "Connected"]
    _, first, gone, second = store.history(CP)
    assert (first.remote, gone.reason, second.remote) == ("10.0.0.1", "connection closed", "10.0.0.2")


async def test_an_old_connection_that_does_not_go_is_disconnected_by_the_takeover(
    connections: Connections, charge_points: ChargePoints, sessions: Sessions, store: EventStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connections_module, "TAKEOVER_WAIT", TINY_TAKEOVER_WAIT)
    await charge_points.register(CP, description="", password=None)  # given a connection whose socket never ends
    old = FakeSession(CP, charge_points)
    await connections.connect(old, "10.0.0.1")

    await connections.connect(FakeSession(CP, charge_points), "10.0.0.2")  # when it connects again
    await connections.disconnect(old, "connection closed")  # and the old socket's end is seen at last

    assert old.stopped and old.gone.is_set()  # then
    assert event_names(store, CP) == ["Registered", "Connected", "Disconnected", "Connected"]
    assert list(store.history(CP))[2].reason == "taken over by a new connection"


async def ready_callbacks_run() -> None:
    """Returns once everything already scheduled on the loop has run up to where it waits.

    asyncio runs ready callbacks in the order they were scheduled: a future
    resolved by a callback scheduled now resolves after them. Nothing is timed.
    """
    loop = asyncio.get_running_loop()
    turn: asyncio.Future[None] = loop.create_future()
    loop.call_soon(turn.set_result, None)
    await turn


async def test_a_connection_whose_end_is_seen_twice_while_it_is_being_recorded_has_one_disconnection(
    connections: Connections, charge_points: ChargePoints, store: EventStore
) -> None:
    await charge_points.register(CP, description="", password=None)  # given a connected charge point
    old = FakeSession(CP, charge_points)
    await connections.connect(old, "10.0.0.1")
    old.gate = asyncio.Event()  # on a slow store
    endpoint = asyncio.ensure_future(connections.disconnect(old, "connection closed"))  # whose end is being recorded
    await old.changes_requested_reach(2)

    takeover = asyncio.ensure_future(connections.disconnect(old, "taken over by a new connection"))  # when
    await ready_callbacks_run()  # it has done all it does before the store answers
    old.gate.set()
    await within_safety(asyncio.gather(endpoint, takeover))

    assert event_names(store, CP) == ["Registered", "Connected", "Disconnected"]  # then
    assert old.gone.is_set()


async def test_charge_points_left_online_by_a_crash_are_marked_offline(
    connections: Connections, charge_points: ChargePoints, store: EventStore
) -> None:
    left_online = registered(CP)  # given a charge point whose last event is Connected
    left_online.record_connection(remote="10.0.0.1", connected_at=NOW)
    store.commit(left_online.collect_events())

    await connections.mark_offline([CP])  # when

    assert event_names(store, CP) == ["Registered", "Connected", "Disconnected"]  # then
    assert list(store.history(CP))[-1].reason == "central system restarted"
    assert (await charge_points.read(CP)).online is False


async def test_disconnecting_all_closes_every_socket_and_records_every_disconnection(
    connections: Connections, charge_points: ChargePoints, sessions: Sessions, store: EventStore
) -> None:
    connected = []  # given two connected charge points
    for charge_point_id in ("CP-1", "CP-2"):
        await charge_points.register(charge_point_id, description="", password=None)
        connected.append(FakeSession(charge_point_id, charge_points))
        await connections.connect(connected[-1], "10.0.0.1")

    await connections.disconnect_all("central system stopping")  # when

    assert len(sessions) == 0  # then
    for session in connected:
        assert session.sockets_closed == 1 and session.stopped and session.gone.is_set()
        assert list(store.history(session.id))[-1].reason == "central system stopping"
