"""msgpack encoding of events and snapshots (adapters/store/transcoder.py).

What goes into the store must come out equal: tz-aware times, UUIDs, Decimals
(billing), integer dict keys (connector and transaction ids) and any nesting
of them, both in the transcoder alone and through SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.store import EventStore
from adapters.store.transcoder import MsgpackTranscoder, with_entry
from domain.chargepoint import ChargePoint

CEST = timezone(timedelta(hours=2))

EVERYTHING: dict[Any, Any] = {
    "utc": datetime(2024, 3, 4, 10, 0, 0, 123456, tzinfo=UTC),
    "cest": datetime(2024, 7, 1, 12, 30, tzinfo=CEST),
    "id": UUID("12345678-1234-5678-1234-567812345678"),
    "energy": Decimal("1500.000"),
    "cost": Decimal("-0.05"),
    "tiny": Decimal("1E-9"),
    1: {"status": "Charging", 1001: [Decimal("1.5"), {0: "whole charge point"}]},
    -3: None,
    "nested": [[{"at": datetime(2024, 1, 1, tzinfo=UTC), "ids": [UUID(int=7)]}], True, 2.5, b"\x00\xff", ""],
    "big": 2**63 - 1,
}


def round_trip(value: Any) -> Any:
    transcoder = MsgpackTranscoder()
    return transcoder.decode(transcoder.encode(value))


def same(left: Any, right: Any) -> bool:
    """Equal and of the same types all the way down; datetimes also with the same offset."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(
            same(key, next(k for k in right if k == key)) and same(value, right[key]) for key, value in left.items()
        )
    if isinstance(left, list):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, datetime):
        return left == right and left.utcoffset() == right.utcoffset()
    if isinstance(left, Decimal):
        return str(left) == str(right)  # 1500.000 stays 1500.000, not 1500 or 1.5E+3
    return bool(left == right)


# ---- the transcoder alone ---------------------------------------------------------


def test_everything_an_event_holds_comes_back_equal_and_of_the_same_type() -> None:
    decoded = round_trip(EVERYTHING)

    assert decoded == EVERYTHING
    assert same(decoded, EVERYTHING)


def test_an_aware_time_keeps_its_instant_and_its_offset() -> None:
    decoded = round_trip(datetime(2024, 7, 1, 12, 30, tzinfo=CEST))

    assert decoded == datetime(2024, 7, 1, 10, 30, tzinfo=UTC)
    assert decoded.utcoffset() == timedelta(hours=2)


def test_a_value_msgpack_cannot_hold_is_refused_loudly() -> None:
    with pytest.raises(TypeError, match="cannot store"):
        MsgpackTranscoder().encode({"what": object()})


offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=10),
    st.binary(max_size=10),
    st.uuids(),
    st.decimals(allow_nan=False),
    st.datetimes(timezones=offsets),
)
keys = st.one_of(st.integers(min_value=-(2**31), max_value=2**31), st.text(max_size=5))
values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)  # same examples every run
@given(values)
def test_any_nesting_of_storable_values_round_trips(value: Any) -> None:
    assert same(round_trip(value), value)


# ---- through the store ------------------------------------------------------------


def test_stored_events_come_back_with_the_same_values(store_url: str) -> None:
    store = EventStore(store_url)  # given
    try:
        cp = ChargePoint(id="CP-1", description="", auto_registered=False)
        cp.record_call_sent(message_id="c1", action="DataTransfer", request=EVERYTHING, sent_at=EVERYTHING["cest"])
        store.commit(cp.collect_events())

        events: list[Any] = list(store.app.events.get("CP-1"))  # when
        sent = events[-1]

        assert same(sent.request, EVERYTHING)  # then
        assert same(sent.sent_at, EVERYTHING["cest"])
        assert sent.timestamp.tzinfo is not None
    finally:
        store.close()


@settings(max_examples=200)
@given(
    entries=st.dictionaries(
        st.text(max_size=5), st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=5)), max_size=20
    ),
    digest=st.text(max_size=64),
)
def test_an_entry_appended_to_encoded_state_equals_encoding_it_whole(entries: dict[str, Any], digest: str) -> None:
    transcoder = MsgpackTranscoder()
    entries.pop("chain_hash", None)
    assert with_entry(transcoder.encode(entries), "chain_hash", digest) == transcoder.encode(
        {**entries, "chain_hash": digest}
    )


@pytest.mark.parametrize("size", [14, 15, 16, 0xFFFE, 0xFFFF, 0x10000])
def test_appending_crosses_msgpack_map_header_sizes(size: int) -> None:
    transcoder = MsgpackTranscoder()
    entries: dict[Any, Any] = {i: i for i in range(size)}
    expected = transcoder.encode({**entries, "chain_hash": "x", "at": EVERYTHING["utc"]})
    appended = with_entry(with_entry(transcoder.encode(entries), "chain_hash", "x"), "at", EVERYTHING["utc"])
    assert appended == expected
    assert transcoder.decode(appended) == {**entries, "chain_hash": "x", "at": EVERYTHING["utc"]}
