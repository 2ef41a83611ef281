"""The event store: an eventsourcing Application on SQLite, PostgreSQL or memory.

All methods here block; the asyncio side calls them from the group-commit
writer thread or through ``asyncio.to_thread``.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator, Sequence

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import CanMutateAggregate
from eventsourcing.persistence import IntegrityError, Mapper, StoredEvent, Transcoder
from eventsourcing.utils import resolve_topic

from adapters.store.config import StoreConfig, parse_store_url, schema_lock
from adapters.store.hash_chain import ChainingMapper
from adapters.store.side_tables import SideTables
from adapters.store.sqlite_recorder import BatchInsertingSQLiteRecorder
from adapters.store.transcoder import MsgpackTranscoder
from domain.chargepoint import ChargePoint
from domain.event_bases import Snapshot

SNAPSHOT_INTERVAL = 200  # events between snapshots of one aggregate

ConflictError = IntegrityError  # a concurrent writer got to this version first


class NotRegistered(LookupError):
    """No aggregate has this id (for a charge point: it was never registered)."""
class CentralSystemApplication(Application[str]):
    """The library's application, with msgpack and snapshots."""

    name = "CSMS"
    snapshot_class = Snapshot
    is_snapshotting_enabled = True

    def construct_transcoder(self) -> Transcoder:
        return MsgpackTranscoder()

    def construct_mapper(self) -> Mapper[str]:
        return ChainingMapper(transcoder=self.construct_transcoder())


def project_events(aggregate: Any, events: Iterable[Any]) -> Any:
    # A plain loop: the library's default projector spends most of a long
    # replay in a type assertion.
    for domain_event in events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


class EventStore:
    """Loads aggregates and commits batches of their events atomically."""

    def __init__(self, url: str) -> None:
        self.config: StoreConfig = parse_store_url(url)
        if self.config.sqlite_path:
            directory = os.path.dirname(os.path.abspath(self.config.sqlite_path))
            os.makedirs(directory, exist_ok=True)
        with schema_lock(self.config):
            self.app = CentralSystemApplication(env=self.config.env)
            self.side = SideTables(self.config)
        self.chain: ChainingMapper = self.app.mapper  # type: ignore[assignment]
        self.chain.recorder = self.app.recorder

    def load(self, aggregate_id: str) -> Any | None:
        if self._snapshot_is_stale(aggregate_id):
            # A snapshot taken before the aggregate class changed cannot know
            # what the new class derives from old events: replay them all.
            aggregate = project_events(None, self.app.events.get(aggregate_id))
            if aggregate is not None:
                try:
                    self.snapshot(aggregate)
                except IntegrityError:
                    pass  # the stale one holds this version; the next snapshot supersedes it
            return aggregate
        try:
            return self.app.repository.get(aggregate_id, projector_func=project_events, deepcopy_from_cache=False)
        except AggregateNotFoundError:
            return None

    def _snapshot_is_stale(self, aggregate_id: str) -> bool:
        if self.app.snapshots is None:
            return False
        latest = list(self.app.snapshots.get(aggregate_id, desc=True, limit=1))
        if not latest:
            return False
        snapshot: Any = latest[0]
        current = getattr(resolve_topic(snapshot.topic), "class_version", 1)
        return bool(snapshot.state.get("class_version", 1) < current)

    def load_charge_point(self, charge_point_id: str) -> ChargePoint | None:
        return self.load(charge_point_id)

    def load_or_create(self, aggregate_id: str, create: Callable[[], Any]) -> Any:
        """Loads a node-wide aggregate, creating (and storing) it on first use."""
        aggregate = self.load(aggregate_id)
        if aggregate is None:
            aggregate = create()
            try:
                self.commit(aggregate.collect_events())
            except ConflictError:  # created a moment ago by another node
                aggregate = self.load(aggregate_id)
        return aggregate

    def commit(self, events: Sequence[CanMutateAggregate[str]]) -> int:
        """Writes the events in one transaction; raises ConflictError on a race.

        Returns the highest notification id written (0 if none), the position
        a reader must reach to see these events.
        """
        return max((notification_id for notification_id, _ in self.commit_recorded(events)), default=0)

    def commit_recorded(self, events: Sequence[CanMutateAggregate[str]]) -> list[tuple[int, Any]]:
        """As commit(), returning each event with the notification id it was stored under."""
        if not events:
            return []
        # Chain hashes are computed while mapping; they become heads only if committed.
        # Mapped and inserted here rather than through the library's EventStore.put,
        # which wraps every event in a Recording and a Notification we would unwrap.
        with self.chain.lock:
            try:
                notification_ids = self.app.recorder.insert_events([self.chain.to_stored_event(e) for e in events])
            except BaseException:
                self.chain.discard()
                raise
            self.chain.confirm()
        return list(zip(notification_ids, events, strict=True)) if notification_ids else []

    def snapshot(self, aggregate: Any) -> None:
        """Stores the aggregate's current state so later loads skip its history."""
        if self.app.snapshots is not None:
            self.app.snapshots.put([Snapshot.take(aggregate)])

    def history(self, aggregate_id: str, after: int = 0, limit: int | None = None) -> Iterator[Any]:
        return iter(self.app.events.get(aggregate_id, gt=after or None, limit=limit))

    def stored_events(self, aggregate_id: str) -> list[StoredEvent]:
        return list(self.app.recorder.select_events(aggregate_id))

    def close(self) -> None:
        self.side.close()
        if isinstance(self.app.recorder, BatchInsertingSQLiteRecorder):
            self.app.recorder.close_connections()
        self.app.close()


def state_at(events: Iterable[Any], moment: datetime | None) -> tuple[Any, int]:
    """The aggregate as it was at ``moment`` (all events if None): (aggregate, events applied)."""
    aggregate = None
    applied = 0
    for event in events:
        if moment is not None and event.timestamp > moment:
            break
        aggregate = event.mutate(aggregate)
        applied += 1
    return aggregate, applied
