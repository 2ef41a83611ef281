"""docs/read-models.md against the tables a real server created.

The test parses the document's tables of columns and types (and its list of
the other tables in the database) and compares them, both ways, with what
`csms serve` created in a real SQLite file and a real PostgreSQL database,
read from the databases' own catalogues (PRAGMA table_info,
information_schema). Nothing of projections/ is imported: the document is
the expectation.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field

from tests.conftest import ROOT, Server
from tests.ocpp_client import ChargePointClient, Operator, ws_base

DOC = ROOT / "docs" / "read-models.md"
DIALECTS = ("SQLite", "PostgreSQL")
# How information_schema.columns.data_type spells the document's PostgreSQL types.
POSTGRES_DATA_TYPE = {
    "TEXT": "text", "INTEGER": "integer", "BIGINT": "bigint", "BOOLEAN": "boolean", "NUMERIC": "numeric",
    "JSONB": "jsonb", "TIMESTAMPTZ": "timestamp with time zone",
}
NAMES = re.compile(r"`([^`]+)`")


@dataclass
class Documented:
    # read model -> column -> {dialect: type}
    read_models: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    # dialect -> table -> columns, for the tables beside the read models
    others: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    # index -> its columns, in order
    indexes: dict[str, list[str]] = field(default_factory=dict)


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Each markdown table in `text` as rows of cells, the header row first, the |---| row left out."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not all(set(cell) <= {"-", ":"} for cell in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def section(text: str, heading: str) -> str:
    """The text under a "## heading" up to the next "## " heading."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def parse(text: str) -> Documented:
    documented = Documented()
    for block in re.split(r"\n### ", section(text, "Tables"))[1:]:
        title = NAMES.match(block)
        if title is None:  # "The tracking position": prose about the library's table, listed below
            continue
        [header, *rows] = markdown_tables(block)[0]
        assert header[:3] == ["column", *DIALECTS], f"{title.group(1)}: unexpected header {header}"
        columns = documented.read_models.setdefault(title.group(1), {})
        for row in rows:
            names = NAMES.findall(row[0])
            types = {dialect: [t.strip() for t in cell.split(",")]
                     for dialect, cell in zip(DIALECTS, row[1:3], strict=True)}
            # One type for every name, or one per name ("TEXT, INTEGER" for `a`, `b`).
            assert names and all(len(spelled) in (1, len(names)) for spelled in types.values()), row
            for index, name in enumerate(names):
                assert name not in columns, f"{title.group(1)}.{name} is documented twice"
                columns[name] = {dialect: spelled[index if len(spelled) > 1 else 0]
                                 for dialect, spelled in types.items()}
    [header, *rows] = markdown_tables(section(text, "Other tables in the database"))[0]
    assert header[1:4] == [*DIALECTS, "columns"], header
    for row in rows:
        common, *only = row[3].split(";")
        for position, dialect in enumerate(DIALECTS, start=1):
            named = NAMES.findall(row[position])
            if not named:
                continue  # none in this dialect (the nodes' tables are PostgreSQL's only)
            [table] = named
            columns = set(NAMES.findall(common))
            columns |= {name for part in only if part.strip().startswith(f"{dialect}:") for name in NAMES.findall(part)}
            documented.others.setdefault(dialect, {})[table] = columns
    for name, columns in re.findall(r"Index `(\w+) \(([^)]*)\)`", text):
        documented.indexes[name] = [column.strip() for column in columns.split(",")]
    return documented


# ---- what the database holds ------------------------------------------------------------------


@dataclass
class Column:
    declared: str  # as the catalogue names the type
    values: set[str]  # SQLite: typeof() of each stored value that is not NULL


Catalogue = dict[str, dict[str, Column]]  # table -> column -> what the database says of it
Indexes = dict[str, tuple[str, list[str]]]  # index (beside primary keys) -> its table and columns


def sqlite_catalogue(path: str) -> tuple[Catalogue, Indexes]:
    with sqlite3.connect(path) as conn:
        tables = [name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'")]
        found: Catalogue = {}
        for table in tables:
            found[table] = {}
            for _, name, declared, *_ in conn.execute(f'PRAGMA table_info("{table}")'):
                values = {kind for (kind,) in conn.execute(
                    f'SELECT DISTINCT typeof("{name}") FROM "{table}" WHERE "{name}" IS NOT NULL')}
                found[table][name] = Column(declared, values)
        indexes = {name: (table, [column for _, _, column in conn.execute(f'PRAGMA index_info("{name}")')])
                   for name, table in conn.execute(
                       "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    return found, indexes


def postgres_catalogue(url: str) -> tuple[Catalogue, Indexes]:
    import psycopg

    with psycopg.connect(url) as conn:
        found: Catalogue = {
            table: {} for (table,) in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        }
        for table, name, data_type in conn.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"):
            found[table][name] = Column(data_type, set())
        indexes: Indexes = {}
        for index, table, column in conn.execute(
                "SELECT i.relname, t.relname, a.attname FROM pg_index x"
                " JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
                " JOIN pg_namespace n ON n.oid = t.relnamespace"
                " CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, position)"
                " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum"
                " WHERE n.nspname = 'public' AND NOT x.indisprimary ORDER BY i.relname, k.position"):
            indexes.setdefault(index, (table, []))[1].append(column)
    return found, indexes


def type_mismatch(dialect: str, documented: str, column: Column) -> str | None:
    if dialect == "PostgreSQL":
        expected = POSTGRES_DATA_TYPE.get(documented)
        if expected is None:
            return f"the document names {documented!r}, not a PostgreSQL type this test knows"
        return None if column.declared == expected else f"documented {documented}, created {column.declared}"
    if column.declared:
        return None if column.declared == documented else f"documented {documented}, created {column.declared}"
    # A view's computed column has no declared type: its values have to be of the documented one.
    if not column.values:
        return "no declared type and no value to judge by"
    return None if column.values == {documented.lower()} else f"documented {documented}, holds {column.values}"


async def one_billed_session(server: Server) -> None:
    """A row in every table the view's type check needs (daily_usage)."""
    async with Operator(server.http) as operator:
        await operator.save_id_tag("DOC-TAG")
        await operator.register("DOC-CP")
        async with ChargePointClient(ws_base(server), "DOC-CP") as cp:
            await cp.call("StatusNotification", {"connectorId": 1, "status": "Charging", "errorCode": "NoError"})
            started = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "DOC-TAG", "meterStart": 0,
                                                         "timestamp": "2030-06-01T10:00:00Z"})
            await cp.call("StopTransaction", {"transactionId": started["transactionId"], "meterStop": 500,
                                              "timestamp": "2030-06-01T11:00:00Z"})


def test_the_document_parses_into_every_read_model_it_describes():
    documented = parse(DOC.read_text())

    assert set(documented.read_models) >= {"cp_status", "billing_transactions", "daily_utilisation_view"}
    assert all(documented.read_models.values())
    assert documented.read_models["reservations"]["reservation_id"] == {"SQLite": "INTEGER", "PostgreSQL": "BIGINT"}
    assert documented.others["SQLite"]["stored_events"] >= {"originator_id", "state"}
    assert "notification_id" in documented.others["PostgreSQL"]["csms_events"]
    assert documented.indexes


async def test_every_documented_column_exists_and_every_created_one_is_documented(store_url, server_factory):
    documented = parse(DOC.read_text())
    server = server_factory.start(store_url)
    await one_billed_session(server)
    server.check_output()  # stopped cleanly: the read models hold every event

    if store_url.startswith("sqlite:///"):
        dialect, (created, indexes) = "SQLite", sqlite_catalogue(store_url.removeprefix("sqlite:///"))
    else:
        dialect, (created, indexes) = "PostgreSQL", postgres_catalogue(store_url)
    problems: list[str] = []
    expected_tables = set(documented.read_models) | set(documented.others[dialect])
    problems += [f"{table}: created, not documented" for table in sorted(set(created) - expected_tables)]
    problems += [f"{table}: documented, not created" for table in sorted(expected_tables - set(created))]
    for table, columns in documented.read_models.items():
        real = created.get(table, {})
        problems += [f"{table}.{name}: created, not documented" for name in real if name not in columns]
        for name, types in columns.items():
            if name not in real:
                problems.append(f"{table}.{name}: documented, not created")
            elif (mismatch := type_mismatch(dialect, types[dialect], real[name])) is not None:
                problems.append(f"{table}.{name}: {mismatch}")
    for table, names in documented.others[dialect].items():
        real_names = set(created.get(table, {}))
        if table in created and real_names != names:
            problems.append(f"{table}: documented columns {sorted(names)}, created {sorted(real_names)}")
    # Indexes beside the primary keys: the documented ones, exactly.
    created_indexes = {name: columns for name, (table, columns) in indexes.items()
                       if table in documented.read_models}
    if created_indexes != documented.indexes:
        problems.append(f"indexes: documented {documented.indexes}, created {created_indexes}")

    assert not problems, "docs/read-models.md and the database part ways:\n" + "\n".join(problems)

