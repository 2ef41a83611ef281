"""Liveness and Prometheus metrics (no token needed)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from adapters.api.responses import json_response
from adapters.api.routing import Route
from adapters.service.startup import COMMITTER, READ_MODELS, SESSIONS, SETTINGS


async def health(request: web.Request) -> web.Response:
    committer = request.app[COMMITTER]
    return json_response(
        {
            "status": "ok",
            "connectedChargePoints": len(request.app[SESSIONS]),
            "committedEvents": committer.committed_events,
            "commitBatches": committer.batches,
        }
    )


async def metrics(request: web.Request) -> web.Response:
    read_models, committer = request.app[READ_MODELS], request.app[COMMITTER]
    lag = await asyncio.to_thread(read_models.lag)
    failures = await asyncio.to_thread(read_models.failures)
    # Every node serves its own figures, labelled with its name.
    node = '{node="' + label_value(request.app[SETTINGS].node_name) + '"}'
    lines = [
        "# TYPE csms_read_model_lag gauge",
        f"csms_read_model_lag{node} {lag}",
        "# TYPE csms_read_model_position gauge",
        f"csms_read_model_position{node} {read_models.position}",
        "# TYPE csms_read_model_failures gauge",
        f"csms_read_model_failures{node} {failures}",
        "# TYPE csms_committed_events_total counter",
        f"csms_committed_events_total{node} {committer.committed_events}",
        "# TYPE csms_commit_batches_total counter",
        f"csms_commit_batches_total{node} {committer.batches}",
        "# TYPE csms_connected_charge_points gauge",
        f"csms_connected_charge_points{node} {len(request.app[SESSIONS])}",
    ]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


def label_value(text: str) -> str:
    """A Prometheus label value: backslash, double quote and newline escaped."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


ROUTES = [
    Route("GET", "/health", health, "Liveness and store figures (no token needed)", replies={200: "Health"}),
    Route("GET", "/metrics", metrics, "Prometheus metrics, read-model lag among them (no token needed)"),
]
