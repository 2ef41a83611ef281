"""transactionIds unique across the whole CSMS, across restarts and nodes.

Each node reserves blocks of ids from a sequence row in the database; a block
is committed before any of its ids is handed out, and what a node leaves
unused when it stops is skipped, never reused.
"""

from __future__ import annotations

import asyncio
import logging

from adapters.store import SideTables

log = logging.getLogger(__name__)

BLOCK_SIZE = 100
REFILL_BELOW = 25
SEQUENCE = "transaction_id"


class TransactionIds:
    def __init__(self, side: SideTables) -> None:
        self._side = side
        self._next: list[int] = []
        self._refilling: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._refill()

    def allocate(self) -> int:
        if not self._next:
            # A burst outran the background refill: reserve inline, once.
            log.warning("transactionId block exhausted; reserving synchronously")
            self._next.extend(reversed(self._side.reserve_block(SEQUENCE, BLOCK_SIZE)))
        value = self._next.pop()
        if len(self._next) < REFILL_BELOW and self._refilling is None:
            self._refilling = asyncio.get_running_loop().create_task(self._refill())
        return value

    async def _refill(self) -> None:
        try:
            block = await asyncio.to_thread(self._side.reserve_block, SEQUENCE, BLOCK_SIZE)
            # Hand out the older ids first: keep the current ones on top of the stack.
            self._next[:0] = reversed(block)
        finally:
            self._refilling = None
