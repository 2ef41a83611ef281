"""The read-model database: the library's tracking recorder plus our tables.

Each batch of events is applied to the read-model tables and its tracking
position recorded in ONE transaction, so every event counts exactly once,
even across crashes. Read models live in the same database as the events
(a separate in-memory SQLite database for the ``memory:`` store).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Callable, Iterable, Protocol, Sequence

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteDatastore, SQLiteTrackingRecorder

from adapters.store import StoreConfig

TRACKING_NAME = "ReadModels"
ADVISORY_LOCK = int.from_bytes(b"RdModels", "big")  # PostgreSQL's lock key for appliers


class PositionMoved(Exception):
    """Another follower applied events first; the position it left."""

    def __init__(self, position: int) -> None:
        super().__init__(f"the read models are at {position} already")
        self.position = position

# Column types by dialect: timestamps are real timestamps in PostgreSQL and
# ISO 8601 UTC text in SQLite (which sorts and compares correctly).
TYPES = {
    "sqlite": {
        "ts": "TEXT", "money": "TEXT", "bool": "INTEGER", "bigint": "INTEGER", "json": "TEXT",
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "create_view": "CREATE VIEW IF NOT EXISTS",
    },
    "postgresql": {
        "ts": "TIMESTAMPTZ", "money": "NUMERIC", "bool": "BOOLEAN", "bigint": "BIGINT", "json": "JSONB",
        "serial": "BIGSERIAL PRIMARY KEY", "create_view": "CREATE OR REPLACE VIEW",
    },
}


class Reader(Protocol):
    """What a read model's queries need: SQL with ``?`` placeholders, rows as dicts."""

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]: ...


class Sql:
    """One open transaction on the read models, in either dialect.

    SQL is written with ``?`` placeholders; values are converted to what the
    dialect stores (datetimes and decimals as text in SQLite).
    """

    def __init__(self, cursor: Any, dialect: str) -> None:
        # The library wraps sqlite3's cursor; we need the real one's description.
        self.cursor = getattr(cursor, "sqlite_cursor", cursor)
        self.dialect = dialect
        self._deferred: dict[Any, tuple[str, Sequence[Any]]] = {}

    def defer(self, key: Any, sql: str, params: Sequence[Any]) -> None:
        """Runs at the end of the batch; a later statement with the same key replaces it.

        A batch of heartbeats from one charge point then costs one UPDATE, not one each.
        """
        self._deferred.pop(key, None)
        self._deferred[key] = (sql, params)

    def flush(self) -> None:
        for sql, params in self._deferred.values():
            self.run(sql, params)
        self._deferred.clear()

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        if self.dialect == "postgresql":
            sql = sql.replace("?", "%s")
            values = list(params)
        else:
            values = [_sqlite_value(value) for value in params]
        self.cursor.execute(sql, values)
        if self.cursor.description is None:
            return []
        rows = self.cursor.fetchall()
        return [dict(row) for row in rows]

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.run(sql, params)
        return rows[0] if rows else None


# How one event changes a read model, inside the batch's transaction.
Update = Callable[[Any, Sql], None]


# Integers a charge point sends (meter registers, connector and reservation
# ids) are JSON integers of any size; a read-model column holds 64 bits.
BIGINT = range(-(2**63), 2**63)


def storable(value: int | None) -> int | None:
    """The integer as a read model stores it, or None when no column can hold it.

    One value out of range must not stop every read model: the event keeps it.
    """
    return value if value is None or value in BIGINT else None


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # Text compares as time only in one offset: UTC, like PostgreSQL's timestamptz.
        return (value.astimezone(UTC) if value.tzinfo is not None else value).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


class _SQLiteReadModels(SQLiteTrackingRecorder):
    pass


class _RelaxedSQLitePool(SQLiteConnectionPool):
    """Read-model connections commit without fsync (synchronous=NORMAL in WAL).

    Safe because rows and tracking position share each transaction: a crash
    may lose the newest read-model transactions, never split one, and they are
    simply applied again from the events, which are written with full fsync.
    """

    def _create_connection(self) -> SQLiteConnection:
        # eventsourcing 9.5.6 (pinned in setup.cfg) has no public hook for a
        # new connection's pragmas; this override is the only one.
        connection = super()._create_connection()
        connection.cursor().execute("PRAGMA synchronous=NORMAL")
        return connection


class _PostgresReadModels(PostgresTrackingRecorder):
    pass


class ReadModelDatabase:
    def __init__(self, config: StoreConfig, tables: dict[str, str]) -> None:
        self.dialect = "postgresql" if config.kind == "postgresql" else "sqlite"
        self.tables = tables
        self.recorder: Any
        if config.kind == "postgresql":
            env = config.env
            self.datastore: Any = PostgresDatastore(
                env["POSTGRES_DBNAME"],
                env["POSTGRES_HOST"],
                env["POSTGRES_PORT"],
                env["POSTGRES_USER"],
                env["POSTGRES_PASSWORD"],
                pool_size=2,
            )
            self.recorder = _PostgresReadModels(self.datastore)
        else:
            name = config.sqlite_path or f"file:csms_read_models_{uuid.uuid4().hex}?mode=memory&cache=shared"
            self.datastore = SQLiteDatastore(name, lock_timeout=30)
            self.datastore.pool.close()
            self.datastore.pool = _RelaxedSQLitePool(db_name=name, lock_timeout=30)
            self.recorder = _SQLiteReadModels(self.datastore)
        self.recorder.create_table()
        self.create_tables()

    def ddl(self, template: str) -> str:
        return template.format(**TYPES[self.dialect])

    def create_tables(self) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            for template in self.tables.values():
                for statement in self.ddl(template).split(";"):
                    if statement.strip():
                        cursor.execute(statement)

    def drop_tables(self) -> None:
        """Forgets every read model and the position, for a rebuild from event one."""
        with self.datastore.transaction(commit=True) as cursor:
            for name in reversed(list(self.tables)):  # views before the tables they read
                kind = "VIEW" if name.endswith("_view") else "TABLE"
                cursor.execute(f"DROP {kind} IF EXISTS {name}")
            table = "tracking" if self.dialect == "sqlite" else "notification_tracking"
            delete = _placeholders(f"DELETE FROM {table} WHERE application_name = ?", self.dialect)
            cursor.execute(delete, [TRACKING_NAME])

    def position(self) -> int:
        return self.recorder.max_tracking_id(TRACKING_NAME) or 0

    def apply(self, apply_all: Callable[[Sql], None], last_notification_id: int, expected_position: int) -> None:
        """Applies events up to ``last_notification_id`` read after ``expected_position``.

        Raises PositionMoved, changing nothing, when another follower (another
        node on these tables, a rebuild) moved the position meanwhile.
        """
        with self.datastore.transaction(commit=True) as cursor:
            if self.dialect == "postgresql":
                # As for SQLite's pool above: a lost read-model commit is re-applied.
                cursor.execute("SET LOCAL synchronous_commit = off")
            sql = Sql(cursor, self.dialect)
            tracked = self._claim(sql)
            if tracked != expected_position:
                raise PositionMoved(tracked)
            apply_all(sql)
            sql.flush()
            # eventsourcing 9.5.6's public insert_tracking opens a transaction of
            # its own; the rows and the position must share this one.
            self.recorder._insert_tracking(cursor, Tracking(TRACKING_NAME, last_notification_id))

    def _claim(self, sql: Sql) -> int:
        """Takes the read models' write lock; returns the position tracked under it.

        Followers sharing these tables take turns, and the tracking row's
        upsert alone would let a longer batch re-apply a shorter one's events.
        """
        if self.dialect == "postgresql":
            sql.run("SELECT pg_advisory_xact_lock(?)", (ADVISORY_LOCK,))
            table = "notification_tracking"
        else:
            # A write as the first statement: SQLite takes its write lock before reading.
            sql.run("UPDATE tracking SET notification_id = notification_id WHERE application_name = ?",
                    (TRACKING_NAME,))
            table = "tracking"
        row = sql.one(f"SELECT MAX(notification_id) AS position FROM {table} WHERE application_name = ?",
                      (TRACKING_NAME,))
        return int(row["position"] or 0) if row else 0

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self.datastore.transaction(commit=False) as cursor:
            return Sql(cursor, self.dialect).run(sql, list(params))

    def close(self) -> None:
        self.datastore.close()


def _placeholders(sql: str, dialect: str) -> str:
    return sql.replace("?", "%s") if dialect == "postgresql" else sql

