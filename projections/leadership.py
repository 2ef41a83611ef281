"""Which node builds the read models: the one holding a PostgreSQL advisory lock.

Several nodes on one PostgreSQL database share one set of read models. One
node at a time, the projections' leader, applies events to them: the one
whose dedicated connection holds the session-level advisory lock
``LEADER_LOCK`` (adapters/store/node_tables.py). The others try for it
every second; when the leader dies its session ends, the lock is free, and
one of them takes over within about a second (a cut connection ends the
session as well). On SQLite (and for
``csms projections rebuild``) there is one process: it always leads.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from adapters.store import LEADER_CONNECTION, LEADER_LOCK

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0  # how often a follower tries for the lock, and a leader checks it still holds it


class Leadership:
    """Always the leader: one process alone on its store."""

    leading = True

    def check(self) -> bool:
        """Whether this node leads now (tries for, or confirms, the lock at most once per RETRY_SECONDS)."""
        return True

    def release(self) -> None:
        pass


class LockLeadership(Leadership):
    """The leader by ``pg_try_advisory_lock`` on a connection of its own (used from one thread)."""

    def __init__(self, conninfo: str, node: str) -> None:
        self._conninfo = conninfo
        self._node = node
        self._conn: Any = None
        self._checked = 0.0
        self.leading = False

    def check(self) -> bool:
        now = time.monotonic()
        if now - self._checked < RETRY_SECONDS:
            return self.leading
        self._checked = now
        try:
            if self._conn is None or self._conn.closed:
                self.leading = False  # a new session holds nothing
                self._conn = self._connect()
            if self.leading:
                self._conn.execute("SELECT 1")  # the session, and so the lock, still there
            else:
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()
                self.leading = bool(row[0])
                if self.leading:
                    log.info("node %s leads the read models now", self._node)
        except Exception as error:
            if self.leading:
                log.warning("node %s lost the read models' lead (%s)", self._node, error)
            self.leading = False
            self._close()
        return self.leading

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(self._conninfo, autocommit=True, connect_timeout=2,
                               application_name=LEADER_CONNECTION.format(node=self._node)[:63])

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
        self._conn = None

    def release(self) -> None:
        """Closing the session frees the lock: another node leads within a second."""
        self.leading = False
        self._close()
