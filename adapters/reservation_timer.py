"""Reservations expire on time, whether or not their charge point says a word.

One timer per charge point, set for its earliest open reservation's
expiryDate. When it fires, the aggregate expires what is due and tells when
the next one is; committed ReservationRequested events set timers as they
come, and on startup every charge point with an open reservation (from the
reservations read model) is checked once, so nothing open is forgotten
across a restart.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Sequence

from domain.chargepoint import topic
from domain.reservation_book import OPEN
from domain.timestamps import parse_ocpp_time

if TYPE_CHECKING:
    from adapters.central import CentralSystem

log = logging.getLogger(__name__)

REQUESTED = topic("ReservationRequested")
RETRY_AFTER_FAILURE = timedelta(seconds=5)  # a store that failed once is tried again


class ReservationTimer:
    def __init__(self, central: CentralSystem) -> None:
        self._central = central
        self._timers: dict[str, tuple[datetime, asyncio.TimerHandle]] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._stopped = False

    async def start(self) -> None:
        # The read models are caught up before the timer starts: they know
        # which charge points hold open reservations.
        rows = await asyncio.to_thread(
            self._central.read_models.query,
            "SELECT DISTINCT charge_point_id FROM reservations WHERE status IN (?, ?)",
            sorted(OPEN),
        )
        for charge_point_id in sorted(row["charge_point_id"] for row in rows):
            await self._expire_due(charge_point_id)
        self._central.committer.add_listener(self.observe)

    def stop(self) -> None:
        self._stopped = True
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in self._running:
            task.cancel()

    def observe(self, events: Sequence[Any]) -> None:
        """Committed events: a new reservation sets its charge point's timer."""
        for event in events:
            if getattr(type(event), "TOPIC", None) == REQUESTED:
                self._arm(event.originator_id, parse_ocpp_time(event.request["expiryDate"]))

    def _arm(self, charge_point_id: str, at: datetime) -> None:
        current = self._timers.get(charge_point_id)
        if self._stopped or (current is not None and current[0] <= at):
            return  # the timer already fires no later; it re-arms for the rest
        if current is not None:
            current[1].cancel()
        delay = max((at - self._central.now()).total_seconds(), 0.0)
        loop = asyncio.get_running_loop()
        handle = loop.call_later(delay, self._fire, charge_point_id)
        self._timers[charge_point_id] = (at, handle)

    def _fire(self, charge_point_id: str) -> None:
        self._timers.pop(charge_point_id, None)
        if self._stopped:
            return
        task = asyncio.get_running_loop().create_task(self._expire_due(charge_point_id))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _expire_due(self, charge_point_id: str) -> None:
        central = self._central
        try:
            following = await central.execute(charge_point_id, lambda cp: cp.expire_due_reservations(central.now()))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not expire the reservations of %s; trying again", charge_point_id)
            self._arm(charge_point_id, central.now() + RETRY_AFTER_FAILURE)
            return
        if following is not None:
            self._arm(charge_point_id, following)
