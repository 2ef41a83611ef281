"""Keeps every read model caught up with the event store.

A thread follows the application sequence (notification ids) from the
tracked position. It is woken after each group commit and also looks every
second, for events other writers (another node, a rebuild) stored. SQLite
has no subscription at all, so one polling follower serves both stores.

With several nodes on one PostgreSQL database, only the projections' leader
(projections/leadership.py) applies events. The others follow the tracked
position the leader advances (for their readers' freshness waits) and read
only the events their watchers asked for (the id tags, the tariffs, new
reservations), never applying anything.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import threading
from typing import Any, Callable, Iterable, Sequence

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from adapters.store import EventStore, schema_lock
from domain.chargepoint import ChargePoint, topic
from domain.tariffs import TariffBook
from projections import billing, certificate_requests, reservations, security_events, status, unmatched_stops
from projections.database import PositionMoved, ReadModelDatabase, Sql, Update
from projections.leadership import Leadership

log = logging.getLogger(__name__)

BATCH = 2000
GATHER_SECONDS = 0.1
MAX_OFFERED = 50_000  # beyond this the follower reads back from the store
WAITING_POLL = 0.02  # a non-leader with readers waiting looks at the tracked position this often

FAILURES = {
    "read_model_failures": """
        CREATE TABLE IF NOT EXISTS read_model_failures (
            notification_id {bigint} PRIMARY KEY,
            originator_id TEXT NOT NULL,
            originator_version INTEGER NOT NULL,
            topic TEXT NOT NULL,
            error TEXT NOT NULL
        )""",
}
TABLES = {**FAILURES, **status.TABLES, **billing.TABLES, **unmatched_stops.TABLES, **reservations.TABLES,
          **certificate_requests.TABLES, **security_events.TABLES}
# Old ones imply events the read models take (ChargePoint.implied_events): always read.
ANSWERS = frozenset({topic("CallAnswered"), topic("CallFailed")})


def updates_by_topic() -> dict[str, list[Update]]:
    table: dict[str, list[Update]] = {}
    for module_updates in (status.UPDATES, billing.UPDATES, reservations.UPDATES, certificate_requests.UPDATES,
                           security_events.UPDATES):
        for name, update in module_updates.items():
            table.setdefault(topic(name), []).append(update)
    for name, update in billing.TARIFF_UPDATES.items():
        table.setdefault(f"{TariffBook.TOPIC}.{name}", []).append(update)
    return table


def _with_implied(event: Any) -> tuple[Any, ...]:
    """The event, then the events it implied if it is an answer stored before
    they were recorded beside it (domain/chargepoint_events.py)."""
    implied = ChargePoint.implied_events(event)
    return (event, *implied) if implied else (event,)


def _apply(work: list[tuple[Any, list[Update]]], sql: Sql) -> None:
    for event, updates in work:
        for update in updates:
            update(event, sql)


def _set_aside(notification: Notification, error: str, sql: Sql) -> None:
    sql.run(
        "INSERT INTO read_model_failures (notification_id, originator_id, originator_version, topic, error)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (notification_id) DO NOTHING",
        (notification.id, str(notification.originator_id), notification.originator_version, notification.topic,
         error[:1000]),
    )


class ReadModels:
    def __init__(self, store: EventStore, leadership: Leadership | None = None) -> None:
        self.store = store
        self.leadership = leadership or Leadership()
        self._when_leading: list[Callable[[], None]] = []
        with schema_lock(store.config):
            self.db = ReadModelDatabase(store.config, TABLES)
        self.updates = updates_by_topic()
        self.position = self.db.position()
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._watchers: dict[str, Callable[[int], None]] = {}
        self._topic_watchers: dict[str, Callable[[Any], None]] = {}
        self._watched_topics: set[str] = set()
        self._told = self.position  # watchers know of every event up to here
        self._offered: collections.deque[tuple[int, Any]] = collections.deque()
        self._offered_lock = threading.Lock()

    # ---- following the store ------------------------------------------------

    def offer(self, recorded: list[tuple[int, Any]]) -> None:
        """This node's committed events with their notification ids (writer thread).

        When they follow on from our position, they are applied as they are:
        no reading back, no decoding. Anything else (another node's events, a
        gap) is read from the store as usual.
        """
        with self._offered_lock:
            self._offered.extend(recorded)
            while len(self._offered) > MAX_OFFERED:
                self._offered.popleft()

    def _take_offered(self) -> list[tuple[int, Any]]:
        """The offered events that continue exactly from our position."""
        taken: list[tuple[int, Any]] = []
        with self._offered_lock:
            while self._offered and self._offered[0][0] <= self.position:
                self._offered.popleft()  # applied already (read from the store)
            expected = self.position + 1
            while self._offered and self._offered[0][0] == expected and len(taken) < BATCH:
                taken.append(self._offered.popleft())
                expected += 1
        return taken

    def _work(self, events: Iterable[Any]) -> list[tuple[Any, list[Update]]]:
        """Each event (and what an old answer implied) with the updates of its topic."""
        work = [(each, self.updates[topic]) for event in events for each in _with_implied(event)
                if (topic := get_topic(type(each))) in self.updates]
        if self._topic_watchers and self._loop is not None:
            for each, _ in work:
                callback = self._topic_watchers.get(get_topic(type(each)))
                if callback is not None:
                    self._loop.call_soon_threadsafe(callback, each)
        return work

    def _apply_offered(self, offered: list[tuple[int, Any]]) -> bool:
        work = self._work(event for _, event in offered)
        self._tell_watchers_of(event for _, event in offered)
        try:
            self.db.apply(functools.partial(_apply, work), offered[-1][0], self.position)
        except PositionMoved as moved:
            self.position = moved.position
            return True
        except Exception:
            # Read them back instead: that path sets aside what cannot be applied.
            log.exception("applying committed events failed; reading them back from the store")
            with self._offered_lock:
                self._offered.clear()
            return False
        self.position = offered[-1][0]
        return True

    def catch_up(self) -> int:
        """Applies everything stored after our position; returns how many events."""
        applied = 0
        while True:
            offered = self._take_offered()
            if offered and self._apply_offered(offered):
                applied += len(offered)
                self._announce(self.position)
                continue
            notifications = self.store.app.recorder.select_notifications(start=self.position + 1, limit=BATCH)
            if not notifications:
                return applied
            self._tell_watchers(notifications)
            try:
                try:
                    work = functools.partial(_apply, self._decode(notifications))
                    self.db.apply(work, notifications[-1].id, self.position)
                except PositionMoved:
                    raise
                except Exception:
                    log.exception("a batch of read-model updates failed; applying it event by event")
                    for notification in notifications:
                        self._apply_alone(notification)
            except PositionMoved as moved:
                # Another node (or a rebuild) applied them: carry on from where it got.
                self.position = moved.position
                self._announce(self.position)
                continue
            self.position = notifications[-1].id
            applied += len(notifications)
            self._announce(self.position)

    def watch(self, aggregate_id: str, callback: Callable[[int], None], topics: Iterable[str]) -> None:
        """Calls ``callback(version)`` on the event loop for each stored event of
        that aggregate (its events have these ``topics``), from any node: how
        node-wide aggregates held in memory learn that another node changed them."""
        self._watchers[aggregate_id] = callback
        self._watched_topics.update(topics)

    def watch_topic(self, topic: str, callback: Callable[[Any], None]) -> None:
        """Calls ``callback(event)`` on the event loop for each stored event of
        that topic (one the read models take), from any node, leader or not."""
        self._topic_watchers[topic] = callback
        self._watched_topics.add(topic)

    def when_leading(self, callback: Callable[[], None]) -> None:
        """Calls ``callback()`` on the event loop each time this node becomes the leader from now on."""
        self._when_leading.append(callback)

    @property
    def leading(self) -> bool:
        return self.leadership.leading

    def _tell_watchers(self, notifications: Sequence[Notification]) -> None:
        self._tell_watchers_of(notifications)

    def _tell_watchers_of(self, events: Iterable[Any]) -> None:
        if self._loop is None or not self._watchers:
            return
        for event in events:
            callback = self._watchers.get(str(event.originator_id))
            if callback is not None:
                self._loop.call_soon_threadsafe(callback, event.originator_version)

    def _decode(self, notifications: Sequence[Notification]) -> list[tuple[Any, list[Update]]]:
        mapper = self.store.app.mapper
        return self._work(mapper.to_domain_event(n) for n in notifications
                          if n.topic in self.updates or n.topic in ANSWERS)

    def _apply_alone(self, notification: Notification) -> None:
        """One event the read models cannot take is set aside, not allowed to stop them."""
        try:
            self.db.apply(functools.partial(_apply, self._decode([notification])), notification.id, self.position)
        except PositionMoved:
            raise
        except Exception as error:
            log.exception("read models set aside event %d (%s)", notification.id, notification.topic)
            self.db.apply(functools.partial(_set_aside, notification, repr(error)), notification.id, self.position)
        self.position = notification.id

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._told = self.position
        self._thread = threading.Thread(target=self._follow, name="read-models", daemon=True)
        self._thread.start()

    def wake(self, _events: Any = None) -> None:
        """Called after each group commit: there is something new to read."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._urgent.set()
        if self._thread is not None:
            self._thread.join()
            # The follower may have quit before the last commits (the
            # disconnections a shutdown records): apply them, so a stopped
            # node's read models are complete for analysts.
            self._loop = None
            try:
                if self.leadership.check():  # a follower leaves them to the leader
                    self.catch_up()
            except Exception:
                log.exception("read models could not apply events after %d", self.position)
        self.leadership.release()
        self.db.close()

    def _follow(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            was_leading = self.leading
            leading = self.leadership.check()
            try:
                if leading and not was_leading:
                    self._announce_leading()
                    self._follow_tracked()  # what the last leader applied, for our watchers
                if leading:
                    self.catch_up()
                    self._told = self.position
                else:
                    self._follow_tracked()
            except Exception:
                # The events are safe; the read model retries from its position.
                log.exception("read models could not apply events after %d", self.position)
                self._stopping.wait(1.0)
            if not leading:
                # Commits do not concern a follower: the leader applies them.
                # It looks every second, and often while readers wait.
                self._urgent.wait(timeout=WAITING_POLL if self._waiters else 1.0)
                self._urgent.clear()
                continue
            self._wake.wait(timeout=1.0)
            # Under load, gather a little before applying: one transaction and
            # one last-seen write per charge point then cover many commits.
            # A reader waiting for its own writes cuts this short.
            self._urgent.wait(timeout=GATHER_SECONDS)
            self._urgent.clear()

    def _follow_tracked(self) -> None:
        """A non-leader: the position the leader tracked, and the watched events up to it."""
        with self._offered_lock:
            self._offered.clear()  # the leader reads them from the store
        tracked = self.db.position()
        if tracked < self._told:
            self._told = tracked  # a rebuild started again from event one
        recorder = self.store.app.recorder
        while self._watched_topics and self._told < tracked:
            notifications = recorder.select_notifications(start=self._told + 1, limit=BATCH, stop=tracked,
                                                          topics=sorted(self._watched_topics))
            self._tell_watchers(notifications)
            mapper = self.store.app.mapper
            self._work(mapper.to_domain_event(n) for n in notifications if n.topic in self._topic_watchers)
            self._told = notifications[-1].id if len(notifications) == BATCH else tracked
        self._told = tracked
        if tracked != self.position:
            self.position = tracked
            self._announce(tracked)

    def _announce_leading(self) -> None:
        if self._loop is not None:
            for callback in self._when_leading:
                self._loop.call_soon_threadsafe(callback)

    def lag(self) -> int:
        newest = self.store.app.recorder.max_notification_id() or 0
        return max(0, newest - self.position)

    # ---- read your own writes -------------------------------------------------

    def _announce(self, position: int) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._release, position)

    def _release(self, position: int) -> None:
        still_waiting = []
        for target, future in self._waiters:
            if target <= position:
                if not future.done():
                    future.set_result(None)
            else:
                still_waiting.append((target, future))
        self._waiters = still_waiting

    async def reached(self, target: int, timeout: float = 5.0) -> bool:
        """Waits until everything up to ``target`` is in the read models."""
        if target <= self.position:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        self._wake.set()
        self._urgent.set()
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return False
        return True

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return self.db.query(sql, params)

    def failures(self) -> int:
        """Events the read models set aside (each kept in read_model_failures with its error)."""
        return int(self.query("SELECT COUNT(*) AS n FROM read_model_failures")[0]["n"])

    def rebuild(self) -> int:
        """Drops every read model and replays the whole store into fresh tables."""
        self.db.drop_tables()
        self.db.create_tables()
        self.position = 0
        return self.catch_up()
