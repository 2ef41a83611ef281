"""The event store on SQLite and PostgreSQL (adapters/store/event_store.py).

Snapshots must load the very state a replay gives, a stale writer must never
overwrite history, and id blocks must never overlap: not across nodes sharing
one database, not across restarts.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, Iterator

import pytest

from adapters.service.transaction_ids import BLOCK_SIZE, TransactionIds
from adapters.store import ConflictError, EventStore, project_events
from domain.answers import ANSWERS
from domain.chargepoint import ChargePoint
from domain.event_bases import Snapshot
from domain.facts import Facts
from domain.idtags import REGISTRY_ID, IdTagRegistry, id_tag_info, start_id_tag_info
from tests.stories import facts_at, loaded, replayed_from_the_event_table, running

NOW = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    opened = EventStore(store_url)
    yield opened
    opened.close()


def a_day_of_charging(cp: ChargePoint, first_transaction_id: int, start_minute: int = 0) -> None:
    """A realistic stretch of history: statuses, a session with kWh meter values, calls."""
    registry = IdTagRegistry(id=REGISTRY_ID)
    registry.save_tag("TAG-1", "Accepted")
    ids = iter(range(first_transaction_id, first_transaction_id + 10))
    facts = Facts(
        now=NOW + timedelta(minutes=start_minute),
        heartbeat_interval=300,
        id_tag_info=lambda tag: id_tag_info(registry.find(tag), NOW),
        allocate_transaction_id=lambda: next(ids),
        start_id_tag_info=lambda tag, _ending: start_id_tag_info(registry.find(tag), NOW, running(cp, tag)),
    )
    started_at = (NOW + timedelta(minutes=start_minute)).isoformat()
    day: list[tuple[str, dict[str, Any]]] = [
        ("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "W2"}),
        ("StatusNotification", {"connectorId": 0, "status": "Available", "errorCode": "NoError"}),
        ("StatusNotification", {"connectorId": 2, "status": "Preparing", "errorCode": "NoError"}),
        ("StartTransaction", {"connectorId": 2, "idTag": "TAG-1", "meterStart": 100, "timestamp": started_at}),
        ("MeterValues", {"connectorId": 2, "transactionId": first_transaction_id, "meterValue": [
            {"timestamp": started_at, "sampledValue": [{"value": "1.234", "unit": "kWh"}]}]}),
        ("StopTransaction", {"transactionId": first_transaction_id, "meterStop": 2000, "timestamp": started_at}),
        ("StartTransaction", {"connectorId": 1, "idTag": "NOBODY", "meterStart": 5, "timestamp": started_at}),
        ("MeterValues", {"connectorId": 1, "transactionId": first_transaction_id + 1, "meterValue": [
            {"timestamp": started_at, "sampledValue": [{"value": "0.5", "unit": "kWh"}]}]}),
    ]
    for action, request in day:
        ANSWERS[action](cp, f"m-{start_minute}-{action}", request, facts)
    cp.record_call_sent(message_id=f"c-{start_minute}", action="ChangeAvailability",
                        request={"connectorId": 2, "type": "Inoperative"}, sent_at=NOW)
    cp.record_call_answer(message_id=f"c-{start_minute}", action="ChangeAvailability",
                          request={"connectorId": 2, "type": "Inoperative"}, reply={"status": "Accepted"},
                          received_at=NOW)
    cp.record_call_answer(message_id=f"g-{start_minute}", action="GetConfiguration", request={},
                          reply={"configurationKey": [{"key": "HeartbeatInterval", "value": "300"}]}, received_at=NOW)


async def settled() -> None:
    """Lets background block refills finish, so none runs against a closed node."""
    others = asyncio.all_tasks() - {asyncio.current_task()}
    await asyncio.gather(*others)


def registered(store: EventStore, charge_point_id: str = "CP-1") -> ChargePoint:
    cp = ChargePoint(id=charge_point_id, description="", auto_registered=False)
    store.commit(cp.collect_events())
    return cp


# ---- snapshots --------------------------------------------------------------------


def test_a_charge_point_loaded_from_a_snapshot_equals_one_replayed_from_all_its_events(store: EventStore) -> None:
    cp = registered(store)  # given a history, a snapshot in its middle, and more history after it
    a_day_of_charging(cp, first_transaction_id=1)
    store.commit(cp.collect_events())
    store.snapshot(cp)
    snapshot_version = cp.version
    a_day_of_charging(cp, first_transaction_id=11, start_minute=60)
    store.commit(cp.collect_events())

    from_snapshot = loaded(store, "CP-1")  # when
    from_events = replayed_from_the_event_table(store, "CP-1")

    assert store.app.snapshots is not None  # then: the load could start from a snapshot
    snapshot: Any
    [snapshot] = list(store.app.snapshots.get("CP-1"))
    assert snapshot.originator_version == snapshot_version < cp.version
    assert from_snapshot == from_events == cp
    # The snapshot alone is the state at its version.
    assert snapshot.mutate(None) == project_events(None, store.app.events.get("CP-1", lte=snapshot_version))
    assert from_snapshot.connectors.keys() == {0, 1, 2}  # integer keys stay integers
    assert set(from_snapshot.open_transactions) == {12}  # 12 on connector 1 ended 2 as stale


def test_a_snapshot_taken_before_an_upgrade_loads_what_a_replay_gives(store: EventStore) -> None:
    cp = registered(store)  # given a firmware update followed before the upgrade
    cp.record_call_sent(message_id="fw", action="UpdateFirmware",
                        request={"location": "http://files.example/fw-2.bin", "retrieveDate": "2024-03-04T10:00:00Z"},
                        sent_at=NOW)
    cp.answer_firmware_status_notification("fs", {"status": "Installed"}, facts_at(NOW))
    store.commit(cp.collect_events())
    # and a snapshot as class_version 1 wrote it: no class_version and none of version 2's attributes
    version_2_only: dict[str, Any] = {}
    ChargePoint.upcast_v1_v2(version_2_only)
    current = Snapshot.take(cp)
    old_state = {k: v for k, v in current.state.items() if k != "class_version" and k not in version_2_only}
    assert store.app.snapshots is not None
    snapshot_class: Any = Snapshot  # a dataclass made by the library's metaclass
    store.app.snapshots.put([snapshot_class(originator_id=cp.id, originator_version=cp.version, timestamp=NOW,
                                            topic=current.topic, state=old_state)])

    from_snapshot = loaded(store, "CP-1")  # when

    assert from_snapshot == replayed_from_the_event_table(store, "CP-1")  # then


def test_history_is_read_oldest_first_a_page_at_a_time(store: EventStore) -> None:
    cp = registered(store)  # given
    a_day_of_charging(cp, first_transaction_id=1)
    store.commit(cp.collect_events())

    page = [e.originator_version for e in store.history("CP-1", after=2, limit=3)]  # when

    assert page == [3, 4, 5]  # then
    assert [e.originator_version for e in store.history("CP-1")] == list(range(1, cp.version + 1))
    assert list(store.history("CP-NOBODY")) == [] and store.load_charge_point("CP-NOBODY") is None


# ---- optimistic concurrency -------------------------------------------------------


def test_the_later_of_two_writers_of_one_charge_point_conflicts_and_overwrites_nothing(store: EventStore) -> None:
    registered(store)  # given two copies of one charge point, both changed
    first, second = loaded(store, "CP-1"), loaded(store, "CP-1")
    first.update_details(description="written first")
    second.update_details(description="written second")
    store.commit(first.collect_events())
    stored_before = store.stored_events("CP-1")

    with pytest.raises(ConflictError):  # when
        store.commit(second.collect_events())

    assert store.stored_events("CP-1") == stored_before  # then
    assert loaded(store, "CP-1").description == "written first"
    with pytest.raises(ConflictError):  # registering the id again is a writer behind the store too
        registered(store, "CP-1")
    assert store.stored_events("CP-1") == stored_before


def test_a_batch_with_one_stale_charge_point_stores_none_of_its_events(store: EventStore) -> None:
    registered(store, "CP-1")  # given a fresh change of CP-2 and a stale change of CP-1
    registered(store, "CP-2")
    stale, winner, fresh = loaded(store, "CP-1"), loaded(store, "CP-1"), loaded(store, "CP-2")
    winner.update_details(description="winner")
    store.commit(winner.collect_events())
    stale.update_details(description="stale")
    fresh.update_details(description="fresh")

    with pytest.raises(ConflictError):  # when both go in one transaction
        store.commit([*fresh.collect_events(), *stale.collect_events()])

    assert loaded(store, "CP-2").description == ""  # then: all or nothing
    assert loaded(store, "CP-1").description == "winner"


# ---- id blocks: never the same id twice -------------------------------------------


def test_two_nodes_and_a_restart_reserve_disjoint_blocks(store_url: str) -> None:
    node_a, node_b = EventStore(store_url), EventStore(store_url)  # given two nodes on one database
    try:
        blocks = [  # when they take turns
            node.side.reserve_block("transaction_id", 100) for node in (node_a, node_b, node_b, node_a)
        ]
        other = node_b.side.reserve_block("other_sequence", 10)
    finally:
        node_a.close()
        node_b.close()
    restarted = EventStore(store_url)  # and one starts again
    try:
        blocks.append(restarted.side.reserve_block("transaction_id", 100))
    finally:
        restarted.close()

    handed_out = [value for block in blocks for value in block]  # then
    assert all(len(block) == 100 for block in blocks)
    assert len(set(handed_out)) == len(handed_out) == 500
    assert min(handed_out) >= 1
    assert blocks[-1].start >= max(block.stop for block in blocks[:-1])  # after all it reserved before
    assert other == range(1, 11)  # each sequence counts on its own


def test_blocks_reserved_concurrently_by_two_nodes_never_overlap(store_url: str) -> None:
    nodes = [EventStore(store_url), EventStore(store_url)]  # given two nodes, four threads each
    blocks: list[range] = []
    lock = threading.Lock()

    def reserve(node: EventStore) -> None:
        for _ in range(25):
            block = node.side.reserve_block("transaction_id", 7)
            with lock:
                blocks.append(block)

    threads = [threading.Thread(target=reserve, args=(node,)) for node in nodes for _ in range(4)]
    try:
        for thread in threads:  # when
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for node in nodes:
            node.close()

    handed_out = [value for block in blocks for value in block]  # then
    assert len(blocks) == 200
    assert sorted(handed_out) == list(range(1, 1 + 200 * 7))  # disjoint and nothing skipped


async def test_transaction_ids_are_unique_across_nodes_and_restarts(store_url: str) -> None:
    node_a, node_b = EventStore(store_url), EventStore(store_url)  # given two running nodes
    ids_a, ids_b = TransactionIds(node_a.side), TransactionIds(node_b.side)
    await ids_a.start()
    await ids_b.start()

    handed_out = [ids.allocate() for _ in range(BLOCK_SIZE + 30) for ids in (ids_a, ids_b)]  # when
    await settled()
    node_a.close()
    restarted = EventStore(store_url)
    ids_restarted = TransactionIds(restarted.side)
    await ids_restarted.start()
    handed_out += [ids_restarted.allocate() for _ in range(10)]
    await settled()
    node_b.close()
    restarted.close()

    assert len(set(handed_out)) == len(handed_out)  # then


async def test_a_burst_of_transactions_reserves_inline_a_few_times_and_the_blocks_grow(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    node = EventStore(store_url)  # given a node with its first block
    ids = TransactionIds(node.side)
    await ids.start()

    burst = [ids.allocate() for _ in range(1_000)]  # when 1,000 start before the loop gets to refill

    def inline_reservations() -> list[str]:
        return [record.getMessage() for record in caplog.records if "reserving" in record.getMessage()]

    assert len(inline_reservations()) == 3  # then blocks of 200, 400 and 800, not nine of 100
    assert ids.block_size == 800
    longer = [ids.allocate() for _ in range(20_000)]  # and a longer burst grows them only up to the cap
    assert [message.split()[-2] for message in inline_reservations()] == [
        "200", "400", "800", "1600", "3200", "6400", "6400", "6400"
    ]
    await settled()
    node.close()
    assert len(set(burst + longer)) == 21_000


# ---- beside the events: credentials and the registry ----------------------------


def test_credentials_and_the_id_tag_registry_are_shared_by_nodes_and_survive_restarts(store_url: str) -> None:
    node_a = EventStore(store_url)  # given a node that stored a password and an id tag, then stopped
    node_a.side.set_password_hash("CP-1", "hash-1")
    node_a.side.set_password_hash("CP-1", "hash-2")
    registry = node_a.load_or_create(REGISTRY_ID, lambda: IdTagRegistry(id=REGISTRY_ID))
    registry.save_tag("TAG-1", "Blocked", max_concurrent_transactions=None)
    node_a.commit(registry.collect_events())
    node_a.close()

    node_b = EventStore(store_url)  # when another node starts
    try:
        found = node_b.load_or_create(REGISTRY_ID, lambda: IdTagRegistry(id=REGISTRY_ID))
        assert node_b.side.password_hash("CP-1") == "hash-2"  # then: the latest hash, once
        assert node_b.side.password_hash("CP-2") is None
        node_b.side.set_password_hash("CP-1", None)
        assert node_b.side.password_hash("CP-1") is None
    finally:
        node_b.close()
    assert found.find("tag-1") == {"idTag": "TAG-1", "status": "Blocked", "maxConcurrentTransactions": None}
    assert found.version == 2  # the registry was created once, not again by node b


def test_each_committed_event_is_told_the_notification_id_it_was_stored_under(store: EventStore) -> None:
    first, second = ChargePoint(id="CP-A", description="", auto_registered=False), ChargePoint(
        id="CP-B", description="", auto_registered=False
    )  # given two charge points with several events each, committed as one batch
    for cp in (first, second):
        for number in range(3):
            cp.answer_heartbeat(f"{cp.id}-{number}", {}, facts_at(NOW))

    recorded = store.commit_recorded([*first.collect_events(), *second.collect_events()])  # when

    stored = store.app.recorder.select_notifications(start=1, limit=100)  # then: ids and events agree
    by_id = {n.id: (n.originator_id, n.originator_version) for n in stored}
    assert [by_id[notification_id] for notification_id, _ in recorded] == [
        (event.originator_id, event.originator_version) for _, event in recorded
    ]
    assert len({notification_id for notification_id, _ in recorded}) == 8


def test_writing_threads_keep_their_own_sqlite_connection_until_the_store_closes(tmp_path: Any) -> None:
    store = EventStore(f"sqlite:///{tmp_path / 'csms.sqlite3'}")
    recorder: Any = store.app.recorder
    committed: list[int] = []

    def commit(charge_point_id: str) -> None:
        for number in range(3):
            cp = ChargePoint(id=f"{charge_point_id}-{number}", description="", auto_registered=False)
            committed.append(store.commit(cp.collect_events()))

    writers = [threading.Thread(target=commit, args=(name,)) for name in ("CP-A", "CP-B")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    connections = list(recorder._opened)

    assert sorted(committed) == list(range(1, 7))  # every commit, each its own notification id
    assert len(connections) == 2  # one per writing thread, reused for its three commits
    store.close()
    assert recorder._opened == []
    with pytest.raises(Exception, match="closed"):
        connections[0]._sqlite_conn.execute("SELECT 1")


def test_sqlite_commits_on_a_connection_with_synchronous_full_in_wal_mode(tmp_path: Any) -> None:
    store = EventStore(f"sqlite:///{tmp_path / 'durable.sqlite3'}")  # given a SQLite store
    try:
        cp = ChargePoint(id="CP-SYNC", description="", auto_registered=False)
        store.commit(cp.collect_events())  # when it commits, on the connection its writer keeps

        connection = store.app.recorder._connection()  # type: ignore[attr-defined]
        with connection.transaction(commit=False) as cursor:
            cursor.execute("PRAGMA synchronous")
            synchronous = cursor.fetchone()[0]
            cursor.execute("PRAGMA journal_mode")
            journal_mode = cursor.fetchone()[0]
    finally:
        store.close()

    assert (synchronous, journal_mode) == (2, "wal")  # then: FULL, so a commit is on disk when answered (README)
