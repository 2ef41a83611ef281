"""The service layer in-process, on a real store and a real group-commit writer.

Each fixture is one resource as adapters/service/startup.py builds it; only
the socket is fake (tests/service/fakes.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import AsyncIterator

import pytest

from adapters.service.authorization import Authorizer
from adapters.service.chargepoints import ChargePoints
from adapters.service.facts import FactSource
from adapters.service.passwords import PendingKeys
from adapters.service.sessions import Sessions
from adapters.service.shared_aggregate import SharedAggregate
from adapters.service.transaction_ids import TransactionIds
from adapters.store import EventStore, GroupCommitter
from domain.idtags import REGISTRY_ID, IdTagRegistry
from tests.service.fakes import FrozenClock

NOW = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
HEARTBEAT_INTERVAL = 300


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[EventStore]:
    opened = await asyncio.to_thread(EventStore, store_url)
    yield opened
    await asyncio.to_thread(opened.close)


@pytest.fixture
async def committer(store: EventStore) -> AsyncIterator[GroupCommitter]:
    started = GroupCommitter(store, asyncio.get_running_loop())
    yield started
    started.stop()


@pytest.fixture
def sessions() -> Sessions:
    return Sessions()


@pytest.fixture
def pending_keys() -> PendingKeys:
    return PendingKeys()


@pytest.fixture
def charge_points(store: EventStore, committer: GroupCommitter, sessions: Sessions) -> ChargePoints:
    known = ChargePoints(store, committer, sessions)
    committer.add_listener(known.observe)
    return known


@pytest.fixture
async def facts(store: EventStore, committer: GroupCommitter, clock: FrozenClock) -> FactSource:
    id_tags = SharedAggregate(store, committer, REGISTRY_ID, lambda: IdTagRegistry(id=REGISTRY_ID))
    await id_tags.load()
    transaction_ids = TransactionIds(store.side)
    await transaction_ids.start()
    return FactSource(clock, HEARTBEAT_INTERVAL, Authorizer(id_tags), transaction_ids)
