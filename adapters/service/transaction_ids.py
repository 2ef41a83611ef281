"""transactionIds unique across the whole CSMS, across restarts and nodes.

Each node reserves blocks of ids from a sequence row in the database; a block
is committed before any of its ids is handed out, and what a node leaves
unused when it stops is skipped, never reused. A burst that outruns the
background refill (a thousand charge points starting at once) reserves
inline, on the event loop, and doubles the block so it does so only a few
times. A grown block stays grown; the cost is ids skipped at a restart (what
is left of a block and of its refill, at most 2 x MAX_BLOCK_SIZE), which an
OCPP integer id can afford.
"""

from __future__ import annotations

import asyncio
import logging

from adapters.store import SideTables

log = logging.getLogger(__name__)

BLOCK_SIZE = 100  # the first block
MAX_BLOCK_SIZE = 6400
SEQUENCE = "transaction_id"


class TransactionIds:
    def __init__(self, side: SideTables) -> None:
        self._side = side
        self._next: list[int] = []
        self.block_size = BLOCK_SIZE
        self._refilling: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._refill()

    def allocate(self) -> int:
        if not self._next:
            self.block_size = min(2 * self.block_size, MAX_BLOCK_SIZE)
            log.warning("transactionId block exhausted; reserving %d synchronously", self.block_size)
            self._next.extend(reversed(self._side.reserve_block(SEQUENCE, self.block_size)))
        value = self._next.pop()
        if len(self._next) < self.block_size // 4 and self._refilling is None:
            self._refilling = asyncio.get_running_loop().create_task(self._refill())
        return value

    async def _refill(self) -> None:
        try:
            block = await asyncio.to_thread(self._side.reserve_block, SEQUENCE, self.block_size)
            # Hand out the older ids first: keep the current ones on top of the stack.
            self._next[:0] = reversed(block)
        finally:
            self._refilling = None
