"""Group commit: one writer thread, many actors' events per transaction (adapters/store/group_commit.py).

Persist before you answer: a commit returns only once its events are stored,
and a lost race fails only the actor that lost it.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any, AsyncIterator, Sequence

import pytest

from adapters.store import ConflictError, EventStore
from adapters.store.group_commit import GroupCommitter
from adapters.store.hash_chain import stored_events_of, verify
from domain.chargepoint import ChargePoint
from tests.stories import facts_at, loaded, replayed_from_the_event_table

NOW = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
GATE_TIMEOUT = 30.0  # only a safety net against a hung test; nothing is timed


class GatedStore(EventStore):
    """An event store that can hold the writer inside one commit, so the next commits queue up."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.commits: list[list[Any]] = []  # the events of each transaction the writer tried
        self._holding = False
        self.entered = threading.Event()  # the writer is inside the held commit
        self.gate = threading.Event()  # lets it go on

    def hold_next_commit(self) -> None:
        self._holding = True
        self.entered.clear()
        self.gate.clear()

    def commit_recorded(self, events: Sequence[Any]) -> list[tuple[int, Any]]:
        self.commits.append(list(events))
        if self._holding:
            self._holding = False
            self.entered.set()
            assert self.gate.wait(GATE_TIMEOUT)
        return super().commit_recorded(events)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[GatedStore]:
    opened = GatedStore(store_url)
    yield opened
    opened.close()


@pytest.fixture
async def committer(store: GatedStore) -> AsyncIterator[GroupCommitter]:
    started = GroupCommitter(store, asyncio.get_running_loop())
    yield started
    started.stop()


def new_charge_point(number: int) -> ChargePoint:
    cp = ChargePoint(id=f"CP-{number:03d}", description="", auto_registered=False)
    cp.record_connection(remote="10.0.0.1", connected_at=NOW)
    cp.answer_heartbeat(f"hb-{number}", {}, facts_at(NOW))
    return cp


async def test_many_concurrent_commits_all_land_before_they_return(
    store: GatedStore, committer: GroupCommitter
) -> None:
    charge_points = [new_charge_point(n) for n in range(150)]  # given many actors
    heard: list[Any] = []
    committer.add_listener(heard.extend)

    await asyncio.gather(*(committer.commit(cp.collect_events()) for cp in charge_points))  # when at once

    for cp in charge_points:  # then every event is stored and equal to what the actor holds
        assert replayed_from_the_event_table(store, cp.id) == cp
    assert committer.committed_events == len(heard) == 3 * len(charge_points)
    assert {e.originator_id for e in heard} == {cp.id for cp in charge_points}


async def test_a_commit_with_a_snapshot_stores_it_after_the_events(
    store: GatedStore, committer: GroupCommitter
) -> None:
    cp = new_charge_point(1)  # given

    await committer.commit(cp.collect_events(), snapshot_of=cp)  # when

    assert store.app.snapshots is not None  # then
    [snapshot] = list(store.app.snapshots.get(cp.id))
    assert snapshot.originator_version == cp.version == 3
    assert loaded(store, cp.id) == cp


async def test_a_lost_race_fails_only_its_own_commit(store: GatedStore, committer: GroupCommitter) -> None:
    cp = new_charge_point(1)  # given a charge point stored at version 4 and a copy that missed version 4
    await committer.commit(cp.collect_events())
    stale = loaded(store, cp.id)
    cp.answer_heartbeat("winner", {}, facts_at(NOW))
    await committer.commit(cp.collect_events())
    stale.answer_heartbeat("loser", {}, facts_at(NOW))

    with pytest.raises(ConflictError):  # when
        await committer.commit(stale.collect_events())

    assert [e.message_id for e in store.history(cp.id, after=3)] == ["winner"]  # then


async def test_a_batch_with_one_conflicting_item_commits_all_the_others(
    store: GatedStore, committer: GroupCommitter
) -> None:
    heard: list[Any] = []  # given a charge point, a stale copy of it and five new ones
    committer.add_listener(heard.extend)
    contested = new_charge_point(0)
    await committer.commit(contested.collect_events())
    stale = loaded(store, contested.id)
    contested.answer_heartbeat("winner", {}, facts_at(NOW))
    stale.answer_heartbeat("loser", {}, facts_at(NOW))
    others = [new_charge_point(n) for n in range(1, 6)]
    batch = [others[0].collect_events(), others[1].collect_events(), stale.collect_events(),
             *(cp.collect_events() for cp in others[2:])]
    store.hold_next_commit()  # and the writer held inside the winner's commit
    winner = asyncio.ensure_future(committer.commit(contested.collect_events()))
    await asyncio.to_thread(store.entered.wait, GATE_TIMEOUT)
    tried_before = len(store.commits)

    # when: all of the batch is queued before the gate opens (call_soon runs in order), so it is one batch
    commits = [asyncio.ensure_future(committer.commit(events)) for events in batch]
    asyncio.get_running_loop().call_soon(store.gate.set)
    outcomes = await asyncio.gather(winner, *commits, return_exceptions=True)

    # then: tried as one transaction, only the stale item failed, everyone else's events are stored
    assert len(store.commits[tried_before]) == sum(len(events) for events in batch)
    assert outcomes[0] is None
    assert [outcome is None for outcome in outcomes[1:]] == [True, True, False, True, True, True]
    assert isinstance(outcomes[3], ConflictError)
    for cp in others:
        assert replayed_from_the_event_table(store, cp.id) == cp
    assert [e.message_id for e in store.history(contested.id, after=3)] == ["winner"]
    assert "loser" not in [getattr(e, "message_id", None) for e in heard]
    assert committer.committed_events == len(heard) == 3 + 1 + 3 * len(others)
    # The failed transaction left no trace in the audit hash chain either.
    verified = verify(stored_events_of(store.app.recorder, None), store.app.mapper)
    assert verified.first_break is None and verified.events == len(heard)


async def test_nothing_to_commit_returns_at_once() -> None:
    store = GatedStore("memory:")  # no database needed: nothing reaches it
    committer = GroupCommitter(store, asyncio.get_running_loop())
    try:
        await committer.commit([])
    finally:
        committer.stop()
        store.close()

    assert store.commits == [] and committer.batches == 0


class RecordingHold:
    """A hold that notes what it is told, and what the commit listeners had seen by then."""

    def __init__(self, listened: list[Any]) -> None:
        self.listened = listened
        self.calls: list[tuple[str, list[str], int]] = []

    def decided(self, events: Sequence[Any]) -> None:
        self.calls.append(("decided", [e.originator_id for e in events], len(self.listened)))

    def settled(self, events: Sequence[Any]) -> None:
        self.calls.append(("settled", [e.originator_id for e in events], len(self.listened)))


async def test_a_hold_counts_events_from_their_decision_until_their_commit_is_settled(
    store: GatedStore, committer: GroupCommitter
) -> None:
    listened: list[Any] = []  # given a listener and a hold on the committer, and a writer held in its commit
    committer.add_listener(listened.extend)
    hold = RecordingHold(listened)
    committer.add_hold(hold, [ChargePoint.Registered])
    store.hold_next_commit()

    commit = asyncio.ensure_future(committer.commit(new_charge_point(1).collect_events()))  # when
    assert await asyncio.to_thread(store.entered.wait, GATE_TIMEOUT)
    decided_while_writing = list(hold.calls)
    store.gate.set()
    await commit

    # then decided as handed to the writer, settled only once the listeners saw the events committed
    assert decided_while_writing == [("decided", ["CP-001"] * 3, 0)]  # registered, connected, heartbeat
    assert hold.calls[1:] == [("settled", ["CP-001"] * 3, 3)]


async def test_a_hold_is_settled_for_a_commit_that_failed_too(store: GatedStore, committer: GroupCommitter) -> None:
    cp = new_charge_point(1)  # given a copy of a charge point that missed its latest version
    await committer.commit(cp.collect_events())
    stale = loaded(store, cp.id)
    cp.answer_heartbeat("winner", {}, facts_at(NOW))
    await committer.commit(cp.collect_events())
    hold = RecordingHold([])
    committer.add_hold(hold, [ChargePoint.HeartbeatReceived])
    stale.answer_heartbeat("loser", {}, facts_at(NOW))

    with pytest.raises(ConflictError):  # when its commit loses the race
        await committer.commit(stale.collect_events())

    assert [call[0] for call in hold.calls] == ["decided", "settled"]  # then nothing stays held


async def test_a_hold_is_told_only_of_commits_with_an_event_it_counts(store: GatedStore,
                                                                      committer: GroupCommitter) -> None:
    hold = RecordingHold([])  # given a hold that counts registrations only
    committer.add_hold(hold, [ChargePoint.Registered])
    cp = new_charge_point(1)
    await committer.commit(cp.collect_events())

    cp.answer_heartbeat("later", {}, facts_at(NOW))  # when a commit holds none
    await committer.commit(cp.collect_events())

    assert [call[0] for call in hold.calls] == ["decided", "settled"]  # then it is not told of it
