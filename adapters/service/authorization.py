"""Authorization at run time: the IdTag registry in memory, and who is charging.

Reads are served from memory on the hot path (Authorize, StartTransaction);
writes go through the registry aggregate and are committed before they count.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Collection, Iterable, Sequence

from eventsourcing.utils import resolve_topic

from adapters.service.shared_aggregate import SharedAggregate
from domain.chargepoint import topic
from domain.idtags import IdTagRegistry, id_tag_info, start_id_tag_info, tag_key

STARTED = topic("TransactionStarted")
HELD_EVENTS: tuple[type, ...] = (resolve_topic(STARTED),)  # what ActiveTransactions counts from its decision
STOPPED = topic("TransactionStopped")
ENDED_BY_OPERATOR = topic("TransactionEndedByOperator")
ENDED_AS_STALE = topic("TransactionEndedAsStale")


class ActiveTransactions:
    """Which id tags are in an accepted, unfinished transaction, on any charge point.

    Fed by committed events, so it never knows more than the store does; and,
    as a hold on the group committer, by accepted starts decided but not yet
    committed, so that one card's starts on two charge points at once are not
    both judged before either is stored.
    """

    def __init__(self) -> None:
        self._tag_of: dict[int, str] = {}
        self._count: dict[str, int] = {}
        self._deciding: dict[str, int] = {}

    def decided(self, events: Sequence[Any]) -> None:
        for key in _accepted_start_tags(events):
            self._deciding[key] = self._deciding.get(key, 0) + 1

    def settled(self, events: Sequence[Any]) -> None:
        for key in _accepted_start_tags(events):
            self._deciding[key] -= 1
            if not self._deciding[key]:
                del self._deciding[key]

    def observe(self, events: Sequence[Any]) -> None:
        for event in events:
            topic = getattr(type(event), "TOPIC", None)
            if topic == STARTED and event.reply["idTagInfo"]["status"] == "Accepted":
                key = tag_key(event.request["idTag"])
                self._tag_of[event.transaction_id] = key
                self._count[key] = self._count.get(key, 0) + 1
            elif topic in (STOPPED, ENDED_BY_OPERATOR, ENDED_AS_STALE):
                transaction_id = event.request["transactionId"] if topic == STOPPED else event.transaction_id
                stopped = self._tag_of.pop(transaction_id, None)
                if stopped is not None:
                    key = stopped
                    self._count[key] -= 1
                    if not self._count[key]:
                        del self._count[key]

    def load(self, active: Iterable[tuple[int, str]]) -> None:
        """Starts from (transactionId, idTag) pairs of accepted, unfinished transactions."""
        for transaction_id, id_tag in active:
            key = tag_key(id_tag)
            self._tag_of[transaction_id] = key
            self._count[key] = self._count.get(key, 0) + 1

    def running(self, id_tag: str, ending: Collection[int] = ()) -> int:
        """How many accepted, unfinished transactions the tag has, not counting those ``ending``."""
        key = tag_key(id_tag)
        return (self._count.get(key, 0) + self._deciding.get(key, 0)
                - sum(self._tag_of.get(transaction_id) == key for transaction_id in ending))


def _accepted_start_tags(events: Sequence[Any]) -> list[str]:
    return [tag_key(event.request["idTag"]) for event in events
            if getattr(type(event), "TOPIC", None) == STARTED and event.reply["idTagInfo"]["status"] == "Accepted"]


class Authorizer:
    def __init__(self, id_tags: SharedAggregate[IdTagRegistry]) -> None:
        self.id_tags = id_tags
        self.active = ActiveTransactions()

    @property
    def registry(self) -> IdTagRegistry:
        return self.id_tags.current

    def info(self, id_tag: str, now: datetime) -> dict[str, Any]:
        return id_tag_info(self.registry.find(id_tag), now)

    def start_info(self, id_tag: str, now: datetime, ending: Collection[int] = ()) -> dict[str, Any]:
        """The IdTagInfo a StartTransaction gets, the transactions it ends (``ending``) not counted."""
        return start_id_tag_info(self.registry.find(id_tag), now, self.active.running(id_tag, ending))

    async def change(self, command: Callable[[IdTagRegistry], Any]) -> Any:
        """Runs an operator's change on the registry, committed before it returns."""
        return await self.id_tags.change(command)
