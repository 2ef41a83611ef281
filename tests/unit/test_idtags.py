"""The IdTag registry and the authorization rules (domain/idtags.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.idtags import REGISTRY_ID, IdTagRegistry, IdTagRejected, id_tag_info, start_id_tag_info, tag_view
from tests.stories import replayed

NOW = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)


def empty_registry() -> IdTagRegistry:
    registry = IdTagRegistry(id=REGISTRY_ID)
    registry.collect_events()  # only what a story does is left pending
    return registry


# ---- the registry -------------------------------------------------------------------


def test_a_saved_tag_is_found_whatever_the_case_it_is_asked_in() -> None:
    registry = empty_registry()  # given

    entry = registry.save_tag("AbC-123", "Accepted")  # when

    assert entry == {"idTag": "AbC-123", "status": "Accepted", "maxConcurrentTransactions": 1}  # then
    assert registry.find("abc-123") == registry.find("ABC-123") == entry
    assert registry.find("abc-124") is None


def test_saving_a_tag_again_in_another_case_replaces_it() -> None:
    registry = empty_registry()  # given
    registry.save_tag("ABC", "Accepted")

    registry.save_tag("abc", "Blocked")  # when

    assert list(registry.tags.values()) == [  # then
        {"idTag": "abc", "status": "Blocked", "maxConcurrentTransactions": 1}
    ]


def test_a_saved_tag_keeps_parent_and_expiry_with_the_expiry_in_ocpp_time() -> None:
    registry = empty_registry()  # given

    entry = registry.save_tag("TAG-1", "Accepted", expiry_date="2025-01-01T01:00:00+01:00", parent_id_tag="FLEET")

    assert entry == {  # then: one spelling of time, UTC with milliseconds
        "idTag": "TAG-1", "status": "Accepted", "expiryDate": "2025-01-01T00:00:00.000Z", "parentIdTag": "FLEET",
        "maxConcurrentTransactions": 1,
    }
    saved: Any
    [saved] = registry.collect_events()
    assert type(saved).__name__ == "IdTagSaved" and saved.entry == entry


def test_a_tag_is_deleted_whatever_the_case_and_an_unknown_one_is_no_event() -> None:
    registry = empty_registry()  # given
    registry.save_tag("TAG-1", "Accepted")
    registry.collect_events()

    assert registry.delete_tag("tag-1") is True  # when / then
    assert registry.find("TAG-1") is None
    assert [type(e).__name__ for e in registry.collect_events()] == ["IdTagDeleted"]
    assert registry.delete_tag("TAG-1") is False
    assert registry.collect_events() == []


@pytest.mark.parametrize("id_tag", ["T", "X" * 20])
def test_an_id_tag_of_1_to_20_characters_is_held(id_tag: str) -> None:
    registry = empty_registry()  # given

    registry.save_tag(id_tag, "Accepted")  # when

    assert registry.find(id_tag) is not None  # then


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"id_tag": "", "status": "Accepted"}, "idTag"),
        ({"id_tag": "X" * 21, "status": "Accepted"}, "idTag"),  # CiString20
        ({"id_tag": "TAG-1", "status": "Unknown"}, "status"),
        ({"id_tag": "TAG-1", "status": "ConcurrentTx"}, "status"),  # a verdict, never a registered status
        ({"id_tag": "TAG-1", "status": "accepted"}, "status"),  # OCPP enums are case-sensitive
        ({"id_tag": "TAG-1", "status": "Accepted", "parent_id_tag": ""}, "parentIdTag"),
        ({"id_tag": "TAG-1", "status": "Accepted", "parent_id_tag": "P" * 21}, "parentIdTag"),
        ({"id_tag": "TAG-1", "status": "Accepted", "expiry_date": "next tuesday"}, "expiryDate"),
        ({"id_tag": "TAG-1", "status": "Accepted", "expiry_date": ""}, "expiryDate"),
        ({"id_tag": "TAG-1", "status": "Accepted", "max_concurrent_transactions": 0}, "maxConcurrentTransactions"),
        ({"id_tag": "TAG-1", "status": "Accepted", "max_concurrent_transactions": -1}, "maxConcurrentTransactions"),
        ({"id_tag": "TAG-1", "status": "Accepted", "max_concurrent_transactions": 1.5}, "maxConcurrentTransactions"),
        ({"id_tag": "TAG-1", "status": "Accepted", "max_concurrent_transactions": "2"}, "maxConcurrentTransactions"),
        ({"id_tag": "TAG-1", "status": "Accepted", "max_concurrent_transactions": True}, "maxConcurrentTransactions"),
    ],
    ids=["empty", "21 chars", "unknown status", "ConcurrentTx", "lower case status", "empty parent",
         "long parent", "bad expiry", "empty expiry", "limit 0", "negative limit", "fractional limit",
         "limit as text", "limit as bool"],
)
def test_an_entry_the_registry_cannot_hold_is_rejected_and_changes_nothing(
    fields: dict[str, Any], message: str
) -> None:
    registry = empty_registry()  # given
    registry.save_tag("TAG-1", "Blocked")
    registry.collect_events()

    with pytest.raises(IdTagRejected, match=message):  # when / then
        registry.save_tag(**fields)
    assert registry.collect_events() == []
    assert registry.find("TAG-1") == {"idTag": "TAG-1", "status": "Blocked", "maxConcurrentTransactions": 1}


def test_a_rejection_is_a_value_error() -> None:
    assert issubclass(IdTagRejected, ValueError)


def test_replaying_the_registry_lands_on_the_same_tags() -> None:
    registry = IdTagRegistry(id=REGISTRY_ID)  # given a registry's whole history
    registry.save_tag("TAG-1", "Accepted", expiry_date="2025-01-01T00:00:00Z")
    registry.save_tag("TAG-2", "Blocked", parent_id_tag="TAG-1")
    registry.save_tag("tag-1", "Expired")
    registry.delete_tag("TAG-2")

    events = registry.collect_events()  # when

    assert replayed(events) == registry  # then
    assert registry.tags == {"tag-1": {"idTag": "tag-1", "status": "Expired", "maxConcurrentTransactions": 1}}


@pytest.mark.parametrize("limit", [1, 2, 50, None])
def test_a_tag_records_how_many_transactions_it_may_run_at_once(limit: int | None) -> None:
    registry = empty_registry()  # given

    registry.save_tag("TAG-1", "Accepted", max_concurrent_transactions=limit)  # when

    saved: Any
    [saved] = registry.collect_events()  # then: the event carries it, None being unlimited
    assert saved.entry["maxConcurrentTransactions"] == limit
    assert tag_view(registry.find("tag-1") or {})["maxConcurrentTransactions"] == limit


def test_a_tag_saved_before_the_limit_existed_reads_as_one_transaction_at_a_time() -> None:
    old_entry = {"idTag": "TAG-1", "status": "Accepted"}  # given an IdTagSaved entry from before the limit

    assert tag_view(old_entry) == {"idTag": "TAG-1", "status": "Accepted", "maxConcurrentTransactions": 1}
    assert start_id_tag_info(old_entry, NOW, running=1) == {"status": "ConcurrentTx"}
    assert start_id_tag_info(old_entry, NOW, running=0) == {"status": "Accepted"}


# ---- the authorization rules --------------------------------------------------------


def test_an_unknown_tag_is_invalid() -> None:
    assert id_tag_info(None, NOW) == {"status": "Invalid"}
    assert start_id_tag_info(None, NOW, running=3) == {"status": "Invalid"}


@pytest.mark.parametrize("status", ["Accepted", "Blocked", "Expired", "Invalid"])
def test_a_known_tag_gets_its_registered_status(status: str) -> None:
    assert id_tag_info({"idTag": "T", "status": status}, NOW) == {"status": status}


def test_parent_and_expiry_are_part_of_the_answer() -> None:
    entry = {"idTag": "T", "status": "Accepted", "expiryDate": "2025-01-01T00:00:00.000Z", "parentIdTag": "FLEET"}

    assert id_tag_info(entry, NOW) == {
        "status": "Accepted", "expiryDate": "2025-01-01T00:00:00.000Z", "parentIdTag": "FLEET"
    }


@pytest.mark.parametrize(("expiry", "status"), [
    (NOW - timedelta(seconds=1), "Expired"),
    (NOW, "Expired"),  # expired at the very moment it is asked about
    (NOW + timedelta(seconds=1), "Accepted"),
])
def test_an_accepted_tag_expires_at_its_expiry_date(expiry: datetime, status: str) -> None:
    entry = {"idTag": "T", "status": "Accepted", "expiryDate": expiry.isoformat()}

    assert id_tag_info(entry, NOW)["status"] == status


@pytest.mark.parametrize(("limit", "running", "status"), [
    (1, 0, "Accepted"), (1, 1, "ConcurrentTx"),
    (2, 1, "Accepted"), (2, 2, "ConcurrentTx"), (2, 3, "ConcurrentTx"),
    (None, 0, "Accepted"), (None, 1000, "Accepted"),  # unlimited
])
def test_a_start_is_concurrent_tx_only_beyond_the_tags_limit(limit: int | None, running: int, status: str) -> None:
    entry = {"idTag": "T", "status": "Accepted", "parentIdTag": "FLEET", "maxConcurrentTransactions": limit}

    assert start_id_tag_info(entry, NOW, running) == {"status": status, "parentIdTag": "FLEET"}


@pytest.mark.parametrize(("entry", "status"), [
    ({"idTag": "T", "status": "Blocked"}, "Blocked"),
    ({"idTag": "T", "status": "Accepted", "expiryDate": "2024-01-01T00:00:00Z"}, "Expired"),
])
def test_a_refused_tag_says_why_rather_than_concurrent_tx(entry: dict[str, str], status: str) -> None:
    assert start_id_tag_info(entry, NOW, running=5)["status"] == status


def test_the_tags_own_status_is_never_concurrent_tx() -> None:
    # OCPP 1.6 section 7.2: ConcurrentTx "is only relevant for a StartTransaction.req".
    entry = {"idTag": "T", "status": "Accepted", "maxConcurrentTransactions": 1}

    assert id_tag_info(entry, NOW) == {"status": "Accepted"}


def test_the_answer_is_a_new_dict_so_changing_it_leaves_the_registry_alone() -> None:
    registry = empty_registry()  # given
    entry = registry.save_tag("TAG-1", "Accepted", parent_id_tag="FLEET")

    info = start_id_tag_info(registry.find("TAG-1"), NOW, running=1)  # when
    info["status"] = "Blocked"

    assert registry.find("TAG-1") == entry == {
        "idTag": "TAG-1", "status": "Accepted", "parentIdTag": "FLEET", "maxConcurrentTransactions": 1,
    }
