"""The tables that make several nodes on one PostgreSQL database one central system.

``csms_nodes``: every running node, renewed like a lease. ``csms_connections``:
which node holds which charge point's socket, with a lease the node renews;
a node that stops renewing loses its charge points when the lease runs out.
``csms_node_messages``: a message between nodes too big for a NOTIFY payload.
Times are the database's (``now()``), so nodes' clocks need not agree.
SQLite has no such tables: one process is the whole central system there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Sequence

# The session-level advisory lock the projections' leader holds (projections/leadership.py), on a connection
# named "csms leader NODE": GET /api/nodes tells the leader from pg_locks.
LEADER_LOCK = int.from_bytes(b"RmLeader", "big")
LEADER_CONNECTION = "csms leader {node}"

NODE_TABLES = (
    "CREATE TABLE IF NOT EXISTS csms_nodes (node_name TEXT PRIMARY KEY,"
    " started_at TIMESTAMPTZ NOT NULL, renewed_at TIMESTAMPTZ NOT NULL)",
    "CREATE TABLE IF NOT EXISTS csms_connections (charge_point_id TEXT PRIMARY KEY, node_name TEXT NOT NULL,"
    " connection_id TEXT NOT NULL, lease_expires_at TIMESTAMPTZ NOT NULL)",
    "CREATE INDEX IF NOT EXISTS csms_connections_node ON csms_connections (node_name)",
    "CREATE TABLE IF NOT EXISTS csms_node_messages (message_id TEXT PRIMARY KEY, body TEXT NOT NULL,"
    " created_at TIMESTAMPTZ NOT NULL DEFAULT now())",
)


def create_node_tables(run: Callable[[str], Any]) -> None:
    """Creates the tables (under the schema lock, as every other table is)."""
    for statement in NODE_TABLES:
        run(statement)


@dataclass(frozen=True)
class Holder:
    """Who holds a charge point's lease: a node and its connection."""

    node: str
    connection_id: str


@dataclass(frozen=True)
class Claim:
    """A claim's outcome: taken (from ``holder``, if anyone held it) or refused (``holder`` has it)."""

    taken: bool
    holder: Holder | None


@dataclass(frozen=True)
class NodeRow:
    name: str
    started_at: datetime
    renewed_at: datetime
    healthy: bool
    charge_point_ids: list[str]
    projections_leader: bool = False


class NodeTables:
    """The statements on those tables, on an async connection of their own (one per node)."""

    def __init__(self, conninfo: str, node: str, lease_seconds: float) -> None:
        self._conninfo = conninfo
        self.node = node
        self._lease = lease_seconds
        self._conn: Any = None

    async def open(self) -> None:
        import psycopg

        self._conn = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, application_name=f"csms leases {self.node}"[:63]
        )

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    async def _rows(self, sql: str, params: dict[str, Any] | Sequence[Any] = ()) -> list[Any]:
        import psycopg

        if self._conn is None or self._conn.closed:
            await self.open()  # the database came back: a fresh connection
        try:
            cursor = await self._conn.execute(sql, params)
        except psycopg.OperationalError:
            if not self._conn.closed:
                raise
            await self.open()  # the connection had broken (every statement here may run again)
            cursor = await self._conn.execute(sql, params)
        return list(await cursor.fetchall()) if cursor.description else []

    def _params(self, **more: Any) -> dict[str, Any]:
        return {"node": self.node, "lease": self._lease, **more}

    async def join(self) -> None:
        """This node is running; leases an earlier process of the same name left are void."""
        await self._rows(
            "INSERT INTO csms_nodes (node_name, started_at, renewed_at) VALUES (%(node)s, now(), now())"
            " ON CONFLICT (node_name) DO UPDATE SET started_at = now(), renewed_at = now()", self._params()
        )
        await self._rows("DELETE FROM csms_connections WHERE node_name = %(node)s", self._params())

    async def leave(self) -> None:
        await self._rows("DELETE FROM csms_connections WHERE node_name = %(node)s", self._params())
        await self._rows("DELETE FROM csms_nodes WHERE node_name = %(node)s", self._params())

    async def renew(self) -> set[tuple[str, str]]:
        """Renews the node and all its leases in one statement; returns the (charge point, connection) it holds."""
        rows = await self._rows(
            "WITH node AS (INSERT INTO csms_nodes (node_name, started_at, renewed_at) VALUES (%(node)s, now(), now())"
            " ON CONFLICT (node_name) DO UPDATE SET renewed_at = now())"
            " UPDATE csms_connections SET lease_expires_at = now() + %(lease)s * interval '1 second'"
            " WHERE node_name = %(node)s RETURNING charge_point_id, connection_id",
            self._params(),
        )
        return {(row[0], row[1]) for row in rows}

    async def claim(self, charge_point_id: str, connection_id: str, taking_from: Holder | None = None) -> Claim:
        """Takes the lease when it is free, expired, ours, or held by ``taking_from``; else names its holder."""
        rows = await self._rows(
            # The subquery sees the row as it was before this statement: who held the lease till now.
            "INSERT INTO csms_connections (charge_point_id, node_name, connection_id, lease_expires_at)"
            " VALUES (%(id)s, %(node)s, %(connection)s, now() + %(lease)s * interval '1 second')"
            " ON CONFLICT (charge_point_id) DO UPDATE SET node_name = excluded.node_name,"
            " connection_id = excluded.connection_id, lease_expires_at = excluded.lease_expires_at"
            " WHERE csms_connections.node_name = %(node)s OR csms_connections.lease_expires_at < now()"
            " OR (csms_connections.node_name = %(from_node)s AND csms_connections.connection_id = %(from_connection)s)"
            " RETURNING (SELECT array[p.node_name, p.connection_id] FROM csms_connections AS p"
            " WHERE p.charge_point_id = %(id)s)",
            self._params(
                id=charge_point_id, connection=connection_id,
                from_node=taking_from.node if taking_from else None,
                from_connection=taking_from.connection_id if taking_from else None,
            ),
        )
        if rows:
            return Claim(True, Holder(*rows[0][0]) if rows[0][0] else None)
        holder = await self.holder(charge_point_id, live_only=False)
        if holder is None:  # released meanwhile
            return await self.claim(charge_point_id, connection_id)
        return Claim(False, holder)

    async def release(self, charge_point_id: str, connection_id: str) -> None:
        await self._rows(
            "DELETE FROM csms_connections WHERE charge_point_id = %(id)s AND node_name = %(node)s"
            " AND connection_id = %(connection)s", self._params(id=charge_point_id, connection=connection_id),
        )

    async def holder(self, charge_point_id: str, live_only: bool = True) -> Holder | None:
        """The node holding the charge point's lease (one still in force, unless ``live_only`` is off)."""
        rows = await self._rows(
            "SELECT node_name, connection_id FROM csms_connections WHERE charge_point_id = %(id)s"
            + (" AND lease_expires_at > now()" if live_only else ""), self._params(id=charge_point_id),
        )
        return Holder(rows[0][0], rows[0][1]) if rows else None

    async def lease_holders(self, charge_point_ids: list[str]) -> dict[str, str]:
        """The node named by each of these charge points' lease rows (in force or expired), if any."""
        rows = await self._rows(
            "SELECT charge_point_id, node_name FROM csms_connections WHERE charge_point_id = ANY(%(ids)s)",
            self._params(ids=charge_point_ids),
        )
        return {row[0]: row[1] for row in rows}

    async def drop_leases_of(self, nodes: list[str]) -> None:
        """The leases of nodes found dead: void (their charge points are recorded offline instead)."""
        await self._rows("DELETE FROM csms_connections WHERE node_name = ANY(%(nodes)s)", self._params(nodes=nodes))

    async def take_expired(self, connection_id: str) -> list[tuple[str, str]]:
        """Takes every expired lease for this node under ``connection_id``: [(charge point, previous node)]."""
        rows = await self._rows(
            "WITH expired AS (SELECT charge_point_id, node_name FROM csms_connections"
            " WHERE lease_expires_at < now() FOR UPDATE SKIP LOCKED)"
            " UPDATE csms_connections AS c SET node_name = %(node)s, connection_id = %(connection)s,"
            " lease_expires_at = now() + %(lease)s * interval '1 second' FROM expired"
            " WHERE c.charge_point_id = expired.charge_point_id RETURNING c.charge_point_id, expired.node_name",
            self._params(connection=connection_id),
        )
        return [(row[0], row[1]) for row in rows]

    async def nodes(self) -> list[NodeRow]:
        """Every node, healthy when it renewed within a lease, with the charge points it holds."""
        rows = await self._rows(
            "SELECT n.node_name, n.started_at, n.renewed_at,"
            " n.renewed_at > now() - %(lease)s * interval '1 second',"
            " coalesce(array_agg(c.charge_point_id ORDER BY c.charge_point_id)"
            " FILTER (WHERE c.lease_expires_at > now()), '{}'),"
            " EXISTS (SELECT 1 FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid"
            "  WHERE l.locktype = 'advisory' AND l.granted AND l.database = a.datid"
            "  AND l.classid::bigint = %(key)s >> 32 AND l.objid::bigint = %(key)s & 4294967295 AND l.objsubid = 1"
            "  AND a.application_name = left(replace(%(leader)s, '{node}', n.node_name), 63))"
            " FROM csms_nodes AS n LEFT JOIN csms_connections AS c ON c.node_name = n.node_name"
            " GROUP BY n.node_name, n.started_at, n.renewed_at ORDER BY n.node_name",
            self._params(key=LEADER_LOCK, leader=LEADER_CONNECTION),
        )
        return [NodeRow(row[0], row[1], row[2], bool(row[3]), list(row[4]), bool(row[5])) for row in rows]

    async def forget_nodes(self, silent_for: float) -> None:
        """Nodes silent for that long (seconds) are gone for good: no longer listed."""
        await self._rows(
            "DELETE FROM csms_nodes AS n WHERE n.renewed_at < now() - %(silent)s * interval '1 second'"
            " AND NOT EXISTS (SELECT 1 FROM csms_connections AS c WHERE c.node_name = n.node_name)",
            self._params(silent=silent_for),
        )
