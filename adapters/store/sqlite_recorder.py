"""The SQLite event recorder, inserting a batch with one statement.

The library's SQLite application recorder runs one INSERT per event to learn
each rowid (the notification id). Within one write transaction SQLite hands
out consecutive rowids, so one executemany and the last rowid give them all.
Each writing thread (in practice the group-commit writer) keeps a connection
of its own: the pool's checkout and return cost as much as inserting one
event (about 70,000 instructions of ~420,000 per one-event commit).
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteConnection, SQLiteCursor, SQLiteDatastore


class BatchInsertingSQLiteRecorder(SQLiteApplicationRecorder):
    def __init__(self, datastore: SQLiteDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self._own = threading.local()
        self._opened: list[SQLiteConnection] = []
        self._opened_lock = threading.Lock()

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        with self._connection().transaction(commit=True) as cursor:
            return self._insert_events(cursor, stored_events, **kwargs)

    def _connection(self) -> SQLiteConnection:
        connection: SQLiteConnection | None = getattr(self._own, "connection", None)
        if connection is None:
            # eventsourcing 9.5.6 (pinned) offers connections only through the pool's
            # checkout, which costs as much as the insert; this is its one private call.
            connection = self._own.connection = self.datastore.pool._create_connection()
            with self._opened_lock:
                self._opened.append(connection)
        return connection

    def close_connections(self) -> None:
        """Closes the writing threads' connections (the pool closes its own)."""
        with self._opened_lock:
            for connection in self._opened:
                connection.close()
            self._opened.clear()

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **_: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        c.executemany(
            self.insert_events_statement,
            [(str(s.originator_id), s.originator_version, s.topic, s.state) for s in stored_events],
        )
        c.execute("SELECT last_insert_rowid()")
        last = int(c.fetchone()[0])
        return list(range(last - len(stored_events) + 1, last + 1))
