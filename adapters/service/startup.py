"""Starting and stopping the central system: one aiohttp cleanup context per resource.

Each context starts one resource, puts it in the application under its key,
and stops it on the way out; aiohttp runs them in order and unwinds them in
reverse, so the store outlives the writer, the writer outlives the read
models' last catch-up, and every connection's Disconnected is committed
before any of them stops.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from aiohttp import web

from adapters.security.ca import CertificateAuthority
from adapters.security.csr import read_csr
from adapters.security.firmware_signing import load_signer
from adapters.service.authorization import HELD_EVENTS, Authorizer
from adapters.service.certificate_signing import CertificateSigner
from adapters.service.chargepoints import ChargePoints
from adapters.service.commands import Commands
from adapters.service.connections import Connections
from adapters.service.facts import FactSource
from adapters.service.forwarding import Forwarder
from adapters.service.local_list_sync import LocalListSync
from adapters.service.node_bus import NodeBus
from adapters.service.node_registry import ClusterRegistry, LocalRegistry, NodeRegistry
from adapters.service.passwords import PendingKeys
from adapters.service.reservation_timer import REQUESTED, Place, ReservationTimer
from adapters.service.security_profiles import SecurityProfiles
from adapters.service.sessions import Sessions
from adapters.service.settings import Clock, Settings
from adapters.service.shared_aggregate import SharedAggregate
from adapters.service.signed_images import SignedImages
from adapters.service.transaction_ids import TransactionIds
from adapters.service.upload_tokens import UploadTokens
from adapters.store import EventStore, FileStore, GroupCommitter, NodeChannel, NodeTables
from domain.certificate_facts import CertificateSigning
from domain.idtags import REGISTRY_ID, IdTagRegistry
from domain.tariffs import TARIFF_BOOK_ID, TariffBook
from projections import billing, reservations, status
from projections.leadership import Leadership, LockLeadership
from projections.runner import ReadModels

STORE_URL = web.AppKey("store_url", str)
SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
STORE = web.AppKey("store", EventStore)
COMMITTER = web.AppKey("committer", GroupCommitter)
READ_MODELS = web.AppKey("read_models", ReadModels)
AUTHORIZER = web.AppKey("authorizer", Authorizer)
TARIFFS: web.AppKey[SharedAggregate[TariffBook]] = web.AppKey("tariffs")
TRANSACTION_IDS = web.AppKey("transaction_ids", TransactionIds)
SESSIONS = web.AppKey("sessions", Sessions)
CHARGE_POINTS = web.AppKey("charge_points", ChargePoints)
CONNECTIONS = web.AppKey("connections", Connections)
COMMANDS = web.AppKey("commands", Commands)
FACTS = web.AppKey("facts", FactSource)
LOCAL_LIST_SYNC = web.AppKey("local_list_sync", LocalListSync)
RESERVATION_TIMER = web.AppKey("reservation_timer", ReservationTimer)
FILES = web.AppKey("files", FileStore)
UPLOAD_TOKENS = web.AppKey("upload_tokens", UploadTokens)
CERTIFICATE_SIGNER = web.AppKey("certificate_signer", CertificateSigner)
SECURITY_PROFILES = web.AppKey("security_profiles", SecurityProfiles)
SIGNED_IMAGES = web.AppKey("signed_images", SignedImages)
NODE_REGISTRY: web.AppKey[NodeRegistry] = web.AppKey("node_registry")
FORWARDER: web.AppKey[Forwarder | None] = web.AppKey("forwarder")


def add_central_system(app: web.Application, store_url: str, settings: Settings, clock: Clock) -> None:
    """Configures ``app`` to start the central system on ``store_url`` and stop it in order.

    Raises SigningSetupError when the firmware signing key or certificate cannot be used.
    """
    app[STORE_URL] = store_url
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[FILES] = FileStore(settings.data_dir, settings.max_file_size)
    # Read now, so a key or certificate that cannot sign stops serve before it listens (SigningSetupError).
    signer = load_signer(settings.firmware_signing_key, settings.firmware_signing_cert)
    app[SIGNED_IMAGES] = SignedImages(app[FILES], settings.public_url, signer)
    app.cleanup_ctx.extend([
        event_store, group_commit, read_models, authorization, tariffs, transaction_ids,
        node_registry, charge_points, following_the_store, reservation_timer,
    ])


async def event_store(app: web.Application) -> AsyncIterator[None]:
    store = app[STORE] = await asyncio.to_thread(EventStore, app[STORE_URL])
    yield
    await asyncio.to_thread(store.close)


async def group_commit(app: web.Application) -> AsyncIterator[None]:
    committer = app[COMMITTER] = GroupCommitter(app[STORE], asyncio.get_running_loop())
    yield
    committer.stop()


async def read_models(app: web.Application) -> AsyncIterator[None]:
    # Caught up before anything else starts: they tell who is registered, who
    # is charging and who was left online, without scanning the history.
    config = app[STORE].config
    leadership = (LockLeadership(config.postgres_conninfo, app[SETTINGS].node_name)
                  if config.kind == "postgresql" and config.postgres_conninfo else Leadership())
    models = app[READ_MODELS] = await asyncio.to_thread(ReadModels, app[STORE], leadership)
    await asyncio.to_thread(models.catch_up)
    yield
    # After every connection's Disconnected is committed: a stopped node's
    # read models are complete for analysts.
    await asyncio.to_thread(models.stop)


async def authorization(app: web.Application) -> AsyncIterator[None]:
    id_tags = SharedAggregate(app[STORE], app[COMMITTER], REGISTRY_ID, lambda: IdTagRegistry(id=REGISTRY_ID))
    await id_tags.load()
    authorizer = app[AUTHORIZER] = Authorizer(id_tags)
    authorizer.active.load(await asyncio.to_thread(billing.accepted_open_transactions, app[READ_MODELS]))
    app[COMMITTER].add_listener(authorizer.active.observe)
    app[COMMITTER].add_hold(authorizer.active, HELD_EVENTS)
    # Another node's change to the id tags reaches us through the read models,
    # which follow every node's events.
    app[READ_MODELS].watch(REGISTRY_ID, id_tags.follow, event_topics(IdTagRegistry))
    yield


async def tariffs(app: web.Application) -> AsyncIterator[None]:
    book = app[TARIFFS] = SharedAggregate(app[STORE], app[COMMITTER], TARIFF_BOOK_ID,
                                          lambda: TariffBook(id=TARIFF_BOOK_ID))
    await book.load()
    app[READ_MODELS].watch(TARIFF_BOOK_ID, book.follow, event_topics(TariffBook))
    yield


async def transaction_ids(app: web.Application) -> AsyncIterator[None]:
    ids = app[TRANSACTION_IDS] = TransactionIds(app[STORE].side)
    await ids.start()
    yield


async def node_registry(app: web.Application) -> AsyncIterator[None]:
    """Which node holds which charge point: leases in PostgreSQL shared by every node; on SQLite, this node."""
    settings, config = app[SETTINGS], app[STORE].config
    sessions = app[SESSIONS] = Sessions()
    registry: NodeRegistry
    if config.kind == "postgresql" and config.postgres_conninfo:
        bus = NodeBus(NodeChannel(config.postgres_conninfo, settings.node_name))
        tables = NodeTables(config.postgres_conninfo, settings.node_name, settings.node_lease)
        cluster = ClusterRegistry(tables, bus, settings.node_lease)
        registry, app[FORWARDER] = cluster, Forwarder(cluster, bus)
    else:
        registry, app[FORWARDER] = LocalRegistry(sessions, settings.node_name, app[CLOCK]), None
    app[NODE_REGISTRY] = registry
    await registry.start()
    yield
    # After every connection's Disconnected is committed and its lease released.
    await registry.stop()


async def charge_points(app: web.Application) -> AsyncIterator[None]:
    settings, clock = app[SETTINGS], app[CLOCK]
    sessions, registry, forwarder = app[SESSIONS], app[NODE_REGISTRY], app[FORWARDER]
    known = app[CHARGE_POINTS] = ChargePoints(app[STORE], app[COMMITTER], sessions)
    listed = await asyncio.to_thread(status.charge_points_online, app[READ_MODELS])
    known.registered.update(listed)
    app[COMMITTER].add_listener(known.observe)
    pending_keys = PendingKeys()
    connections = app[CONNECTIONS] = Connections(known, sessions, pending_keys, settings.auto_register, clock,
                                                 cpo_name=settings.cpo_name, registry=registry)
    app[COMMITTER].add_listener(connections.admission.observe)
    commands = app[COMMANDS] = Commands(known, sessions, pending_keys, app[STORE].side, clock,
                                        forwarder.forward if forwarder is not None else None)
    registry.serve(connections.hand_over, connections.let_go, connections.record_gone)
    if forwarder is not None:
        forwarder.serve(commands.send_here)
    app[LOCAL_LIST_SYNC] = LocalListSync(known, commands, app[AUTHORIZER])
    app[SECURITY_PROFILES] = SecurityProfiles(known, commands, settings.tls_served, clock)
    app[UPLOAD_TOKENS] = UploadTokens(app[STORE].side, settings.public_url, clock)
    authority = None
    if settings.ca_cert and settings.ca_key:
        authority = CertificateAuthority(settings.ca_cert, settings.ca_key)
    signer = app[CERTIFICATE_SIGNER] = CertificateSigner(known, sessions, commands, authority, clock)
    app[COMMITTER].add_listener(signer.observe)
    signing = CertificateSigning(read_csr=read_csr, can_sign=authority is not None, cpo_name=settings.cpo_name,
                                 manual_approval=settings.csr_approval == "manual")
    app[FACTS] = FactSource(clock, settings.heartbeat_interval, app[AUTHORIZER], app[TRANSACTION_IDS], signing)
    # Left online by a crash, unless another node holds them (or will sweep a lease that ran out).
    await connections.mark_offline(await registry.orphans(
        [charge_point_id for charge_point_id, online in listed.items() if online]
    ))
    yield
    signer.stop()
    await connections.disconnect_all("central system stopping")
    connections.close()


async def following_the_store(app: web.Application) -> AsyncIterator[None]:
    """From now on the read models follow the store in their own thread."""
    models, committer = app[READ_MODELS], app[COMMITTER]
    # Leader or not before the timers start: they run some work on the leader only.
    await asyncio.to_thread(models.leadership.check)
    models.start(asyncio.get_running_loop())
    committer.add_recorded_listener(models.offer)
    committer.add_listener(models.wake)
    yield


async def reservation_timer(app: web.Application) -> AsyncIterator[None]:
    models, registry = app[READ_MODELS], app[NODE_REGISTRY]

    async def where(charge_point_id: str) -> Place:
        """The node holding the charge point expires its reservations; the leader those of one connected nowhere."""
        holder = await registry.holder(charge_point_id)
        if holder is not None and holder.node == registry.node:
            return Place.HERE
        if not models.leading:
            return Place.ELSEWHERE
        if holder is None:
            return Place.HERE
        still_open = await asyncio.to_thread(reservations.charge_points_holding_open, models, charge_point_id)
        return Place.LATER if still_open else Place.ELSEWHERE

    async def holding_open() -> list[str]:
        return await asyncio.to_thread(reservations.charge_points_holding_open, models)

    timer = app[RESERVATION_TIMER] = ReservationTimer(app[CHARGE_POINTS], app[CLOCK], where,
                                                      retry_elsewhere=app[SETTINGS].node_lease)
    await timer.start(await holding_open())
    app[COMMITTER].add_listener(timer.observe)
    # Another node's reservations: this node may come to hold the charge point, or to lead.
    models.watch_topic(REQUESTED, timer.observe_one)
    models.when_leading(lambda: timer.check_later(holding_open))
    yield
    timer.stop()


def event_topics(aggregate: type) -> list[str]:
    """The topics of an aggregate's events (its nested event classes)."""
    return [value.TOPIC for value in vars(aggregate).values() if isinstance(value, type) and hasattr(value, "TOPIC")]
