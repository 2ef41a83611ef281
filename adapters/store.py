"""The event store: an eventsourcing Application on SQLite, PostgreSQL or memory.

All methods here block; the asyncio side calls them from the group-commit
writer thread or through ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence
from urllib.parse import unquote, urlsplit

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import CanMutateAggregate
from eventsourcing.persistence import IntegrityError, Mapper, StoredEvent, Transcoder
from eventsourcing.utils import resolve_topic

from adapters.audit import ChainingMapper
from adapters.sqlite_recorder import BatchInsertingSQLiteRecorder
from adapters.transcoder import MsgpackTranscoder
from domain.chargepoint import ChargePoint
from domain.idtags import REGISTRY_ID, IdTagRegistry
from domain.records import Snapshot

SNAPSHOT_INTERVAL = 200  # events between snapshots of one aggregate
DEFAULT_STORE = "sqlite:///csms.sqlite3"

ConflictError = IntegrityError  # a concurrent writer got to this version first


class StoreUrlError(ValueError):
    pass


@dataclass(frozen=True)
class StoreConfig:
    url: str
    kind: str  # "sqlite", "postgresql" or "memory"
    env: dict[str, str]
    sqlite_path: str | None = None
    postgres_conninfo: str | None = None


def parse_store_url(url: str) -> StoreConfig:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``postgresql://...``, ``memory:``."""
    common = {"ORIGINATOR_ID_TYPE": "text"}
    if url == "memory:":
        return StoreConfig(url, "memory", {"PERSISTENCE_MODULE": "eventsourcing.popo", **common})
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
        if not path:
            raise StoreUrlError("a SQLite store is sqlite:///relative/path or sqlite:////absolute/path")
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "30",
            "APPLICATION_RECORDER_TOPIC": "adapters.sqlite_recorder:BatchInsertingSQLiteRecorder",
            **common,
        }
        return StoreConfig(url, "sqlite", env, sqlite_path=path)
    if parts.scheme in ("postgresql", "postgres"):
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise StoreUrlError("a PostgreSQL store names its database: postgresql://user@host:port/dbname")
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or os.environ.get("USER", "postgres")),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "APPLICATION_RECORDER_TOPIC": "adapters.postgres_recorder:ArrayInsertingPostgresRecorder",
            **common,
        }
        conninfo = (
            f"host={env['POSTGRES_HOST']} port={env['POSTGRES_PORT']} dbname={dbname} "
            f"user={env['POSTGRES_USER']}" + (f" password={env['POSTGRES_PASSWORD']}" if parts.password else "")
        )
        return StoreConfig(url, "postgresql", env, postgres_conninfo=conninfo)
    raise StoreUrlError(f"unknown store {url!r}: use sqlite:///file, postgresql://... or memory:")


class CentralSystemApplication(Application[str]):
    """The library's application, with msgpack and snapshots."""

    name = "CSMS"
    snapshot_class = Snapshot
    is_snapshotting_enabled = True

    def construct_transcoder(self) -> Transcoder:
        return MsgpackTranscoder()

    def construct_mapper(self) -> Mapper[str]:
        return ChainingMapper(transcoder=self.construct_transcoder())


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    # A plain loop: the library's default projector spends most of a long
    # replay in a type assertion.
    for domain_event in events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


class SideTables:
    """Plain tables beside the events: id sequences and charge point credentials.

    Neither belongs in an event: a password hash must not be replayable
    history, and id blocks are reserved before the events that use them.
    """

    def __init__(self, config: StoreConfig) -> None:
        self._lock = threading.Lock()
        self._postgres = config.kind == "postgresql"
        if self._postgres:
            import psycopg

            self._conn: Any = psycopg.connect(config.postgres_conninfo or "", autocommit=True)
        else:
            path = config.sqlite_path or ":memory:"
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._run(
            "CREATE TABLE IF NOT EXISTS csms_sequences (name TEXT PRIMARY KEY, next_value BIGINT NOT NULL)"
        )
        self._run(
            "CREATE TABLE IF NOT EXISTS csms_credentials"
            " (charge_point_id TEXT PRIMARY KEY, password_hash TEXT NOT NULL)"
        )

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self._postgres:
            sql = sql.replace("?", "%s")
        with self._lock:
            cursor = self._conn.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []

    def reserve_block(self, name: str, size: int) -> range:
        """Reserves ``size`` consecutive values no other node or restart will get."""
        self._run("INSERT INTO csms_sequences (name, next_value) VALUES (?, 1) ON CONFLICT (name) DO NOTHING", (name,))
        rows = self._run(
            "UPDATE csms_sequences SET next_value = next_value + ? WHERE name = ? RETURNING next_value",
            (size, name),
        )
        end = int(rows[0][0])
        return range(end - size, end)

    def password_hash(self, charge_point_id: str) -> str | None:
        rows = self._run("SELECT password_hash FROM csms_credentials WHERE charge_point_id = ?", (charge_point_id,))
        return rows[0][0] if rows else None

    def set_password_hash(self, charge_point_id: str, password_hash: str | None) -> None:
        if password_hash is None:
            self._run("DELETE FROM csms_credentials WHERE charge_point_id = ?", (charge_point_id,))
        else:
            self._run(
                "INSERT INTO csms_credentials (charge_point_id, password_hash) VALUES (?, ?) "
                "ON CONFLICT (charge_point_id) DO UPDATE SET password_hash = excluded.password_hash",
                (charge_point_id, password_hash),
            )

    def close(self) -> None:
        self._conn.close()


SCHEMA_LOCK = int.from_bytes(b"CSMSddl\x00", "big")  # PostgreSQL advisory lock key


@contextlib.contextmanager
def schema_lock(config: StoreConfig) -> Iterator[None]:
    """Serialises creating tables across processes sharing a PostgreSQL database.

    Two nodes (or a node and `csms replay`) starting together would otherwise
    race in CREATE OR REPLACE FUNCTION ("tuple concurrently updated").
    SQLite serialises DDL itself.
    """
    if config.kind != "postgresql":
        yield
        return
    import psycopg

    with psycopg.connect(config.postgres_conninfo or "", autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))


class EventStore:
    """Loads aggregates and commits batches of their events atomically."""

    def __init__(self, url: str) -> None:
        self.config = parse_store_url(url)
        if self.config.sqlite_path:
            directory = os.path.dirname(os.path.abspath(self.config.sqlite_path))
            os.makedirs(directory, exist_ok=True)
        with schema_lock(self.config):
            self.app = CentralSystemApplication(env=self.config.env)
            self.side = SideTables(self.config)
        self.chain: ChainingMapper = self.app.mapper  # type: ignore[assignment]
        self.chain.recorder = self.app.recorder

    def load(self, aggregate_id: str) -> Any | None:
        if self._snapshot_is_stale(aggregate_id):
            # A snapshot taken before the aggregate class changed cannot know
            # what the new class derives from old events: replay them all.
            aggregate = _project(None, self.app.events.get(aggregate_id))
            if aggregate is not None:
                try:
                    self.snapshot(aggregate)
                except IntegrityError:
                    pass  # the stale one holds this version; the next snapshot supersedes it
            return aggregate
        try:
            return self.app.repository.get(aggregate_id, projector_func=_project, deepcopy_from_cache=False)
        except AggregateNotFoundError:
            return None

    def _snapshot_is_stale(self, aggregate_id: str) -> bool:
        if self.app.snapshots is None:
            return False
        latest = list(self.app.snapshots.get(aggregate_id, desc=True, limit=1))
        if not latest:
            return False
        snapshot: Any = latest[0]
        current = getattr(resolve_topic(snapshot.topic), "class_version", 1)
        return bool(snapshot.state.get("class_version", 1) < current)

    def load_charge_point(self, charge_point_id: str) -> ChargePoint | None:
        return self.load(charge_point_id)

    def load_or_create(self, aggregate_id: str, create: Callable[[], Any]) -> Any:
        """Loads a node-wide aggregate, creating (and storing) it on first use."""
        aggregate = self.load(aggregate_id)
        if aggregate is None:
            aggregate = create()
            try:
                self.commit(aggregate.collect_events())
            except ConflictError:  # created a moment ago by another node
                aggregate = self.load(aggregate_id)
        return aggregate

    def load_id_tags(self) -> IdTagRegistry:
        return self.load_or_create(REGISTRY_ID, lambda: IdTagRegistry(id=REGISTRY_ID))

    def commit(self, events: Sequence[CanMutateAggregate[str]]) -> int:
        """Writes the events in one transaction; raises ConflictError on a race.

        Returns the highest notification id written (0 if none), the position
        a reader must reach to see these events.
        """
        return max((notification_id for notification_id, _ in self.commit_recorded(events)), default=0)

    def commit_recorded(self, events: Sequence[CanMutateAggregate[str]]) -> list[tuple[int, Any]]:
        """As commit(), returning each event with the notification id it was stored under."""
        if not events:
            return []
        # Chain hashes are computed while mapping; they become heads only if committed.
        # Mapped and inserted here rather than through the library's EventStore.put,
        # which wraps every event in a Recording and a Notification we would unwrap.
        with self.chain.lock:
            try:
                notification_ids = self.app.recorder.insert_events([self.chain.to_stored_event(e) for e in events])
            except BaseException:
                self.chain.discard()
                raise
            self.chain.confirm()
        return list(zip(notification_ids, events, strict=True)) if notification_ids else []

    def snapshot(self, aggregate: Any) -> None:
        """Stores the aggregate's current state so later loads skip its history."""
        if self.app.snapshots is not None:
            self.app.snapshots.put([Snapshot.take(aggregate)])

    def history(self, aggregate_id: str, after: int = 0, limit: int | None = None) -> Iterator[Any]:
        return iter(self.app.events.get(aggregate_id, gt=after or None, limit=limit))

    def stored_events(self, aggregate_id: str) -> list[StoredEvent]:
        return list(self.app.recorder.select_events(aggregate_id))

    def close(self) -> None:
        self.side.close()
        if isinstance(self.app.recorder, BatchInsertingSQLiteRecorder):
            self.app.recorder.close_connections()
        self.app.close()
