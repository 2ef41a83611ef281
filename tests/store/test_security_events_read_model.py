"""The security events read model on both stores: a charge point's events and the central system's own,
the longest strings the schema allows, filters, counts and each charge point's latest critical one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.security_events import SecurityEventObserved, SecurityEventReported
from projections import security_events
from projections.database import ReadModelDatabase, Sql

AT = datetime(2030, 1, 1, 10, 0, tzinfo=UTC)
TECH_INFO = "\u00e9'\"\\%_" * 42 + "xyz"  # 255 characters, quotes, backslash and LIKE wildcards


def applied(db: ReadModelDatabase, *events: Any) -> None:
    with db.datastore.transaction(commit=True) as cursor:
        sql = Sql(cursor, db.dialect)
        for event in events:
            security_events.UPDATES[type(event).__name__](event, sql)
        sql.flush()


def reported(charge_point_id: str, version: int, type_: str, timestamp: str, critical: bool,
             tech_info: str | None = None) -> SecurityEventReported:
    request = {"type": type_, "timestamp": timestamp, **({"techInfo": tech_info} if tech_info else {})}
    return SecurityEventReported(originator_id=charge_point_id, originator_version=version, timestamp=AT,
                                 message_id=f"m{version}", request=request, reply={}, received_at=AT,
                                 critical=critical)


def observed(charge_point_id: str, version: int, type_: str, critical: bool) -> SecurityEventObserved:
    return SecurityEventObserved(originator_id=charge_point_id, originator_version=version, timestamp=AT,
                                 type=type_, tech_info="refused at the handshake", observed_at=AT, critical=critical)


def test_both_sources_are_kept_as_sent_filtered_counted_and_applied_once(read_models):
    events = [
        reported("SEC-1", 2, "T" * 50, "0001-01-02T00:00:00Z", False, TECH_INFO),
        reported("SEC-1", 3, "TamperDetectionActivated", "2030-01-01T11:00:00+01:00", True),
        observed("SEC-1", 4, "ResetOrReboot", True),
        reported("SEC-2", 2, "MemoryExhaustion", "9999-12-30T23:59:59.999Z", True, "full"),
    ]

    applied(read_models, *events)
    applied(read_models, events[0])  # applied again: nothing changes

    everything = security_events.find_security_events(read_models)
    assert [(e["chargePointId"], e["version"], e["source"], e["type"]) for e in everything] == [
        ("SEC-1", 2, "charge_point", "T" * 50), ("SEC-1", 3, "charge_point", "TamperDetectionActivated"),
        ("SEC-1", 4, "central_system", "ResetOrReboot"), ("SEC-2", 2, "charge_point", "MemoryExhaustion"),
    ]
    assert everything[0]["techInfo"] == TECH_INFO and len(TECH_INFO) == 255
    assert [e["timestamp"] for e in everything] == ["0001-01-02T00:00:00.000Z", "2030-01-01T10:00:00.000Z",
                                                    "2030-01-01T10:00:00.000Z", "9999-12-30T23:59:59.999Z"]
    assert [e["type"] for e in security_events.find_security_events(read_models, charge_point_id="SEC-1",
                                                                     critical=True)] == [
        "TamperDetectionActivated", "ResetOrReboot"]
    assert [e["type"] for e in security_events.find_security_events(read_models, since=AT, until=AT.replace(
        hour=11))] == ["TamperDetectionActivated", "ResetOrReboot"]
    assert security_events.find_security_events(read_models, after=everything[2]["id"]) == everything[3:]
    assert security_events.critical_counts(read_models) == {"MemoryExhaustion": 1, "ResetOrReboot": 1,
                                                            "TamperDetectionActivated": 1}
    # The status shows what the charge point itself reported, as its live view does.
    assert security_events.latest_critical(read_models) == {
        "SEC-1": {"type": "TamperDetectionActivated", "timestamp": "2030-01-01T10:00:00.000Z",
                  "receivedAt": "2030-01-01T10:00:00.000Z"},
        "SEC-2": {"type": "MemoryExhaustion", "timestamp": "9999-12-30T23:59:59.999Z", "techInfo": "full",
                  "receivedAt": "2030-01-01T10:00:00.000Z"},
    }
