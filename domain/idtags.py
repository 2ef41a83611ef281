"""The IdTag registry and the authorization rule (OCPP 1.6 section 3.4).

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
    ) -> dict[str, Any]:
        if not id_tag or len(id_tag) > 20:
            raise IdTagRejected("idTag must be 1 to 20 characters")
        if status not in STATUSES:
            raise IdTagRejected(f"status must be one of {', '.join(STATUSES)}")
        if parent_id_tag is not None and not 0 < len(parent_id_tag) <= 20:
            raise IdTagRejected("parentIdTag must be 1 to 20 characters")
        if expiry_date is not None:
            try:
                expiry_date = format_ocpp_time(parse_ocpp_time(expiry_date))
            except ValueError:
                raise IdTagRejected("expiryDate must be an ISO 8601 date-time") from None
        entry = {"idTag": id_tag, "status": status}
        if expiry_date is not None:
            entry["expiryDate"] = expiry_date
        if parent_id_tag is not None:
            entry["parentIdTag"] = parent_id_tag
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


def id_tag_info(
    entry: dict[str, Any] | None, now: datetime, in_transaction: bool
) -> dict[str, Any]:
    """The IdTagInfo the central system answers for a tag at ``now``.

    Unknown tags are Invalid; a passed expiryDate makes Expired; a tag already
    charging elsewhere gets ConcurrentTx, so one card cannot run two sessions.
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
    if info["status"] == "Accepted" and in_transaction:
        info["status"] = "ConcurrentTx"
    return info
