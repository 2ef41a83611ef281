"""Where the events live: the store URL, its settings, and DDL across processes."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import unquote, urlsplit

DEFAULT_STORE = "sqlite:///csms.sqlite3"


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
            "APPLICATION_RECORDER_TOPIC": "adapters.store.sqlite_recorder:BatchInsertingSQLiteRecorder",
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
            "APPLICATION_RECORDER_TOPIC": "adapters.store.postgres_recorder:ArrayInsertingPostgresRecorder",
            **common,
        }
        conninfo = (
            f"host={env['POSTGRES_HOST']} port={env['POSTGRES_PORT']} dbname={dbname} "
            f"user={env['POSTGRES_USER']}" + (f" password={env['POSTGRES_PASSWORD']}" if parts.password else "")
        )
        return StoreConfig(url, "postgresql", env, postgres_conninfo=conninfo)
    raise StoreUrlError(f"unknown store {url!r}: use sqlite:///file, postgresql://... or memory:")


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


