"""An aggregate the whole node shares (id tags, tariffs).

Reads come from memory; operator changes run one at a time on a copy, are
committed, and only then replace what is served. A conflicting write (another
node) reloads and retries.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any, Callable, Generic, TypeVar

from adapters.store import ConflictError, EventStore, GroupCommitter

log = logging.getLogger(__name__)

A = TypeVar("A")
MAX_RETRIES = 5


class SharedAggregate(Generic[A]):
    def __init__(self, store: EventStore, committer: GroupCommitter, aggregate_id: str,
                 create: Callable[[], A]) -> None:
        self._store = store
        self._committer = committer
        self._id = aggregate_id
        self._create = create
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None
        self._wanted = 0  # the newest version known to be stored
        self.current: A

    def _load(self) -> A:
        return self._store.load_or_create(self._id, self._create)

    async def load(self) -> A:
        self.current = await asyncio.to_thread(self._load)
        return self.current

    def follow(self, version: int) -> None:
        """A stored event of this aggregate was seen (perhaps from another node):
        reload if what we serve is older. Called on the event loop."""
        self._wanted = max(self._wanted, version)
        if self._wanted > self.current.version and self._refresh is None:  # type: ignore[attr-defined]
            self._refresh = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        try:
            # Until what we serve is as new as the newest version seen: a version
            # seen while a load was under way is not lost.
            while self._wanted > self.current.version:  # type: ignore[attr-defined]
                async with self._lock:
                    loaded = await asyncio.to_thread(self._load)
                    if loaded.version <= self.current.version:  # type: ignore[attr-defined]
                        break  # the store has nothing newer (yet); the next event wakes us again
                    self.current = loaded
        except Exception:
            log.exception("could not reload %s; serving what we have", self._id)
        finally:
            self._refresh = None

    async def change(self, command: Callable[[A], Any]) -> Any:
        """Runs ``command`` on the aggregate; returns its result once committed."""
        async with self._lock:
            # A copy, so a refused or failed change leaves what we serve intact.
            candidate = copy.deepcopy(self.current)
            for _ in range(MAX_RETRIES):
                result = command(candidate)
                try:
                    await self._committer.commit(candidate.collect_events())  # type: ignore[attr-defined]
                except ConflictError:
                    candidate = await asyncio.to_thread(self._load)
                    continue
                self.current = candidate
                return result
            raise ConflictError(f"{self._id} kept changing; try again")
