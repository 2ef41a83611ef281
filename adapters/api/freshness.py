"""Read your own writes: a read-model query first waits for this node's latest commit."""

from __future__ import annotations

from aiohttp import web

from adapters.api.responses import ApiError
from adapters.service.startup import COMMITTER, READ_MODELS
from projections.runner import ReadModels


async def fresh_read_models(request: web.Request) -> ReadModels:
    """The read models once they hold everything this node committed; 503 after 5 s."""
    read_models = request.app[READ_MODELS]
    committed = request.app[COMMITTER].position
    if not await read_models.reached(committed):
        # lag: this node's committed events the read models have yet to apply (as on /metrics).
        raise ApiError(503, "the read models are catching up; try again",
                       lag=max(0, committed - read_models.position))
    return read_models
