"""Read-model routes: transactions and CSV export, tariffs, daily usage,
state at a moment, and metrics.

Queries first wait until the read models hold everything this node has
committed, so an operator always reads their own writes.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime
from typing import Any

from aiohttp import web

from adapters.audit import state_at
from adapters.central import CHARGE_POINT_ID, CentralSystem
from adapters.http import ApiError, Route, int_parameter, json_response, read_json_object
from adapters.views import charge_point_status
from adapters.websocket import CENTRAL
from domain.tariffs import DEFAULT_SCOPE, TariffRejected, parse_tariff
from domain.timestamps import parse_ocpp_time
from projections.billing import transaction_view

TRANSACTION_STATUSES = ("active", "completed", "flagged")
CSV_COLUMNS = (
    "transactionId", "chargePointId", "connectorId", "idTag", "parentIdTag", "startTimestamp", "stopTimestamp",
    "meterStart", "meterStop", "energyWh", "durationSeconds", "stopReason", "status", "cost", "currency",
)


async def fresh_read_models(request: web.Request) -> CentralSystem:
    central: CentralSystem = request.app[CENTRAL]
    if not await central.read_models.reached(central.committer.position):
        raise ApiError(503, "the read models are catching up; try again", lag=central.read_models.position)
    return central


def moment_parameter(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        return parse_ocpp_time(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO 8601 date-time") from None


async def list_transactions(request: web.Request) -> web.StreamResponse:
    central = await fresh_read_models(request)
    conditions: list[str] = []
    params: list[Any] = []
    for name, column in (("chargePointId", "charge_point_id"), ("idTag", "id_tag"), ("status", "status")):
        value = request.query.get(name)
        if value is not None:
            if name == "status" and value not in TRANSACTION_STATUSES:
                raise ApiError(400, f"status must be one of {', '.join(TRANSACTION_STATUSES)}")
            conditions.append(f"LOWER({column}) = LOWER(?)" if name == "idTag" else f"{column} = ?")
            params.append(value)
    for name, operator in (("since", ">="), ("until", "<")):
        moment = moment_parameter(request, name)
        if moment is not None:
            conditions.append(f"start_timestamp {operator} ?")
            params.append(moment)
    wants_csv = request.query.get("format") == "csv" or "text/csv" in request.headers.get("Accept", "")
    if wants_csv:
        # Billing systems get finished sessions only: an active one has no bill yet.
        conditions.append("stop_timestamp IS NOT NULL AND status <> 'active'")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    limit = min(int_parameter(request, "limit", 10_000), 100_000)
    rows = await asyncio.to_thread(
        central.read_models.query,
        f"SELECT * FROM billing_transactions {where} ORDER BY start_timestamp, transaction_id LIMIT {limit}",
        params,
    )
    transactions = [transaction_view(row) for row in rows]
    if wants_csv:
        return csv_response(transactions)
    return json_response({"transactions": transactions})


def csv_response(transactions: list[dict[str, Any]]) -> web.Response:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(transactions)
    return web.Response(
        text=buffer.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="transactions.csv"'},
    )


async def get_transaction(request: web.Request) -> web.Response:
    central = await fresh_read_models(request)
    try:
        transaction_id = int(request.match_info["transactionId"])
    except ValueError:
        raise ApiError(400, "transactionId must be an integer") from None
    rows = await asyncio.to_thread(
        central.read_models.query, "SELECT * FROM billing_transactions WHERE transaction_id = ?", [transaction_id]
    )
    if not rows:
        raise ApiError(404, f"unknown transaction {transaction_id}")
    return json_response(transaction_view(rows[0]))


async def list_tariffs(request: web.Request) -> web.Response:
    book = request.app[CENTRAL].tariffs.current
    return json_response({"tariffs": {scope: tariff for scope, tariff in sorted(book.current.items())}})


async def put_default_tariff(request: web.Request) -> web.Response:
    return await _set_tariff(request, DEFAULT_SCOPE)


async def put_charge_point_tariff(request: web.Request) -> web.Response:
    charge_point_id = request.match_info["chargePointId"]
    if charge_point_id not in request.app[CENTRAL].registered:
        raise ApiError(404, f"unknown charge point {charge_point_id}")
    if charge_point_id == DEFAULT_SCOPE:
        # Its own scope is the default tariff's: setting it would reprice every charge point.
        raise ApiError(409, f"a charge point named {DEFAULT_SCOPE!r} is billed with the default tariff;"
                            " set that with PUT /api/tariffs/default")
    return await _set_tariff(request, charge_point_id)


async def _set_tariff(request: web.Request, scope: str) -> web.Response:
    central: CentralSystem = request.app[CENTRAL]
    try:
        tariff = parse_tariff(await read_json_object(request))
    except TariffRejected as rejected:
        raise ApiError(422, str(rejected)) from None
    now = central.now()
    await central.tariffs.change(lambda book: book.set_tariff(scope=scope, tariff=tariff, effective_from=now))
    return json_response(dict(tariff, scope=scope, effectiveFrom=now))


async def daily_usage(request: web.Request) -> web.Response:
    central = await fresh_read_models(request)
    conditions: list[str] = []
    params: list[Any] = []
    if "chargePointId" in request.query:
        conditions.append("charge_point_id = ?")
        params.append(request.query["chargePointId"])
    for name, operator in (("since", ">="), ("until", "<")):
        if name in request.query:
            day = request.query[name][:10]
            conditions.append(f"day {operator} ?")
            params.append(day)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = await asyncio.to_thread(
        central.read_models.query, f"SELECT * FROM daily_utilisation_view {where} ORDER BY day, charge_point_id", params
    )
    return json_response(
        {
            "days": [
                {
                    "chargePointId": row["charge_point_id"],
                    "day": row["day"],
                    "sessions": row["sessions"],
                    "energyWh": row["energy_wh"],
                    "chargingSeconds": row["charging_seconds"],
                    "utilisation": round(float(row["utilisation"]), 6),
                }
                for row in rows
            ]
        }
    )


async def charge_point_state(request: web.Request) -> web.Response:
    central: CentralSystem = request.app[CENTRAL]
    charge_point_id = request.match_info["chargePointId"]
    if not CHARGE_POINT_ID.match(charge_point_id):
        raise ApiError(400, "not a valid charge point identity")
    moment = moment_parameter(request, "at")
    events = await asyncio.to_thread(lambda: list(central.store.history(charge_point_id)))
    if not events:
        raise ApiError(404, f"unknown charge point {charge_point_id}")
    aggregate, applied = state_at(events, moment)
    if aggregate is None:
        raise ApiError(404, f"{charge_point_id} was not registered yet at {moment.isoformat() if moment else ''}")
    return json_response({"at": moment or central.now(), "eventsApplied": applied,
                          "state": charge_point_status(aggregate)})


async def metrics(request: web.Request) -> web.Response:
    central: CentralSystem = request.app[CENTRAL]
    lag = await asyncio.to_thread(central.read_models.lag)
    failures = await asyncio.to_thread(central.read_models.query, "SELECT COUNT(*) AS n FROM read_model_failures")
    lines = [
        "# TYPE csms_read_model_lag gauge",
        f"csms_read_model_lag {lag}",
        "# TYPE csms_read_model_position gauge",
        f"csms_read_model_position {central.read_models.position}",
        "# TYPE csms_read_model_failures gauge",
        f"csms_read_model_failures {failures[0]['n']}",
        "# TYPE csms_committed_events_total counter",
        f"csms_committed_events_total {central.committer.committed_events}",
        "# TYPE csms_commit_batches_total counter",
        f"csms_commit_batches_total {central.committer.batches}",
        "# TYPE csms_connected_charge_points gauge",
        f"csms_connected_charge_points {len(central.actors)}",
    ]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


ROUTES = [
    Route("GET", "/metrics", metrics, "Prometheus metrics, read-model lag among them (no token needed)"),
    Route("GET", "/api/transactions", list_transactions,
          "Billing read model; filters chargePointId, idTag, since, until, status; CSV with format=csv"),
    Route("GET", "/api/transactions/{transactionId}", get_transaction, "One transaction"),
    Route("GET", "/api/tariffs", list_tariffs, "The tariffs in force"),
    Route("PUT", "/api/tariffs/default", put_default_tariff, "Set the default tariff from now on"),
    Route("PUT", "/api/chargepoints/{chargePointId}/tariff", put_charge_point_tariff,
          "Set a charge point's own tariff from now on"),
    Route("GET", "/api/analytics/daily", daily_usage, "Energy, sessions and utilisation per charge point per day"),
    Route("GET", "/api/chargepoints/{chargePointId}/state", charge_point_state,
          "The charge point's state as it was at ?at=ISO8601 (default now)"),
]
