"""What billing does with a transaction id that already holds a row when a start arrives, on both stores.

Ids are issued once, so a start normally finds its id free. Read models an
older version built may hold a stop-only row for an unknown stop: it gives
way to the id's real start and is kept among the unmatched stops. A second
start of an id is never dropped unseen: it flags the row.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from domain.timestamps import parse_ocpp_time
from projections import billing
from projections.database import ReadModelDatabase, Sql
from projections.unmatched_stops import find_unmatched_stops


def applied(db: ReadModelDatabase, *changes: Any) -> None:
    with db.datastore.transaction(commit=True) as cursor:
        sql = Sql(cursor, db.dialect)
        for change in changes:
            change(sql)
        sql.flush()


def started(charge_point_id: str, version: int, transaction_id: int, meter_start: int, at: str) -> Any:
    request = {"connectorId": 1, "idTag": "TAG", "meterStart": meter_start, "timestamp": at}
    reply = {"transactionId": transaction_id, "idTagInfo": {"status": "Accepted"}}
    return SimpleNamespace(originator_id=charge_point_id, originator_version=version, transaction_id=transaction_id,
                           request=request, reply=reply, flags=[])


def stopped(charge_point_id: str, version: int, transaction_id: int, meter_stop: int, at: str,
            energy_wh: int | None, duration_seconds: int | None, flags: list[str]) -> Any:
    request = {"transactionId": transaction_id, "meterStop": meter_stop, "timestamp": at}
    return SimpleNamespace(originator_id=charge_point_id, originator_version=version, request=request, reply={},
                           flags=flags, energy_wh=energy_wh, duration_seconds=duration_seconds)


def test_a_stop_only_row_of_an_older_version_gives_way_to_the_real_start(read_models: ReadModelDatabase) -> None:
    def older_versions_unknown_stop(sql: Sql) -> None:  # given what an older version wrote for CP-B's guess
        sql.run("INSERT INTO billing_transactions (transaction_id, charge_point_id, id_tag, stop_timestamp,"
                " meter_stop, stop_reason, status, flags) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (77, "CP-B", None, parse_ocpp_time("2030-01-01T09:00:00Z"), 7, "Local", "flagged",
                 "unknown_transaction"))

    applied(read_models, older_versions_unknown_stop)

    applied(  # when the id's real start and stop arrive
        read_models,
        lambda sql: billing.on_transaction_started(started("CP-A", 4, 77, 1000, "2030-01-01T10:00:00Z"), sql),
        lambda sql: billing.on_transaction_stopped(
            stopped("CP-A", 5, 77, 51_000, "2030-01-01T12:00:00Z", 50_000, 7200, []), sql),
    )

    bill = billing.find_transaction(read_models, 77)  # then the session is CP-A's, billed with its figures
    assert bill is not None
    assert (bill["chargePointId"], bill["meterStart"], bill["meterStop"], bill["energyWh"], bill["status"]) == (
        "CP-A", 1000, 51_000, 50_000, "completed"
    )
    [moved] = find_unmatched_stops(read_models)  # and CP-B's stop is kept apart
    assert (moved["chargePointId"], moved["version"], moved["transactionId"], moved["meterStop"], moved["reason"]) == (
        "CP-B", 0, 77, 7, "unknown_transaction"
    )


def test_a_second_start_of_an_id_flags_its_row(read_models: ReadModelDatabase) -> None:
    applied(read_models,
            lambda sql: billing.on_transaction_started(started("CP-A", 4, 88, 0, "2030-01-01T10:00:00Z"), sql))

    applied(read_models,  # when another start of the same id arrives
            lambda sql: billing.on_transaction_started(started("CP-C", 9, 88, 500, "2030-01-01T10:05:00Z"), sql))

    bill = billing.find_transaction(read_models, 88)  # then the first start keeps the row, flagged for review
    assert bill is not None
    assert (bill["chargePointId"], bill["meterStart"], bill["status"], bill["flags"]) == (
        "CP-A", 0, "active", ["transaction_id_reused"]
    )
    applied(read_models, lambda sql: billing.on_transaction_stopped(
        stopped("CP-A", 5, 88, 100, "2030-01-01T11:00:00Z", 100, 3600, []), sql))
    bill = billing.find_transaction(read_models, 88)
    assert bill is not None and (bill["status"], bill["flags"]) == ("flagged", ["transaction_id_reused"])
