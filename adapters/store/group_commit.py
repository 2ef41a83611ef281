"""Group commit: one writer thread puts many actors' events in one transaction.

The store serialises writers anyway, so one thread that drains everything
queued while the previous transaction was committing gives durability at a
small cost per message; a quiet charge point still waits only for its own
fsync. Events are committed before the futures resolve: persist, then answer.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol, Sequence, TypeVar

from adapters.store.event_store import SNAPSHOT_INTERVAL, ConflictError, EventStore, NotRegistered
from domain.chargepoint import ChargePoint

log = logging.getLogger(__name__)

MAX_BATCH = 1000
MAX_CONFLICT_RETRIES = 5
CommitListener = Callable[[Sequence[Any]], None]


class Hold(Protocol):
    """Counts events from the moment they are decided until their commit is settled.

    So that what is decided but not yet durable already counts for the next
    decision (a card's second start on another charge point, say): ``decided``
    runs as the events are handed to the writer, ``settled`` when their commit
    succeeded or failed, in the same step on the event loop as the listeners
    that see them committed, so nothing is counted twice or not at all.
    """

    def decided(self, events: Sequence[Any]) -> None: ...

    def settled(self, events: Sequence[Any]) -> None: ...
T = TypeVar("T")
Command = Callable[[ChargePoint], T]  # changes an aggregate; its events are then committed


@dataclass
class _Pending:
    events: Sequence[Any]
    snapshot_of: Any
    future: asyncio.Future[None]
    held: bool = False  # holds were told of these events: tell them when they are settled


_STOP = object()


class GroupCommitter:
    def __init__(self, store: EventStore, loop: asyncio.AbstractEventLoop) -> None:
        self._store = store
        self._loop = loop
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._listeners: list[CommitListener] = []
        self._holds: list[Hold] = []
        self._held_types: set[type] = set()  # the event classes any hold counts
        self._recorded_listeners: list[Callable[[list[tuple[int, Any]]], None]] = []
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self.batches = 0
        self.committed_events = 0
        self.position = 0  # highest notification id this writer committed
        self._stopped = False
        self._thread.start()

    def add_recorded_listener(self, listener: Callable[[list[tuple[int, Any]]], None]) -> None:
        """Called in the writer thread, right after each commit, with (notification id, event) pairs."""
        self._recorded_listeners.append(listener)

    def add_listener(self, listener: CommitListener) -> None:
        """Called on the event loop with each committed batch of events."""
        self._listeners.append(listener)

    def add_hold(self, hold: Hold, event_types: Iterable[type]) -> None:
        """``hold`` is told of commits holding an event of one of ``event_types`` (only those: a set
        lookup per commit is all the others cost)."""
        self._holds.append(hold)
        self._held_types.update(event_types)

    async def commit(self, events: Sequence[Any], snapshot_of: Any = None) -> None:
        """Returns once the events are durably stored; raises ConflictError on a race."""
        if not events:
            return
        if self._stopped:
            raise RuntimeError("the group committer is stopped; nothing more is stored")
        future = self._loop.create_future()
        held = not self._held_types.isdisjoint(map(type, events))
        if held:
            for hold in self._holds:
                hold.decided(events)
        self._queue.put(_Pending(events, snapshot_of, future, held))
        await future

    def stop(self) -> None:
        self._stopped = True
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            try:
                outcomes = self._write(batch)
            except BaseException as error:  # never leave a batch's writers waiting
                log.exception("the group committer failed")
                outcomes = [error] * len(batch)
            self._loop.call_soon_threadsafe(self._resolve, batch, outcomes)

    def _write(self, batch: list[_Pending]) -> list[BaseException | None]:
        outcomes: list[BaseException | None]
        try:
            recorded = self._store.commit_recorded([event for item in batch for event in item.events])
        except ConflictError as error:
            # Someone's events lost a race; find whose, so the rest still commit.
            outcomes = [self._write_one(item) for item in batch] if len(batch) > 1 else [error]
        except Exception as error:  # the store is down: nobody's events are safe
            log.exception("commit of %d events failed", sum(len(i.events) for i in batch))
            return [error] * len(batch)
        else:
            outcomes = [None] * len(batch)
            self._note_recorded(recorded)
        self.batches += 1
        for item, outcome in zip(batch, outcomes, strict=True):
            if outcome is None:
                self.committed_events += len(item.events)
                if item.snapshot_of is not None:
                    self._snapshot(item.snapshot_of)
        return outcomes

    def _write_one(self, item: _Pending) -> BaseException | None:
        try:
            recorded = self._store.commit_recorded(item.events)
        except Exception as error:
            return error
        self._note_recorded(recorded)
        return None

    def _note_recorded(self, recorded: list[tuple[int, Any]]) -> None:
        if not recorded:
            return
        self.position = max(self.position, max(notification_id for notification_id, _ in recorded))
        for listener in self._recorded_listeners:
            try:
                listener(recorded)
            except Exception:  # the events are committed; a listener must not stop the writer
                log.exception("a commit listener failed")

    def _snapshot(self, aggregate: Any) -> None:
        try:
            self._store.snapshot(aggregate)
        except Exception:  # a snapshot is only a shortcut; the events are safe
            log.exception("snapshot of %s failed", aggregate.id)

    def _resolve(self, batch: list[_Pending], outcomes: list[BaseException | None]) -> None:
        committed: list[Any] = []
        for item, outcome in zip(batch, outcomes, strict=True):
            if outcome is None:
                committed.extend(item.events)
            if item.future.done():
                continue
            if outcome is None:
                item.future.set_result(None)
            else:
                item.future.set_exception(outcome)
        if committed:
            for listener in self._listeners:
                try:
                    listener(committed)
                except Exception:
                    log.exception("a commit listener failed")
        for item in batch:
            if item.held:
                for hold in self._holds:
                    hold.settled(item.events)


class AggregateHandle:
    """A charge point's aggregate kept in memory, changed through the group committer.

    A command runs on the aggregate and its events are committed before it
    returns; if another writer stored a version first, it runs again on
    fresh state.
    """

    def __init__(self, store: EventStore, committer: GroupCommitter, charge_point_id: str) -> None:
        self._store = store
        self._committer = committer
        self.id = charge_point_id
        self.aggregate: ChargePoint | None = None
        # True while a command's events are not yet durable: the aggregate in
        # memory is then ahead of the store and must not be shown.
        self.committing = False

    async def load(self) -> ChargePoint | None:
        if self.aggregate is None:
            self.aggregate = await asyncio.to_thread(self._store.load_charge_point, self.id)
        return self.aggregate

    def committed_state(self) -> ChargePoint | None:
        return None if self.committing else self.aggregate

    async def commit_change(self, command: Command[T]) -> T:
        """Runs the command on the aggregate and commits its events; again on fresh state after a lost race."""
        for _ in range(MAX_CONFLICT_RETRIES):
            aggregate = await self.load()
            if aggregate is None:
                raise NotRegistered(f"unknown charge point {self.id}")
            version_before = aggregate.version
            self.committing = True
            try:
                result = command(aggregate)
                events = aggregate.collect_events()
                snapshot = aggregate if _crossed_snapshot_mark(version_before, aggregate.version) else None
                await self._committer.commit(events, snapshot)
            except ConflictError:
                self.aggregate = None
                continue
            except BaseException:
                self.aggregate = None  # half-changed state must not be served
                raise
            finally:
                self.committing = False
            return result
        raise ConflictError(f"{self.id} kept changing under us")


def _crossed_snapshot_mark(before: int, after: int) -> bool:
    return before // SNAPSHOT_INTERVAL != after // SNAPSHOT_INTERVAL
