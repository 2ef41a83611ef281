"""ChargePoints and AggregateHandle (adapters/service/chargepoints.py): registering, changing, reading.

A write goes through the live session or a one-off handle, is committed
before it returns, and runs again on fresh state after a lost race.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from adapters.service.chargepoints import ChargePoints, NotRegistered
from adapters.service.passwords import verify_password
from adapters.service.sessions import Sessions
from adapters.store import EventStore
from domain.chargepoint import ChargePoint
from domain.facts import Facts
from tests.service.conftest import NOW
from tests.service.fakes import FakeSession
from tests.stories import event_names, registered

CP = "CP-1"
PASSWORD = "Correct-Horse-42"


def heartbeat(message_id: str) -> Any:
    """A command: the charge point's heartbeat, recorded."""
    facts = Facts(now=NOW, heartbeat_interval=300, id_tag_info=lambda _: {"status": "Invalid"},
                  allocate_transaction_id=lambda: 1)
    return lambda cp: cp.answer_heartbeat(message_id, {}, facts)


def message_ids(store: EventStore, charge_point_id: str) -> list[str]:
    return [event.message_id for event in store.history(charge_point_id) if hasattr(event, "message_id")]


# ---- registering ----------------------------------------------------------------------------


async def test_registering_says_whether_the_charge_point_is_new_and_updates_its_description(
    charge_points: ChargePoints, store: EventStore
) -> None:
    first = await charge_points.register(CP, description="Car park", password=None)  # when registered
    again = await charge_points.register(CP, description="Car park, level 2", password=None)  # and again

    assert (first, again) == (True, False)  # then
    assert event_names(store, CP) == ["Registered", "DetailsUpdated"]
    assert (await charge_points.read(CP)).description == "Car park, level 2"


async def test_a_password_given_at_registration_is_kept_as_a_hash_only(
    charge_points: ChargePoints, store: EventStore
) -> None:
    await charge_points.register(CP, description="", password=PASSWORD)  # when

    stored = await charge_points.password_hash(CP)  # then
    assert stored is not None and PASSWORD not in stored and verify_password(PASSWORD, stored)
    assert event_names(store, CP) == ["Registered", "CredentialsChanged"]
    assert (await charge_points.read(CP)).has_password is True


# ---- changing -------------------------------------------------------------------------------


async def test_a_change_to_a_connected_charge_point_takes_its_turn_in_the_live_session(
    charge_points: ChargePoints, sessions: Sessions, store: EventStore
) -> None:
    await charge_points.register(CP, description="", password=None)  # given a connected charge point
    session = FakeSession(CP, charge_points)
    sessions.add(session)

    await charge_points.change(CP, heartbeat("beat-1"))  # when

    assert session.changes_requested == 1  # then the session made it, and it is stored
    assert event_names(store, CP) == ["Registered", "HeartbeatReceived"]
    assert await charge_points.read(CP) is session.committed_state()  # read from the session's memory


async def test_a_change_to_a_charge_point_without_a_live_session_goes_through_a_one_off_handle(
    charge_points: ChargePoints, sessions: Sessions, store: EventStore
) -> None:
    await charge_points.register(CP, description="", password=None)  # given a session on its way out
    leaving = FakeSession(CP, charge_points)
    sessions.add(leaving)
    await leaving.stop()

    await charge_points.change(CP, heartbeat("beat-1"))  # when

    assert leaving.changes_requested == 0  # then
    assert event_names(store, CP) == ["Registered", "HeartbeatReceived"]


async def test_a_change_that_lost_a_race_runs_again_on_the_fresh_state(
    charge_points: ChargePoints, store: EventStore
) -> None:
    await charge_points.register(CP, description="", password=None)  # given a handle holding version 1
    handle = charge_points.handle(CP)
    await handle.load()
    await charge_points.change(CP, heartbeat("the-other-writer"))  # and another writer stored version 2 first
    versions_seen: list[int] = []

    def command(cp: ChargePoint) -> str:
        versions_seen.append(cp.version)
        heartbeat("ours")(cp)
        return "done"

    result = await handle.commit_change(command)  # when

    assert result == "done"  # then it ran on version 1, lost, and ran again on version 2
    assert versions_seen == [1, 2]
    assert message_ids(store, CP) == ["the-other-writer", "ours"]
    held = handle.committed_state()
    assert held is not None and held.version == 3


SNAPSHOT_EVERY = 200  # README: snapshots every 200 events (a figure of its own, not the code's constant)


async def test_a_change_that_crosses_a_snapshot_mark_leaves_a_snapshot(
    charge_points: ChargePoints, store: EventStore
) -> None:
    await charge_points.register(CP, description="", password=None)  # given version 1
    handle = charge_points.handle(CP)

    def beats(cp: ChargePoint) -> None:
        for n in range(SNAPSHOT_EVERY):
            heartbeat(f"beat-{n}")(cp)

    await handle.commit_change(beats)  # when the change takes it past version 200

    assert store.app.snapshots is not None  # then
    assert [s.originator_version for s in store.app.snapshots.get(CP)] == [SNAPSHOT_EVERY + 1]


async def test_the_snapshot_is_taken_at_version_200_and_not_before(
    charge_points: ChargePoints, store: EventStore
) -> None:
    await charge_points.register(CP, description="", password=None)  # given version 1
    handle = charge_points.handle(CP)

    def beats(count: int) -> Callable[[ChargePoint], None]:
        def change(cp: ChargePoint) -> None:
            for n in range(count):
                heartbeat(f"beat-{cp.version}-{n}")(cp)
        return change

    await handle.commit_change(beats(SNAPSHOT_EVERY - 2))  # when it reaches version 199
    assert store.app.snapshots is not None
    before = [s.originator_version for s in store.app.snapshots.get(CP)]
    await handle.commit_change(beats(1))  # and then 200

    assert before == []  # then
    assert [s.originator_version for s in store.app.snapshots.get(CP)] == [SNAPSHOT_EVERY]


async def test_a_change_that_fails_leaves_nothing_stored_and_nothing_half_done_in_memory(
    charge_points: ChargePoints, store: EventStore
) -> None:
    await charge_points.register(CP, description="", password=None)  # given
    handle = charge_points.handle(CP)

    def half_done(cp: ChargePoint) -> None:
        heartbeat("half")(cp)
        raise ValueError("a rule refused it")

    with pytest.raises(ValueError):  # when
        await handle.commit_change(half_done)

    assert event_names(store, CP) == ["Registered"]  # then
    reloaded = await handle.load()
    assert reloaded is not None and reloaded.version == 1 and reloaded.pending_events == []


# ---- reading and knowing who is registered ------------------------------------------------------


async def test_reading_an_unknown_charge_point_raises_not_registered(charge_points: ChargePoints) -> None:
    with pytest.raises(NotRegistered):
        await charge_points.read("CP-NOBODY")
    with pytest.raises(NotRegistered):
        await charge_points.history("CP-NOBODY")


async def test_committed_registrations_fill_the_registered_set(charge_points: ChargePoints) -> None:
    await charge_points.register("CP-2", description="", password=None)  # when two are registered
    await charge_points.register(CP, description="", password=None)
    await charge_points.change(CP, heartbeat("beat-1"))  # and other events are committed

    assert charge_points.registered == {CP, "CP-2"}  # then
    assert list(charge_points) == [CP, "CP-2"]


async def test_a_charge_point_only_the_store_knows_exists(charge_points: ChargePoints, store: EventStore) -> None:
    store.commit(registered("CP-ELSEWHERE").collect_events())  # given one registered by another node

    assert "CP-ELSEWHERE" not in charge_points.registered  # then this node never saw it committed
    assert await charge_points.exists("CP-ELSEWHERE") is True
    assert await charge_points.exists("CP-NOBODY") is False
