"""Small givens shared by the domain and store tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Iterable, Sequence

from eventsourcing.domain import CanMutateAggregate

from adapters.store import EventStore, project_events
from domain.chargepoint import ChargePoint
from domain.facts import Facts, Payload
from domain.idtags import tag_key


def registered(charge_point_id: str = "CP-1", description: str = "") -> ChargePoint:
    return ChargePoint(id=charge_point_id, description=description, auto_registered=False)


def facts_at(now: datetime, transaction_ids: Iterable[int] = (),
             id_tag_info: Callable[[str], Payload] = lambda id_tag: {"status": "Accepted"}) -> Facts:
    """What a charge point's call may know beyond its aggregate, in a story: the time, the
    transaction ids to hand out in order, and the registry's verdict (Accepted, unless told)."""
    ids = iter(transaction_ids)
    return Facts(now=now, heartbeat_interval=300, id_tag_info=id_tag_info, allocate_transaction_id=lambda: next(ids))


def running(cp: ChargePoint, id_tag: str) -> int:
    """How many transactions the tag (in any case) has open on this charge point.

    What ConcurrentTx needs in a story on one aggregate; the running system
    asks adapters/service/authorization.py, which follows every charge point.
    """
    return sum(tag_key(t["idTag"]) == tag_key(id_tag) for t in cp.open_transactions.values())


def replayed(events: Sequence[CanMutateAggregate[str]]) -> Any:
    """A fresh aggregate built from events alone, by the store's own projector."""
    return project_events(None, events)


def loaded(store: EventStore, charge_point_id: str) -> Any:
    found = store.load(charge_point_id)
    assert found is not None
    return found


def replayed_from_the_event_table(store: EventStore, charge_point_id: str) -> Any:
    # Straight from the event table: no snapshot can take part.
    return project_events(None, store.app.events.get(charge_point_id))


def event_names(store: EventStore, charge_point_id: str) -> list[str]:
    """The names of a charge point's stored events, oldest first."""
    return [type(event).__name__ for event in store.history(charge_point_id)]
