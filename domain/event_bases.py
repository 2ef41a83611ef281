"""Event and snapshot base classes for aggregates identified by a string.

The library's own DomainEvent insists on UUID ids; charge points are named by
their OCPP identity, so our events carry a text ``originator_id``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import (
    CanMutateAggregate,
    CanSnapshotAggregate,
    MetaDomainEvent,
)
from eventsourcing.utils import register_topic


class TextIdEvent(CanMutateAggregate[str], metaclass=MetaDomainEvent):
    """A frozen dataclass event of an aggregate with a string id."""

    originator_id: str
    originator_version: int
    timestamp: datetime


class Snapshot(CanSnapshotAggregate[str], metaclass=MetaDomainEvent):
    """The state of an aggregate at one version, so loading stays constant-time."""

    TOPIC = "ampledger:Snapshot"
    originator_id: str
    originator_version: int
    timestamp: datetime
    topic: str
    state: dict[str, Any]


# Stored snapshots name this topic; resolving it must not depend on import order.
register_topic(Snapshot.TOPIC, Snapshot)
