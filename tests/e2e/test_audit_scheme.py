"""The hash chain as docs/audit.md writes it, recomputed without our code.

A real server records a history; the test then reads the raw rows of the
event table with plain SQL (sqlite3, psycopg) and recomputes every event's
`chain_hash` with hashlib and msgpack from the formula the document gives.
Nothing of adapters/store is imported: if the document and the code part
ways, this test says so.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgpack

from tests.conftest import ROOT, Server
from tests.e2e.steps import answered
from tests.ocpp_client import ChargePointClient, Operator, ws_base

AUDIT_DOC = ROOT / "docs" / "audit.md"

# docs/audit.md, "The hash chain", verbatim: the test below computes exactly this.
FORMULA = """\
chain_hash(A, n) = hex( SHA-256( previous  || 0x00 ||
                                 A         || 0x00 ||
                                 str(n)    || 0x00 ||
                                 topic     || 0x00 ||
                                 state ) )"""
GENESIS = ""  # "for version 1 (the genesis) it is the empty string"
CHAIN_FIELD = "chain_hash"
DATETIME, UUID_BYTES, DECIMAL = 1, 2, 3  # the document's extension types
# Enough events on one charge point for the server to take a snapshot ("not chained").
SNAPSHOT_AFTER = 200


def documented_link(previous: str, aggregate_id: str, version: int, topic: str, state: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(previous.encode("ascii"))
    digest.update(b"\x00")
    digest.update(aggregate_id.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(str(version).encode("ascii"))
    digest.update(b"\x00")
    digest.update(topic.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(state)
    return digest.hexdigest()


def unpack(data: bytes) -> Any:
    """Plain msgpack: extension types stay msgpack.ExtType, integer keys stay integers."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def raw_rows(store: str, table: str) -> list[tuple[str, int, str, bytes]]:
    """(aggregate id, version, topic, state) of every row, straight from the database."""
    sql = (f"SELECT originator_id, originator_version, topic, state FROM {table}"
           " ORDER BY originator_id, originator_version")
    if store.startswith("sqlite:///"):
        with sqlite3.connect(store.removeprefix("sqlite:///")) as conn:
            rows = conn.execute(sql).fetchall()
    else:
        import psycopg

        with psycopg.connect(store) as conn:
            rows = conn.execute(sql).fetchall()  # type: ignore[arg-type]
    return [(str(a), int(v), str(t), bytes(s)) for a, v, t, s in rows]


def tables_of(store: str) -> tuple[str, str]:
    """(events, snapshots): the event store's tables in each dialect."""
    if store.startswith("sqlite"):
        return "stored_events", "stored_snapshots"
    return "csms_events", "csms_snapshots"


def extension_values(value: Any) -> list[msgpack.ExtType]:
    if isinstance(value, msgpack.ExtType):
        return [value]
    if isinstance(value, dict):
        return [found for item in value.items() for part in item for found in extension_values(part)]
    if isinstance(value, (list, tuple)):
        return [found for item in value for found in extension_values(item)]
    return []


async def record_history(server: Server) -> None:
    """Every aggregate kind, decimals, datetimes, an answered CSMS call, and a snapshot."""
    async with Operator(server.http) as operator:
        await operator.save_id_tag("CHAIN-TAG", "Accepted", expiry_date="2040-01-01T00:00:00Z")
        await operator.put("/api/tariffs/default", {"pricePerKwh": "0.30", "pricePerMinute": "0.005",
                                                    "sessionFee": "1", "currency": "EUR"})
        await operator.register("CHAIN-A", description="chained")
        await operator.register("CHAIN-B")
        async with ChargePointClient(ws_base(server), "CHAIN-A") as a:
            await a.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "Ledger"})
            await a.call("StatusNotification", {"connectorId": 1, "status": "Charging", "errorCode": "NoError",
                                                "timestamp": "2025-06-01T10:00:00Z"})
            started = await a.call("StartTransaction", {"connectorId": 1, "idTag": "CHAIN-TAG", "meterStart": 10,
                                                        "timestamp": "2025-06-01T10:00:00Z"})
            await a.call("StopTransaction", {"transactionId": started["transactionId"], "meterStop": 9000,
                                             "timestamp": "2025-06-01T11:00:00Z", "reason": "Local"})
            _, (status, _) = await answered(a, operator.command("CHAIN-A", "ClearCache", {}), "ClearCache",
                                            {"status": "Accepted"})
            assert status == 200
        async with ChargePointClient(ws_base(server), "CHAIN-B") as b:
            for _ in range(SNAPSHOT_AFTER):
                await b.call("Heartbeat", {})


async def test_every_stored_link_is_the_documented_digest(store_url, server_factory):
    assert FORMULA in AUDIT_DOC.read_text(), "docs/audit.md's formula changed: change this test with it"
    server = server_factory.start(store_url)
    await record_history(server)
    server.check_output()  # stopped: everything it recorded is in the tables
    events, snapshots = tables_of(store_url)

    rows = raw_rows(store_url, events)
    chains: dict[str, list[int]] = {}
    previous_link: dict[str, str] = {}
    extension_codes: set[int] = set()
    class_versions = 0
    for aggregate_id, version, topic, stored in rows:
        where = f"{aggregate_id} version {version} ({topic})"
        full = unpack(stored)
        # The stored state is the map with chain_hash added as its last key, and msgpack keeps map order:
        # encoding the decoded map again gives the stored bytes.
        assert isinstance(full, dict) and list(full)[-1] == CHAIN_FIELD, where
        assert pack(full) == stored, where
        link = full.pop(CHAIN_FIELD)
        state = pack(full)
        # Every attribute but originator_id and originator_version, timestamp among them.
        assert not {"originator_id", "originator_version"} & set(full), where
        assert full["timestamp"].code == DATETIME, where
        if "class_version" in full:
            class_versions += 1
            assert full["class_version"] > 1 and list(full)[-1] == "class_version", where
        for extension in extension_values(full):
            extension_codes.add(extension.code)
            if extension.code == DATETIME:
                datetime.fromisoformat(extension.data.decode())
            elif extension.code == UUID_BYTES:
                assert len(extension.data) == 16, where
            else:
                assert extension.code == DECIMAL, where
                Decimal(extension.data.decode())

        chains.setdefault(aggregate_id, []).append(version)
        previous = previous_link.get(aggregate_id, GENESIS)
        assert link == documented_link(previous, aggregate_id, version, topic, state), where
        assert len(link) == 64 and link == link.lower(), where
        previous_link[aggregate_id] = link

    # One chain per aggregate, versions 1..n without a gap: every charge point, the registry, the tariff book.
    assert {"CHAIN-A", "CHAIN-B", "idtags", "tariffs"} <= set(chains)
    assert all(versions == list(range(1, len(versions) + 1)) for versions in chains.values())
    # The history exercised what the document describes: datetimes (no event of ours holds a decimal or
    # a UUID today; a snapshot may), class versions above 1.
    assert DATETIME in extension_codes
    assert class_versions > 0
    # Snapshots are not chained.
    taken = raw_rows(store_url, snapshots)
    assert any(aggregate_id == "CHAIN-B" for aggregate_id, *_ in taken)
    assert all(CHAIN_FIELD not in unpack(state) for *_, state in taken)
