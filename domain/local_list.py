"""The Local Authorization List (OCPP 1.6 sections 3.5, 5.15, 6.43).

Per charge point the central system keeps the list it knows the charge point
holds (``None`` when it cannot know it) and that list's version. The IdTag
registry is the authority: a sync sends what differs between it and the held
list. Lists are dicts from the tag's case-insensitive key to an
AuthorizationData entry ``{"idTag", "idTagInfo"}``; every function is pure.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from domain.idtags import tag_key
from domain.state_shapes import ConfigurationEntry

Payload = dict[str, Any]
LocalList = dict[str, Payload]

FULL, DIFFERENTIAL = "Full", "Differential"
INFO_FIELDS = ("status", "expiryDate", "parentIdTag")
# Configuration keys (OCPP 1.6 section 9.2) that bound what a charge point takes:
# entries its list holds, and entries one SendLocalList may carry.
CAPACITY_KEY, PER_MESSAGE_KEY = "LocalAuthListMaxLength", "SendLocalListMaxLength"


def list_from_registry(tags: Iterable[Payload]) -> LocalList:
    """The list a charge point should hold: every registered tag with its IdTagInfo.

    Blocked and Invalid tags are listed too, so a charge point offline refuses
    them rather than falling back to its cache or to accepting unknown tags.
    """
    return {
        tag_key(tag["idTag"]): {
            "idTag": tag["idTag"],
            "idTagInfo": {name: tag[name] for name in INFO_FIELDS if name in tag},
        }
        for tag in tags
    }


def plan_update(desired: LocalList, held: LocalList | None, held_version: int | None,
                full: bool = False) -> Payload | None:
    """The SendLocalList request that brings the charge point to `desired`.

    Differential when the held list is known, Full otherwise (or when asked);
    None when the charge point already holds exactly `desired`.
    """
    version = max(held_version or 0, 0) + 1
    if full or held is None or held_version is None:
        return {"listVersion": version, "updateType": FULL, "localAuthorizationList": _entries(desired)}
    changes = [entry for key, entry in desired.items() if held.get(key) != entry]
    # 5.15: an entry without idTagInfo in a Differential update removes the tag.
    removals = [{"idTag": entry["idTag"]} for key, entry in held.items() if key not in desired]
    if not changes and not removals:
        return None
    return {
        "listVersion": version,
        "updateType": DIFFERENTIAL,
        "localAuthorizationList": sorted(changes + removals, key=lambda entry: tag_key(entry["idTag"])),
    }


def list_limits(configuration: Mapping[str, ConfigurationEntry]) -> tuple[int | None, int | None]:
    """(entries the list holds, entries per SendLocalList) as the configuration reports them.

    Keys are matched case-insensitively, as charge points spell them their own
    way; a missing or unreadable value is no limit.
    """
    values = {key.lower(): entry.get("value") for key, entry in configuration.items()}
    return _count(values.get(CAPACITY_KEY.lower()), 0), _count(values.get(PER_MESSAGE_KEY.lower()), 1)


def _count(value: Any, least: int) -> int | None:
    try:
        count = int(str(value).strip())
    except ValueError:
        return None
    return count if count >= least else None


def in_messages(update: Payload, per_message: int | None) -> list[Payload]:
    """The update as SendLocalList requests of at most ``per_message`` entries each.

    A Full list too long for one message goes as a Full first part and
    Differential parts that add the rest; every part takes the next version,
    since a charge point refuses a Differential update whose version is not
    above the one it holds (VersionMismatch). Removals go first, so a full
    list never overflows on the way, then tags that are not Accepted, so a
    list cut short by a refused part still refuses them offline.
    """
    entries = update["localAuthorizationList"]
    if per_message is None or len(entries) <= per_message:
        return [update]
    entries = sorted(entries, key=_sending_order)  # stable: by tag within each kind
    return [
        {
            "listVersion": update["listVersion"] + number,
            "updateType": update["updateType"] if number == 0 else DIFFERENTIAL,
            "localAuthorizationList": entries[start:start + per_message],
        }
        for number, start in enumerate(range(0, len(entries), per_message))
    ]


def _sending_order(entry: Payload) -> int:
    info = entry.get("idTagInfo")
    if info is None:
        return 0  # a removal
    return 1 if info.get("status") != "Accepted" else 2


def updated_list(held: LocalList | None, request: Payload) -> LocalList | None:
    """The list a charge point holds after it accepted the SendLocalList `request`."""
    entries = request.get("localAuthorizationList", [])
    if request["updateType"] == FULL:
        return {tag_key(entry["idTag"]): entry for entry in entries if "idTagInfo" in entry}
    if held is None:
        return None  # a difference applied to a list we do not know
    result = dict(held)
    for entry in entries:
        if "idTagInfo" in entry:
            result[tag_key(entry["idTag"])] = entry
        else:
            result.pop(tag_key(entry["idTag"]), None)
    return result


def list_after_version_report(held: LocalList | None, held_version: int | None, reported: int) -> LocalList | None:
    """What we know of the list once the charge point reported its version.

    Version 0 is an empty list (6.27); a version other than the one we hold
    means the list changed behind our back, so we no longer know it.
    """
    if reported == 0:
        return {}
    return held if reported == held_version else None


def _entries(local_list: LocalList) -> list[Payload]:
    return [local_list[key] for key in sorted(local_list)]
