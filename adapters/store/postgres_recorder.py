"""The PostgreSQL event recorder: a batch is one call of one stored function.

The library sends a batch as an array of a composite type, which psycopg
writes as escaped text in Python (a sixth of the server's CPU under load),
and pipelines four statements per transaction through psycopg's Python
generators. Here four plain arrays (text, bigint, text, bytea) go in binary
to a PL/pgSQL function that does what the library's statements do: take the
table lock that keeps notification ids in commit order, NOTIFY listeners,
insert, and return the notification ids in insert order.
"""

from __future__ import annotations

from typing import Any, Sequence

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier


class ArrayInsertingPostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        # Named after its table: another recorder's table in this schema gets its own.
        self.function_name = f"{self.events_table_name}_insert_batch"
        self.check_identifier_length(self.function_name)
        names = {
            "schema": Identifier(datastore.schema),
            "function": Identifier(self.function_name),
            "table": Identifier(self.events_table_name),
            "id_type": Identifier(datastore.originator_id_type),
            "channel": Identifier(self.channel_name),
        }
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}("
                "ids {id_type}[], versions bigint[], topics text[], states bytea[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ BEGIN "
                "SET LOCAL lock_timeout = '{lock_timeout}s'; "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "NOTIFY {channel}; "
                "RETURN QUERY INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(ids, versions, topics, states) RETURNING notification_id; "
                "END; $BODY$"
            ).format(lock_timeout=datastore.lock_timeout, **names)
        )
        self.insert_from_arrays_statement = SQL(
            "SELECT * FROM {schema}.{function}(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[])"
        ).format(**names)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **_: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(
                self.insert_from_arrays_statement,
                (
                    [str(s.originator_id) for s in stored_events],
                    [s.originator_version for s in stored_events],
                    [s.topic for s in stored_events],
                    [s.state for s in stored_events],
                ),
                prepare=True,
            )
            return [row[self.function_name] for row in cursor.fetchall()]
