"""The IdTag registry and the authorization rules (OCPP 1.6 sections 3.4, 7.2).

One aggregate holds every id tag the operator registered; it stays small per
event and snapshots keep it quick to load. Keys are lower case because
idTags are CiString20: compared without regard to case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import BaseAggregate, CanInitAggregate, event

from domain.event_bases import TextIdEvent
from domain.timestamps import format_ocpp_time, parse_ocpp_time

REGISTRY_ID = "idtags"
STATUSES = ("Accepted", "Blocked", "Expired", "Invalid")
# Tags saved before the limit existed, and tags saved without one, run one transaction at a time.
DEFAULT_MAX_CONCURRENT_TRANSACTIONS = 1


class IdTagRejected(ValueError):
    """An operator's id tag entry that the registry cannot hold."""


def tag_key(id_tag: str) -> str:
    return id_tag.lower()


class IdTagRegistry(BaseAggregate[str]):
    TOPIC = "ampledger:IdTagRegistry"

    class Event(TextIdEvent):
        TOPIC = "ampledger:IdTagRegistry.Event"

    class Created(Event, CanInitAggregate[str]):
        TOPIC = "ampledger:IdTagRegistry.Created"
        originator_topic: str

    def __init__(self, id: str) -> None:  # noqa: A002 - the library's name
        self.tags: dict[str, dict[str, Any]] = {}

    def save_tag(
        self,
        id_tag: str,
        status: str,
        expiry_date: str | None = None,
        parent_id_tag: str | None = None,
        max_concurrent_transactions: int | None = DEFAULT_MAX_CONCURRENT_TRANSACTIONS,
    ) -> dict[str, Any]:
        if not id_tag or len(id_tag) > 20:
            raise IdTagRejected("idTag must be 1 to 20 characters")
        if status not in STATUSES:
            raise IdTagRejected(f"status must be one of {', '.join(STATUSES)}")
        if parent_id_tag is not None and not 0 < len(parent_id_tag) <= 20:
            raise IdTagRejected("parentIdTag must be 1 to 20 characters")
        limit = max_concurrent_transactions
        # None is unlimited; a bool is not a count, though Python calls it an int.
        if limit is not None and (type(limit) is not int or limit < 1):
            raise IdTagRejected("maxConcurrentTransactions must be an integer of at least 1, or null for unlimited")
        if expiry_date is not None:
            try:
                expiry_date = format_ocpp_time(parse_ocpp_time(expiry_date))
            except ValueError:
                raise IdTagRejected("expiryDate must be an ISO 8601 date-time") from None
        entry: dict[str, Any] = {"idTag": id_tag, "status": status}
        if expiry_date is not None:
            entry["expiryDate"] = expiry_date
        if parent_id_tag is not None:
            entry["parentIdTag"] = parent_id_tag
        entry["maxConcurrentTransactions"] = limit
        self._tag_saved(entry=entry)
        return entry

    @event("IdTagSaved", topic="ampledger:IdTagRegistry.IdTagSaved")
    def _tag_saved(self, entry: dict[str, Any]) -> None:
        self.tags[tag_key(entry["idTag"])] = entry

    def delete_tag(self, id_tag: str) -> bool:
        if tag_key(id_tag) not in self.tags:
            return False
        self._tag_deleted(id_tag=id_tag)
        return True

    @event("IdTagDeleted", topic="ampledger:IdTagRegistry.IdTagDeleted")
    def _tag_deleted(self, id_tag: str) -> None:
        del self.tags[tag_key(id_tag)]

    def find(self, id_tag: str) -> dict[str, Any] | None:
        return self.tags.get(tag_key(id_tag))


def max_concurrent_transactions(entry: dict[str, Any]) -> int | None:
    """How many transactions the tag may run at once; None: unlimited."""
    # IdTagSaved events recorded before the limit existed carry none: they allowed one.
    return entry.get("maxConcurrentTransactions", DEFAULT_MAX_CONCURRENT_TRANSACTIONS)  # type: ignore[no-any-return]


def tag_view(entry: dict[str, Any]) -> dict[str, Any]:
    """The tag as the operator sees it, its limit shown even when its event predates it."""
    return {**entry, "maxConcurrentTransactions": max_concurrent_transactions(entry)}


def id_tag_info(entry: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """The IdTagInfo of a tag at ``now``: its own status, as Authorize and StopTransaction answer it.

    Unknown tags are Invalid; a passed expiryDate makes Expired. Never
    ConcurrentTx: OCPP 1.6 section 7.2 keeps that for StartTransaction.
    """
    if entry is None:
        return {"status": "Invalid"}
    info: dict[str, Any] = {"status": entry["status"]}
    if "expiryDate" in entry:
        info["expiryDate"] = entry["expiryDate"]
        if info["status"] == "Accepted" and parse_ocpp_time(entry["expiryDate"]) <= now:
            info["status"] = "Expired"
    if "parentIdTag" in entry:
        info["parentIdTag"] = entry["parentIdTag"]
    return info


def start_id_tag_info(entry: dict[str, Any] | None, now: datetime, running: int) -> dict[str, Any]:
    """The IdTagInfo a StartTransaction gets, ``running`` being the tag's accepted, unfinished transactions.

    ConcurrentTx (OCPP 1.6 section 7.2) once the tag already runs as many as
    its maxConcurrentTransactions allows; otherwise the tag's own status.
    """
    info = id_tag_info(entry, now)
    limit = max_concurrent_transactions(entry) if entry is not None else None
    if info["status"] == "Accepted" and limit is not None and running >= limit:
        info["status"] = "ConcurrentTx"
    return info
