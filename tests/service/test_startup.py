"""Starting and stopping the central system (adapters/service/startup.py), in-process.

The aiohttp application runs its cleanup contexts (an AppRunner without a
site: no port, no socket); what a crash left behind is written to the store
before it starts.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, AsyncIterator

import orjson
import pytest
from aiohttp import web

from adapters.ocpp.actor import ChargePointActor
from adapters.ocpp.schemas import Schemas
from adapters.service.authorization import Authorizer
from adapters.service.chargepoints import ChargePoints
from adapters.service.commands import Commands
from adapters.service.connections import Connections
from adapters.service.facts import FactSource
from adapters.service.local_list_sync import LocalListSync
from adapters.service.reservation_timer import ReservationTimer
from adapters.service.sessions import Sessions
from adapters.service.settings import Settings
from adapters.service.shared_aggregate import SharedAggregate
from adapters.service.startup import (
    AUTHORIZER,
    CHARGE_POINTS,
    CLOCK,
    COMMANDS,
    COMMITTER,
    CONNECTIONS,
    FACTS,
    FILES,
    LOCAL_LIST_SYNC,
    READ_MODELS,
    RESERVATION_TIMER,
    SESSIONS,
    STORE,
    TARIFFS,
    TRANSACTION_IDS,
    add_central_system,
)
from adapters.service.transaction_ids import TransactionIds
from adapters.store import EventStore, FileStore, GroupCommitter
from domain.chargepoint import ChargePoint
from domain.timestamps import format_ocpp_time
from projections import reservations, status
from projections.runner import ReadModels
from tests.service.conftest import NOW
from tests.service.fakes import SAFETY, FakeSocket, FrozenClock
from tests.stories import event_names, registered

CP = "CP-1"

RESOURCES: dict[web.AppKey[Any], type] = {
    STORE: EventStore, COMMITTER: GroupCommitter, READ_MODELS: ReadModels, AUTHORIZER: Authorizer,
    TARIFFS: SharedAggregate, TRANSACTION_IDS: TransactionIds, SESSIONS: Sessions, CHARGE_POINTS: ChargePoints,
    CONNECTIONS: Connections, COMMANDS: Commands, FACTS: FactSource, LOCAL_LIST_SYNC: LocalListSync,
    RESERVATION_TIMER: ReservationTimer, FILES: FileStore,
}


@pytest.fixture
def central_system(store_url: str, tmp_path: Path, clock: FrozenClock) -> web.Application:
    app = web.Application()
    add_central_system(app, store_url, Settings(data_dir=str(tmp_path / "files")), clock)
    return app


@asynccontextmanager
async def running(app: web.Application) -> AsyncIterator[web.Application]:
    """The application started (every cleanup context entered) and, on the way out, stopped."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        yield app
    finally:
        await runner.cleanup()


def stored_before_start(store_url: str, *charge_points: ChargePoint) -> None:
    """Written straight to the store, as a central system that crashed left it."""
    store = EventStore(store_url)
    try:
        for cp in charge_points:
            store.commit(cp.collect_events())
    finally:
        store.close()


async def read_models_caught_up(app: web.Application) -> ReadModels:
    models = app[READ_MODELS]
    assert await models.reached(app[COMMITTER].position, timeout=SAFETY)
    return models


def reservation(reservation_id: int, expires_in: timedelta) -> dict[str, Any]:
    return {"connectorId": 1, "expiryDate": format_ocpp_time(NOW + expires_in), "idTag": "TAG-1",
            "reservationId": reservation_id}


async def test_every_resource_is_started_under_its_key_and_stopped(central_system: web.Application) -> None:
    async with running(central_system) as app:  # when started
        started = {key: type(app[key]) for key in RESOURCES}

    assert started == RESOURCES  # then
    with pytest.raises(RuntimeError):  # and once stopped, nothing more is committed
        await central_system[COMMITTER].commit(registered("CP-LATE").collect_events())


async def test_a_charge_point_left_online_by_a_crash_is_offline_once_started(
    central_system: web.Application, store_url: str
) -> None:
    left_online = registered(CP)  # given a charge point whose last event is Connected, and one offline
    left_online.record_connection(remote="10.0.0.1", connected_at=NOW - timedelta(hours=1))
    stored_before_start(store_url, left_online, registered("CP-2"))

    async with running(central_system) as app:  # when the central system starts
        store = app[STORE]
        *_, disconnected = store.history(CP)
        names = {charge_point_id: event_names(store, charge_point_id) for charge_point_id in (CP, "CP-2")}
        online = status.charge_points_online(await read_models_caught_up(app))
        registered_ids = set(app[CHARGE_POINTS].registered)

    assert names == {CP: ["Registered", "Connected", "Disconnected"], "CP-2": ["Registered"]}  # then
    assert (disconnected.reason, disconnected.disconnected_at) == ("central system restarted", NOW)
    assert online == {CP: False, "CP-2": False}
    assert registered_ids == {CP, "CP-2"}


async def test_a_reservation_already_due_is_expired_at_start_up(
    central_system: web.Application, store_url: str, clock: FrozenClock
) -> None:
    holding = registered(CP)  # given a reservation due a minute from NOW and one due in an hour
    assert holding.prepare_call("ReserveNow", reservation(1, timedelta(minutes=1)), NOW) is None
    assert holding.prepare_call("ReserveNow", reservation(2, timedelta(hours=1)), NOW) is None
    stored_before_start(store_url, holding)
    clock.advance(minutes=2)  # and the central system down until two minutes past

    async with running(central_system) as app:  # when it starts
        *_, expired = app[STORE].history(CP)
        listed = reservations.find_reservations(await read_models_caught_up(app), CP)

    assert type(expired).__name__ == "ReservationExpired" and expired.reservation_id == 1  # then only the due one
    assert [(r["reservationId"], r["status"]) for r in listed] == [(1, "Expired"), (2, "Pending")]


async def test_on_stop_a_connected_charge_points_disconnection_is_committed_and_in_the_read_models(
    central_system: web.Application, store_url: str
) -> None:
    socket = FakeSocket()  # given a connected charge point that has said something
    async with running(central_system) as app:
        await app[CHARGE_POINTS].register(CP, description="", password=None)
        actor = ChargePointActor(CP, socket.send, socket.close, charge_points=app[CHARGE_POINTS], facts=app[FACTS],
                                 schemas=Schemas(), call_timeout=SAFETY, clock=app[CLOCK])
        await app[CONNECTIONS].connect(actor, "10.0.0.7")
        await actor.receive(orjson.dumps([2, "beat-1", "Heartbeat", {}]))
        await socket.next_frame()
    # when the central system stopped

    assert socket.closed and actor.gone.is_set()  # then its socket was closed and its end recorded
    store = await asyncio.to_thread(EventStore, store_url)
    models = await asyncio.to_thread(ReadModels, store)  # read models as the stopped node left them
    try:
        assert event_names(store, CP) == ["Registered", "Connected", "HeartbeatReceived", "Disconnected"]
        assert list(store.history(CP))[-1].reason == "central system stopping"
        assert models.position == store.app.recorder.max_notification_id()
        assert status.charge_points_online(models) == {CP: False}
    finally:
        models.stop()
        store.close()
