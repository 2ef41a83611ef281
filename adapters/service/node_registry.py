"""Which node holds which charge point: one process on SQLite, leases in PostgreSQL for several.

On PostgreSQL a node takes a charge point's lease when it connects
(``claim``), renews all its leases in one statement every RENEWAL seconds,
and releases one when its charge point disconnects. A charge point that
reconnects to another node is handed over: the new node asks the holder to
close its socket and record the disconnection (the holder's Disconnected
comes before the new node's Connected); a holder that does not answer within
RELEASE_WAIT is taken to be dead: the new node records its disconnection
itself and takes the lease. Leases of a node that stopped renewing run out;
any node then records those charge points' disconnection (the sweep), once.
On SQLite (``LocalRegistry``) this process's sessions are the registry.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol

from adapters.service.node_bus import NodeBus, Unanswered
from adapters.service.sessions import Session, Sessions
from adapters.service.settings import Clock, utc_now
from adapters.store import Claim, Holder, Message, NodeRow, NodeTables

log = logging.getLogger(__name__)

LEASE_SECONDS = 15.0  # a node that has not renewed for this long has lost its charge points
RENEWALS_PER_LEASE = 3  # renewed every LEASE_SECONDS / 3 (5 s): two renewals may fail before a lease runs out
RELEASE_WAIT = 2.0  # seconds a node waits for the holder to let a reconnected charge point go
SWEEP_EVERY = RENEWALS_PER_LEASE  # renewals between two looks for expired leases (about one per lease)
FORGET_NODES_AFTER = 3600.0  # seconds after which a silent node holding nothing is no longer listed

HandOver = Callable[[str], Awaitable[None]]
LetGo = Callable[[Session], Awaitable[None]]
RecordGone = Callable[[str, str], Awaitable[None]]


class NodeRegistry(Protocol):
    node: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def serve(self, hand_over: HandOver, let_go: LetGo, record_gone: RecordGone) -> None:
        """What the node does when asked to let a charge point go, when it lost a lease, when one ran out."""

    async def claim(self, session: Session) -> None:
        """Takes the charge point's lease for ``session`` (handed over from another node if need be)."""

    async def release(self, session: Session) -> None: ...

    async def holds(self, session: Session) -> bool:
        """Whether the session's lease is still this node's: else another node took the charge point
        over, and its history goes on there (this node records no more of it)."""

    async def holder(self, charge_point_id: str) -> Holder | None:
        """The node holding a lease in force on the charge point, if any."""

    async def orphans(self, charge_point_ids: list[str]) -> list[str]:
        """Those of these charge points (online in the read models) that no node holds nor will sweep."""

    async def nodes(self) -> list[NodeRow]: ...


class LocalRegistry:
    """One process is the whole central system (SQLite, memory): its sessions are the registry."""

    def __init__(self, sessions: Sessions, node: str = "local", clock: Clock = utc_now) -> None:
        self._sessions = sessions
        self.node = node
        self._now = clock
        self._started = clock()

    async def start(self) -> None:
        self._started = self._now()

    async def stop(self) -> None:
        pass

    def serve(self, hand_over: HandOver, let_go: LetGo, record_gone: RecordGone) -> None:
        pass

    async def claim(self, session: Session) -> None:
        pass

    async def release(self, session: Session) -> None:
        pass

    async def holds(self, session: Session) -> bool:
        return True

    async def holder(self, charge_point_id: str) -> Holder | None:
        return None

    async def orphans(self, charge_point_ids: list[str]) -> list[str]:
        return charge_point_ids

    async def nodes(self) -> list[NodeRow]:
        now = self._now()
        return [NodeRow(self.node, self._started, now, True, sorted(session.id for session in self._sessions))]


@dataclass
class Lease:
    session: Session
    connection_id: str
    claimed: int  # the claim's turn: renewals that began before it cannot have seen it


class ClusterRegistry:
    """Several nodes on one PostgreSQL database (see the module's description)."""

    def __init__(self, tables: NodeTables, bus: NodeBus, lease_seconds: float = LEASE_SECONDS) -> None:
        self._tables = tables
        self._bus = bus
        self.node = tables.node
        self._renewal = lease_seconds / RENEWALS_PER_LEASE
        self._held: dict[str, Lease] = {}
        self._turns = itertools.count(1)
        self._last_turn = 0
        self._sweeping: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None
        self._hand_over: HandOver | None = None
        self._let_go: LetGo | None = None
        self._record_gone: RecordGone | None = None

    async def start(self) -> None:
        await self._tables.open()
        await self._tables.join()
        self._bus.handle("release", self._on_release)
        self._bus.handle("ping", self._on_ping)
        await self._bus.start()
        self._task = asyncio.get_running_loop().create_task(self._keep_leases(), name="lease renewal")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self._tables.leave()
        except Exception as failure:
            log.warning("node %s could not say it is leaving: %s", self.node, failure)
        await self._bus.stop()
        await self._tables.close()

    def serve(self, hand_over: HandOver, let_go: LetGo, record_gone: RecordGone) -> None:
        self._hand_over, self._let_go, self._record_gone = hand_over, let_go, record_gone

    # ---- a charge point connects and goes ------------------------------------------

    async def claim(self, session: Session) -> None:
        charge_point_id = session.id
        sweeping = self._sweeping.get(charge_point_id)
        if sweeping is not None:
            await sweeping.wait()  # its Disconnected first
        connection_id = uuid.uuid4().hex[:16]
        claim = await self._tables.claim(charge_point_id, connection_id)
        while not claim.taken:
            holder = claim.holder
            assert holder is not None
            log.info("%s reconnected to %s; asking %s to let it go", charge_point_id, self.node, holder.node)
            if await self._asked_to_let_go(charge_point_id, holder):
                claim = await self._tables.claim(charge_point_id, connection_id)
            else:
                # Dead or cut off: its Disconnected is recorded here, then the lease taken from it.
                await self._gone(charge_point_id, f"node {holder.node} did not hand the connection over")
                claim = await self._tables.claim(charge_point_id, connection_id, taking_from=holder)
                if claim.taken and claim.holder == holder:
                    claim = Claim(True, None)  # its end is recorded already
        self._last_turn = next(self._turns)
        self._held[charge_point_id] = Lease(session, connection_id, self._last_turn)
        if claim.holder is not None and claim.holder.node != self.node:
            # A lease that ran out was taken over: its node's Disconnected first, if nobody recorded it.
            await self._gone(charge_point_id, f"node {claim.holder.node} stopped renewing its lease")

    async def _asked_to_let_go(self, charge_point_id: str, holder: Holder) -> bool:
        try:
            await self._bus.request(
                holder.node, "release", {"chargePointId": charge_point_id, "connectionId": holder.connection_id},
                acknowledged_within=RELEASE_WAIT, answered_within=RELEASE_WAIT,
            )
            return True
        except Unanswered as failure:
            log.warning("%s: %s", charge_point_id, failure)
            return False

    async def _gone(self, charge_point_id: str, reason: str) -> None:
        if self._record_gone is not None:
            await self._record_gone(charge_point_id, reason)

    async def release(self, session: Session) -> None:
        lease = self._held.get(session.id)
        if lease is None or lease.session is not session:
            return
        del self._held[session.id]
        await self._tables.release(session.id, lease.connection_id)

    async def holds(self, session: Session) -> bool:
        lease = self._held.get(session.id)
        if lease is None or lease.session is not session:
            return True  # never leased (its claim failed): nobody else records its end
        try:
            holder = await self._tables.holder(session.id, live_only=False)
        except Exception as failure:
            log.warning("could not check the lease on %s: %s", session.id, failure)
            return True
        return holder == Holder(self.node, lease.connection_id)

    async def _on_release(self, message: Message) -> Message:
        """Another node has the charge point now: close our socket, record the disconnection, release."""
        charge_point_id, connection_id = str(message.get("chargePointId")), str(message.get("connectionId"))
        lease = self._held.get(charge_point_id)
        if lease is not None and lease.connection_id == connection_id:
            if await self._tables.holder(charge_point_id, live_only=False) == Holder(self.node, connection_id):
                if self._hand_over is not None:
                    await self._hand_over(charge_point_id)
            elif self._let_go is not None:
                # Taken from us already (we answered too late): its history goes on elsewhere.
                self._held.pop(charge_point_id, None)
                await self._let_go(lease.session)
        sweeping = self._sweeping.get(charge_point_id)
        if sweeping is not None:
            await sweeping.wait()
        await self._tables.release(charge_point_id, connection_id)
        return {"released": True}

    # ---- leases kept, lost and run out -------------------------------------------------

    async def _keep_leases(self) -> None:
        for renewal in itertools.count(1):
            await asyncio.sleep(self._renewal)
            try:
                await self._renew()
                if renewal % SWEEP_EVERY == 0:
                    await self._sweep()
            except Exception as failure:
                log.warning("node %s could not renew its leases: %s", self.node, failure)

    async def _renew(self) -> None:
        began = self._last_turn
        held = await self._tables.renew()
        for charge_point_id, lease in list(self._held.items()):
            if lease.claimed <= began and (charge_point_id, lease.connection_id) not in held:
                # Another node took it after our lease ran out: it records the history now.
                log.warning("node %s lost the lease on %s; closing its socket", self.node, charge_point_id)
                if self._held.get(charge_point_id) is lease:
                    del self._held[charge_point_id]
                if self._let_go is not None:
                    await self._let_go(lease.session)

    async def _sweep(self) -> None:
        sweep_id = f"sweep-{uuid.uuid4().hex[:10]}"
        taken = await self._tables.take_expired(sweep_id)
        if taken:
            await asyncio.gather(*(self._sweep_one(charge_point_id, node, sweep_id) for charge_point_id, node in taken))
        await self._tables.forget_nodes(FORGET_NODES_AFTER)

    async def _sweep_one(self, charge_point_id: str, node: str, sweep_id: str) -> None:
        done = self._sweeping[charge_point_id] = asyncio.Event()
        try:
            await self._gone(charge_point_id, f"node {node} stopped renewing its lease")
        except Exception:
            log.exception("could not record the disconnection of %s from node %s", charge_point_id, node)
        finally:
            await self._tables.release(charge_point_id, sweep_id)
            del self._sweeping[charge_point_id]
            done.set()

    # ---- questions -------------------------------------------------------------------

    async def holder(self, charge_point_id: str) -> Holder | None:
        return await self._tables.holder(charge_point_id)

    async def orphans(self, charge_point_ids: list[str]) -> list[str]:
        """Online in the read models, and held by no node that answers: a node that was killed (say, the
        previous process on this host and port) holds nothing, so they are recorded offline at once."""
        holders = await self._tables.lease_holders(charge_point_ids)
        nodes = sorted(set(holders.values()) - {self.node})
        answers = await asyncio.gather(*(self._answers(node) for node in nodes))
        dead = [node for node, answered in zip(nodes, answers, strict=True) if not answered]
        if dead:
            log.warning("node %s: node(s) %s do not answer; their charge points are offline", self.node,
                        ", ".join(dead))
            await self._tables.drop_leases_of(dead)
        return [charge_point_id for charge_point_id in charge_point_ids
                if charge_point_id not in holders or holders[charge_point_id] in dead]

    async def _answers(self, node: str) -> bool:
        try:
            await self._bus.request(node, "ping", {}, acknowledged_within=RELEASE_WAIT, answered_within=RELEASE_WAIT)
            return True
        except Unanswered:
            return False

    async def _on_ping(self, message: Message) -> Message:
        return {}

    async def nodes(self) -> list[NodeRow]:
        return await self._tables.nodes()
