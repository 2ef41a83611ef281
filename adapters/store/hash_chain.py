"""Tamper evidence and time travel for auditors.

Every stored event carries ``chain_hash``: SHA-256 over its predecessor's
hash, its aggregate id, version, topic and its msgpack-encoded state. Change,
remove or reorder one stored event and the chain breaks there; `csms audit
verify` recomputes it. The hash is added when the event is mapped to its
stored form, so the domain never sees it.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from eventsourcing.persistence import ApplicationRecorder, Mapper, StoredEvent
from eventsourcing.utils import get_topic

from adapters.store.transcoder import with_entry
from domain.event_bases import Snapshot

GENESIS = ""
CHAIN_FIELD = "chain_hash"


def chain_digest(previous: str, originator_id: str, version: int, topic: str, state: bytes) -> str:
    digest = hashlib.sha256()
    for part in (previous.encode(), originator_id.encode(), str(version).encode(), topic.encode()):
        digest.update(part)
        digest.update(b"\x00")  # separators, so ("ab","c") and ("a","bc") differ
    digest.update(state)
    return digest.hexdigest()


class ChainingMapper(Mapper[str]):
    """Maps events to stored events, adding each one's link in its aggregate's chain."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorder: ApplicationRecorder | None = None
        self._heads: dict[str, tuple[int, str]] = {}
        self._pending: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        if isinstance(domain_event, Snapshot):
            return super().to_stored_event(domain_event)
        topic = get_topic(type(domain_event))
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        version = state.pop("originator_version")
        state.pop(CHAIN_FIELD, None)
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        encoded = self.transcoder.encode(state)
        digest = chain_digest(self._head(originator_id, version - 1), originator_id, version, topic, encoded)
        self._pending[originator_id] = (version, digest)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=version,
            topic=topic,
            # As if state[CHAIN_FIELD] = digest were encoded, without encoding it all again.
            state=with_entry(encoded, CHAIN_FIELD, digest),
        )

    def _head(self, originator_id: str, version: int) -> str:
        if version == 0:
            return GENESIS
        for known in (self._pending, self._heads):
            head = known.get(originator_id)
            if head is not None and head[0] == version:
                return head[1]
        assert self.recorder is not None
        previous = self.recorder.select_events(originator_id, lte=version, desc=True, limit=1)
        if not previous:
            return GENESIS
        return str(self.transcoder.decode(previous[0].state).get(CHAIN_FIELD, GENESIS))

    def confirm(self) -> None:
        """The mapped events were committed: their hashes are the new heads."""
        self._heads.update(self._pending)
        self._pending.clear()

    def discard(self) -> None:
        self._pending.clear()

    @property
    def lock(self) -> threading.Lock:
        return self._lock


@dataclass(frozen=True)
class Break:
    aggregate_id: str
    version: int
    reason: str


@dataclass
class Verification:
    events: int
    aggregates: dict[str, str]  # aggregate id -> head hash
    first_break: Break | None


def verify(stored_events: Iterable[StoredEvent], mapper: Mapper[str]) -> Verification:
    """Recomputes the chain over stored events (in per-aggregate version order)."""
    heads: dict[str, tuple[int, str]] = {}
    count = 0
    for stored in stored_events:
        count += 1
        aggregate_id = str(stored.originator_id)
        last_version, previous = heads.get(aggregate_id, (0, GENESIS))
        if stored.originator_version != last_version + 1:
            reason = f"version {last_version + 1} is missing"
            return Verification(count, _head_map(heads), Break(aggregate_id, last_version + 1, reason))
        try:
            state = mapper.transcoder.decode(stored.state)
        except Exception:
            return Verification(count, _head_map(heads), Break(aggregate_id, stored.originator_version,
                                                               "the stored state cannot be decoded"))
        recorded = state.pop(CHAIN_FIELD, None)
        expected = chain_digest(
            previous, aggregate_id, stored.originator_version, stored.topic, mapper.transcoder.encode(state)
        )
        if recorded != expected:
            reason = "no chain hash" if recorded is None else "the hash does not match the event and its predecessor"
            return Verification(count, _head_map(heads), Break(aggregate_id, stored.originator_version, reason))
        heads[aggregate_id] = (stored.originator_version, expected)
    return Verification(count, _head_map(heads), None)


def _head_map(heads: dict[str, tuple[int, str]]) -> dict[str, str]:
    return {aggregate_id: f"{version}:{digest}" for aggregate_id, (version, digest) in heads.items()}


def stored_events_of(recorder: ApplicationRecorder, aggregate_id: str | None) -> Iterator[StoredEvent]:
    """One aggregate's stored events in order, or every aggregate's in commit order."""
    if aggregate_id is not None:
        yield from recorder.select_events(aggregate_id)
        return
    start = 1
    while True:
        page = recorder.select_notifications(start=start, limit=1000)
        if not page:
            return
        yield from page
        start = page[-1].id + 1
