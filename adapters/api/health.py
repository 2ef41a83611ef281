"""Liveness and Prometheus metrics (no token needed)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from adapters.api.responses import json_response
from adapters.api.routing import Route
from adapters.security.tls_serving import HANDSHAKES
from adapters.service.startup import COMMITTER, CONNECTIONS, READ_MODELS, RESERVATION_TIMER, SESSIONS, SETTINGS
from projections import security_events


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
    critical = await asyncio.to_thread(security_events.critical_counts, read_models)
    # Every node serves its own figures, labelled with its name.
    node_name = request.app[SETTINGS].node_name
    node = labels(node_name)
    lines = [
        "# TYPE csms_read_model_lag gauge",
        f"csms_read_model_lag{node} {lag}",
        "# TYPE csms_read_model_position gauge",
        f"csms_read_model_position{node} {read_models.position}",
        "# HELP csms_read_model_leader 1 on the node that applies events to the read models (one at a time)",
        "# TYPE csms_read_model_leader gauge",
        f"csms_read_model_leader{node} {int(read_models.leading)}",
        "# TYPE csms_read_model_failures gauge",
        f"csms_read_model_failures{node} {failures}",
        "# TYPE csms_committed_events_total counter",
        f"csms_committed_events_total{node} {committer.committed_events}",
        "# TYPE csms_commit_batches_total counter",
        f"csms_commit_batches_total{node} {committer.batches}",
        "# TYPE csms_connected_charge_points gauge",
        f"csms_connected_charge_points{node} {len(request.app[SESSIONS])}",
        "# TYPE csms_reservation_expiry_checks_total counter",
        f"csms_reservation_expiry_checks_total{node} {request.app[RESERVATION_TIMER].checks}",
        "# HELP csms_reservation_expiry_runs_total times this node expired a charge point's due reservations",
        "# TYPE csms_reservation_expiry_runs_total counter",
        f"csms_reservation_expiry_runs_total{node} {request.app[RESERVATION_TIMER].runs}",
        *security_lines(request.app, node_name),
        "# HELP csms_security_events_critical_total critical security events (Security Whitepaper) by type",
        "# TYPE csms_security_events_critical_total counter",
        *(f"csms_security_events_critical_total{labels(node_name, type=type_)} {count}"
          for type_, count in critical.items()),
    ]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


def security_lines(app: web.Application, node_name: str) -> list[str]:
    """Refused connections (by security event type), those of them not written to history (at most one per
    charge point and type a minute is), failed TLS handshakes by reason, and certificate reloads."""
    admission = app[CONNECTIONS].admission
    lines = ["# TYPE csms_refused_connections_total counter"]
    lines += [f"csms_refused_connections_total{labels(node_name, type=kind)} {count}"
              for kind, count in sorted(admission.refused.items())]
    lines.append("# TYPE csms_refused_connections_unrecorded_total counter")
    lines += [f"csms_refused_connections_unrecorded_total{labels(node_name, type=kind)} {count}"
              for kind, count in sorted(admission.unrecorded.items())]
    stats = app.get(HANDSHAKES)
    if stats is not None:
        lines.append("# TYPE csms_tls_handshake_failures_total counter")
        lines += [f"csms_tls_handshake_failures_total{labels(node_name, reason=reason)} {count}"
                  for reason, count in sorted(stats.failures.items())]
        lines.append("# TYPE csms_tls_certificate_reloads_total counter")
        lines += [f"csms_tls_certificate_reloads_total{labels(node_name, result=result)} {count}"
                  for result, count in sorted(stats.reloads.items())]
    return lines


def labels(node_name: str, **more: str) -> str:
    """A metric's labels: the node's name first (every node serves its own figures), then ``more``."""
    pairs = {"node": node_name, **more}
    return "{" + ",".join(f'{name}="{label_value(value)}"' for name, value in pairs.items()) + "}"


def label_value(text: str) -> str:
    """A Prometheus label value: backslash, double quote and newline escaped."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


ROUTES = [
    Route("GET", "/health", health, "Liveness and store figures (no token needed)", replies={200: "Health"}),
    Route("GET", "/metrics", metrics, "Prometheus metrics, read-model lag among them (no token needed)"),
]
