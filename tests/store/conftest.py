"""Fixtures of the store tests: the read models on a real SQLite file or PostgreSQL database."""

from __future__ import annotations

from typing import Iterator

import pytest

from adapters.store import EventStore
from projections.database import ReadModelDatabase
from projections.runner import TABLES


@pytest.fixture
def read_models(store_url: str) -> Iterator[ReadModelDatabase]:
    store = EventStore(store_url)
    db = ReadModelDatabase(store.config, TABLES)
    try:
        yield db
    finally:
        db.close()
        store.close()
