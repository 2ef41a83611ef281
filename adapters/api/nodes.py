"""GET /api/nodes: the nodes that make up the central system, their charge points and their health."""

from __future__ import annotations

from aiohttp import web

from adapters.api.responses import json_response
from adapters.api.routing import Route
from adapters.service.startup import NODE_REGISTRY, READ_MODELS


async def list_nodes(request: web.Request) -> web.Response:
    registry = request.app[NODE_REGISTRY]
    nodes = await registry.nodes()
    return json_response({
        "thisNode": registry.node,
        "projectionsLeader": request.app[READ_MODELS].leading,
        "nodes": [
            {
                "name": node.name,
                "started": node.started_at.isoformat(),
                "lastRenewal": node.renewed_at.isoformat(),
                "healthy": node.healthy,
                "chargePointCount": len(node.charge_point_ids),
                "chargePointIds": node.charge_point_ids,
                "projectionsLeader": (request.app[READ_MODELS].leading if node.name == registry.node
                                      else node.projections_leader),
            }
            for node in nodes
        ],
    })


ROUTES = [
    Route(
        "GET", "/api/nodes", list_nodes, "The nodes of the central system, their charge points and health",
        description=(
            "Several `csms serve` on one PostgreSQL database are one central system; each holds the charge points "
            "connected to it under a lease it renews every few seconds. A node is healthy while it renews; one "
            "that stopped (killed, cut off) is listed unhealthy until its charge points' leases run out and they "
            "connect elsewhere. One node at a time, the projections' leader, applies events to the read models; "
            "the others answer reads from them too. On SQLite the one node is this process."
        ),
        replies={200: "Nodes"},
    ),
]
