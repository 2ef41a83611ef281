"""Reservations expire on time, whether or not their charge point says a word.

One timer per charge point, set for its earliest open reservation's
expiryDate. When it fires, the aggregate expires what is due and tells when
the next one is; committed ReservationRequested events set timers as they
come, and on startup every charge point with an open reservation (from the
reservations read model) is checked once, so nothing open is forgotten
across a restart.

With several nodes, each expiry runs on one node: the one holding the
charge point's lease (it is connected there), or the projections' leader
when it is connected nowhere (``where`` decides as a timer fires). Every
node arms timers for every node's new reservations (the read models tell it
of the others'), so whoever the charge point is with when one falls due has
its timer; a node that is not the place drops it. The leader keeps checking
a charge point held by another node once a lease period while it still
holds open reservations, in case that node dies before expiring them; and a
node that becomes the leader checks every charge point with open
reservations once, as at startup.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, Iterable, Sequence

from adapters.service.chargepoints import ChargePoints
from adapters.service.settings import Clock
from domain.chargepoint import topic
from domain.timestamps import parse_ocpp_time

log = logging.getLogger(__name__)

REQUESTED = topic("ReservationRequested")
RETRY_AFTER_FAILURE = timedelta(seconds=5)  # a store that failed once is tried again


class Place(enum.Enum):
    """Where a charge point's reservations expire, as seen from this node."""

    HERE = "here"  # this node holds it, or it is connected nowhere and this node leads
    ELSEWHERE = "elsewhere"  # another node does it: forget the timer
    LATER = "later"  # the leader, the charge point held by another node: look again in a while


async def always_here(charge_point_id: str) -> Place:
    return Place.HERE


class ReservationTimer:
    def __init__(self, charge_points: ChargePoints, clock: Clock,
                 where: Callable[[str], Awaitable[Place]] = always_here, retry_elsewhere: float = 15.0) -> None:
        self._charge_points = charge_points
        self._now = clock
        self._where = where
        self._retry_elsewhere = timedelta(seconds=retry_elsewhere)
        self._timers: dict[str, tuple[datetime, asyncio.TimerHandle]] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._stopped = False
        self.checks = 0  # times a timer (or a start) of this node came due, wherever it then ran (/metrics)
        self.runs = 0  # times this node expired a charge point's due reservations (/metrics)

    async def start(self, holding_open_reservations: Iterable[str]) -> None:
        """Checks once each charge point that holds open reservations (the read model knows which)."""
        for charge_point_id in sorted(holding_open_reservations):
            await self._expire_due(charge_point_id)

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
            self.observe_one(event)

    def observe_one(self, event: Any) -> None:
        """A stored event, this node's or another's: a new reservation sets its charge point's timer."""
        if getattr(type(event), "TOPIC", None) == REQUESTED:
            self._arm(event.originator_id, parse_ocpp_time(event.request["expiryDate"]))

    def check_later(self, holding_open: Callable[[], Awaitable[list[str]]]) -> None:
        """Checks each charge point ``holding_open`` names, as at startup (this node became the leader)."""
        async def check() -> None:
            await self.start(await holding_open())

        self._spawn(check())

    def _arm(self, charge_point_id: str, at: datetime) -> None:
        current = self._timers.get(charge_point_id)
        if self._stopped or (current is not None and current[0] <= at):
            return  # the timer already fires no later; it re-arms for the rest
        if current is not None:
            current[1].cancel()
        delay = max((at - self._now()).total_seconds(), 0.0)
        loop = asyncio.get_running_loop()
        handle = loop.call_later(delay, self._fire, charge_point_id)
        self._timers[charge_point_id] = (at, handle)

    def _fire(self, charge_point_id: str) -> None:
        self._timers.pop(charge_point_id, None)
        if self._stopped:
            return
        self._spawn(self._expire_due(charge_point_id))

    def _spawn(self, work: Any) -> None:
        if self._stopped:
            work.close()
            return
        task = asyncio.get_running_loop().create_task(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _expire_due(self, charge_point_id: str) -> None:
        try:
            place = await self._where(charge_point_id)
            self.checks += 1
            if place is Place.LATER:
                self._arm(charge_point_id, self._now() + self._retry_elsewhere)
            if place is not Place.HERE:
                return
            self.runs += 1  # with the check above: no await between them
            following = await self._charge_points.change(
                charge_point_id, lambda cp: cp.expire_due_reservations(self._now())
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not expire the reservations of %s; trying again", charge_point_id)
            self._arm(charge_point_id, self._now() + RETRY_AFTER_FAILURE)
            return
        if following is not None:
            self._arm(charge_point_id, following)
