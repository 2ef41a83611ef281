"""Plain tables beside the events: id sequences, charge point credentials, upload tokens."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any, Sequence

from adapters.store.config import StoreConfig
from adapters.store.node_tables import create_node_tables


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
        self._run(
            "CREATE TABLE IF NOT EXISTS csms_upload_tokens"
            " (token_hash TEXT PRIMARY KEY, charge_point_id TEXT NOT NULL, expires_at BIGINT NOT NULL)"
        )
        if self._postgres:
            create_node_tables(self._run)  # several nodes share a PostgreSQL database only
        # Since GetLog: what a token is for (diagnostics, logs) and what its upload belongs to (JSON).
        self._add_column("csms_upload_tokens", "kind", "TEXT NOT NULL DEFAULT 'diagnostics'")
        self._add_column("csms_upload_tokens", "detail", "TEXT")

    def _add_column(self, table: str, column: str, definition: str) -> None:
        """Adds a column a table created by an older version lacks (several nodes may try at once)."""
        if self._postgres:
            # Looked up first: ALTER TABLE would lock the table against the nodes serving from it.
            if not self._run("SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
                             " AND table_name = ? AND column_name = ?", (table, column)):
                self._run(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {definition}")
            return
        if column in {row[1] for row in self._run(f"PRAGMA table_info({table})")}:
            return
        try:
            self._run(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
        except sqlite3.OperationalError as failure:
            if "duplicate column" not in str(failure):
                raise

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

    def add_upload_token(self, token_hash: str, charge_point_id: str, expires_at: int, now: int,
                         kind: str = "diagnostics", detail: str | None = None) -> None:
        """Keeps an upload token's hash until ``expires_at`` (Unix seconds); expired ones go meanwhile."""
        self._run("DELETE FROM csms_upload_tokens WHERE expires_at <= ?", (now,))
        self._run(
            "INSERT INTO csms_upload_tokens (token_hash, charge_point_id, expires_at, kind, detail)"
            " VALUES (?, ?, ?, ?, ?)",
            (token_hash, charge_point_id, expires_at, kind, detail),
        )

    def upload_token_holder(self, token_hash: str, now: int) -> tuple[str, str, str | None] | None:
        """The charge point, kind and detail of an unexpired upload token with this hash, if any."""
        rows = self._run(
            "SELECT charge_point_id, kind, detail FROM csms_upload_tokens WHERE token_hash = ? AND expires_at > ?",
            (token_hash, now),
        )
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def close(self) -> None:
        self._conn.close()
