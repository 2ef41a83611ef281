"""/api/transactions: the billing read model, as JSON or as CSV for billing systems."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

from aiohttp import web

from adapters.api.freshness import fresh_read_models
from adapters.api.parameters import int_parameter, moment_parameter, path_int, read_json_object, text_parameter
from adapters.api.responses import ApiError, json_response
from adapters.api.routing import Query, Route
from adapters.service.startup import CHARGE_POINTS, CLOCK
from adapters.service.transaction_end import end_transaction
from projections import billing, unmatched_stops

CSV_COLUMNS = (
    "transactionId", "chargePointId", "connectorId", "idTag", "parentIdTag", "startTimestamp", "stopTimestamp",
    "meterStart", "meterStop", "energyWh", "durationSeconds", "stopReason", "status", "cost", "currency",
)


async def list_transactions(request: web.Request) -> web.StreamResponse:
    read_models = await fresh_read_models(request)
    status = request.query.get("status")
    if status is not None and status not in billing.STATUSES:
        raise ApiError(400, f"status must be one of {', '.join(billing.STATUSES)}")
    wants_csv = request.query.get("format") == "csv" or "text/csv" in request.headers.get("Accept", "")
    transactions = await asyncio.to_thread(
        billing.find_transactions,
        read_models,
        charge_point_id=text_parameter(request, "chargePointId"),
        id_tag=text_parameter(request, "idTag"),
        status=status,
        since=moment_parameter(request, "since"),
        until=moment_parameter(request, "until"),
        # Billing systems get finished sessions only: an active one has no bill yet.
        finished_only=wants_csv,
        limit=min(int_parameter(request, "limit", 10_000), 100_000),
    )
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
    read_models = await fresh_read_models(request)
    transaction_id = path_int(request, "transactionId")
    transaction = await asyncio.to_thread(billing.find_transaction, read_models, transaction_id)
    if transaction is None:
        raise ApiError(404, f"unknown transaction {transaction_id}")
    return json_response(transaction)


async def list_unmatched_stops(request: web.Request) -> web.Response:
    read_models = await fresh_read_models(request)
    transaction_id = None
    if "transactionId" in request.query:
        transaction_id = int_parameter(request, "transactionId", 0)
    stops = await asyncio.to_thread(
        unmatched_stops.find_unmatched_stops,
        read_models,
        charge_point_id=text_parameter(request, "chargePointId"),
        transaction_id=transaction_id,
        limit=min(int_parameter(request, "limit", 10_000), 100_000),
    )
    return json_response({"unmatchedStops": stops})


async def end_stale_transaction(request: web.Request) -> web.Response:
    transaction_id = path_int(request, "transactionId")
    body = await read_json_object(request)
    read_models = await fresh_read_models(request)
    await end_transaction(request.app[CHARGE_POINTS], read_models, transaction_id, body.get("reason"),
                          request.app[CLOCK]())
    # The read models hold the end before the operator sees the transaction.
    read_models = await fresh_read_models(request)
    transaction = await asyncio.to_thread(billing.find_transaction, read_models, transaction_id)
    return json_response(transaction)


ROUTES = [
    Route("GET", "/api/transactions", list_transactions,
          "Billing read model; filters chargePointId, idTag, since, until, status; CSV with format=csv",
          errors={400: "a bad query parameter (the message names it)"},
          query=(
              Query("chargePointId", "string", "only this charge point's"),
              Query("idTag", "string", "only this id tag's"),
              Query("since", "string", "ISO 8601: sessions started at or after this moment"),
              Query("until", "string", "ISO 8601: sessions started before this moment"),
              Query("status", "string", ", ".join(billing.STATUSES)),
              Query("limit", "integer", "at most this many (default 10000, never more than 100000)"),
              Query("format", "string", "csv for finished sessions as CSV"),
          )),
    # Before /api/transactions/{transactionId}, which would take its last segment for an id.
    Route(
        "GET", "/api/transactions/unmatched-stops", list_unmatched_stops,
        "StopTransactions that matched no transaction of their charge point",
        description="A stop for an id the CSMS never issued (reason unknown_transaction) or issued to another"
        " charge point (reason other_charge_points_transaction, with ownerChargePointId). It ends and bills"
        " nothing and is not in /api/transactions; the charge point's history keeps it, flagged"
        " unknown_transaction. Each has the stopping charge point and its event version.",
        errors={400: "a bad transactionId or limit"},
        query=(
            Query("chargePointId", "string", "only the stops this charge point sent"),
            Query("transactionId", "integer", "only stops of this transaction id"),
            Query("limit", "integer", "at most this many (10000 by default)"),
        ),
    ),
    Route("GET", "/api/transactions/{transactionId}", get_transaction, "One transaction",
          errors={400: "the transaction id is not a 64-bit integer", 404: "unknown transaction"}),
    Route("POST", "/api/transactions/{transactionId}/end", end_stale_transaction,
          "End a stale transaction (no OCPP call): billed with what is known, flagged ended_by_operator",
          body="TransactionEnd",
          errors={400: "the body is not a JSON object, or the transaction id is not a 64-bit integer",
                  404: "unknown transaction", 409: "the transaction has ended",
                  422: "reason is not a non-empty string of at most 255 characters"}),
]
