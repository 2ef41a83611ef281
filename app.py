"""The composition root and the ``csms`` command line. No business logic here."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import secrets
import ssl
import sys
from dataclasses import replace
from typing import AsyncIterator, Callable, Sequence

import orjson
from aiohttp import web

from adapters.api import MIDDLEWARES, add_api
from adapters.api.views import charge_point_view, event_view
from adapters.ocpp.endpoint import add_endpoint
from adapters.security import ca
from adapters.security.firmware_signing import SigningSetupError
from adapters.security.tls import HandshakeStats, TlsError, TlsFiles, reload, server_context
from adapters.security.tls_serving import HANDSHAKES, Listener
from adapters.security.tls_serving import serve as serve_tls
from adapters.service.settings import PublicUrlError, Settings, default_node_name, public_url, utc_now
from adapters.service.startup import add_central_system
from adapters.service.worker_pool import supervise
from adapters.store import DEFAULT_STORE, EventStore, StoreUrlError, parse_store_url, state_at, stored_events_of, verify
from domain.timestamps import parse_ocpp_time
from projections.runner import ReadModels

log = logging.getLogger("csms")


def settle_garbage_collector() -> None:
    """Keeps the cyclic garbage collector's pauses short once the server is up.

    A full collection walks every tracked object: modules, classes, schemas
    and all, ~14 ms on this class of machine before a single charge point
    connects, 60-120 ms with 1,000 connected: that was the latency tail.
    Start-up objects are frozen out of collections (they live as long as the
    process), and young collections run every 10,000 allocations instead of
    700, so a call's short-lived objects die before one and do not pile up
    in the older generations whose growth triggers the full collections.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 10)


def build_app(store_url: str, settings: Settings, api_token: str) -> web.Application:
    """The server: the central system's resources in start order, then the OCPP endpoint and the API."""
    app = web.Application(middlewares=MIDDLEWARES)
    add_central_system(app, store_url, settings, utc_now)
    add_endpoint(app)
    app.cleanup_ctx.append(settled_garbage_collector)
    add_api(app, api_token)
    return app


async def settled_garbage_collector(app: web.Application) -> AsyncIterator[None]:
    settle_garbage_collector()
    yield


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="csms", description="AmpLedger: an event-sourced OCPP 1.6-J central system")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the central system")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=9000)
    serve.add_argument("--store", default=os.environ.get("CSMS_STORE", DEFAULT_STORE),
                       help="sqlite:///file (default %(default)s), postgresql://user:pass@host:port/db, or memory:")
    serve.add_argument("--api-token", default=os.environ.get("CSMS_API_TOKEN"),
                       help="bearer token for /api (default: generated and printed once)")
    serve.add_argument("--call-timeout", type=float, default=30.0, metavar="SECONDS")
    serve.add_argument("--heartbeat-interval", type=int, default=300, metavar="SECONDS")
    serve.add_argument("--auto-register", action="store_true",
                       help="accept unknown charge points and register them on first connection")
    serve.add_argument("--ping-interval", type=float, default=60.0, metavar="SECONDS",
                       help="WebSocket ping interval that detects dead peers (default %(default)s)")
    serve.add_argument("--max-frame-size", type=int, default=256 * 1024, metavar="BYTES",
                       help="largest accepted WebSocket message (default %(default)s)")
    serve.add_argument("--data-dir", default=os.environ.get("CSMS_DATA_DIR", "csms-files"),
                       help="firmware images and diagnostics uploads (default %(default)s)")
    serve.add_argument("--max-file-size", type=int, default=64 * 1024 * 1024, metavar="BYTES",
                       help="largest firmware image or diagnostics upload (default %(default)s)")
    serve.add_argument("--public-url", default=os.environ.get("CSMS_PUBLIC_URL"), metavar="URL",
                       help="where charge points reach this server, e.g. https://csms.example.com "
                            "(firmware download URLs; default: the listening address)")
    serve.add_argument("--cpo-name", default=os.environ.get("CSMS_CPO_NAME"), metavar="NAME",
                       help="the O charge point certificates must carry (and that CSRs must ask for)")
    serve.add_argument("--ca-cert", metavar="FILE",
                       help="an existing (sub-)CA certificate (with its issuers after it) to sign charge point "
                            "certificates with (default: the built-in one under --data-dir, if made)")
    serve.add_argument("--ca-key", metavar="FILE", help="the private key of --ca-cert")
    serve.add_argument("--csr-approval", choices=("auto", "manual"), default="auto",
                       help="sign accepted CSRs at once, or when an operator approves (default %(default)s)")
    serve.add_argument("--firmware-signing-key", metavar="FILE",
                       help="PEM private key (RSA or EC) that signs firmware images as they are stored")
    serve.add_argument("--firmware-signing-cert", metavar="FILE",
                       help="PEM certificate of that key, sent in SignedUpdateFirmware")
    serve.add_argument("--node-name", default=os.environ.get("CSMS_NODE_NAME"), metavar="NAME",
                       help="this node's name among several on one PostgreSQL database (default host:port:pid)")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="processes sharing the port (SO_REUSEPORT), each a node; above 1 needs PostgreSQL "
                            "(default %(default)s)")
    serve.add_argument("--log-level", default=os.environ.get("CSMS_LOG_LEVEL", "INFO"))
    serve.add_argument("--tls-cert", action="append", default=[], metavar="FILE",
                       help="TLS server certificate (PEM, chain after it); twice for an RSA and an ECDSA one")
    serve.add_argument("--tls-key", action="append", default=[], metavar="FILE",
                       help="its private key (PEM), in the same order as --tls-cert")
    serve.add_argument("--tls-client-ca", action="append", default=[], metavar="FILE",
                       help="CA certificate(s) client certificates may lead to, besides the built-in CA")
    serve.add_argument("--tls-port", type=int, metavar="PORT",
                       help="serve TLS here and plain HTTP/WS on --port (default: TLS on --port)")

    store_option = {"default": os.environ.get("CSMS_STORE", DEFAULT_STORE), "help": "the store, as for serve"}
    replay = commands.add_parser("replay", help="print a charge point's history and state, straight from the store")
    replay.add_argument("charge_point_id")
    replay.add_argument("--at", help="ISO 8601 moment: replay only up to then")
    replay.add_argument("--store", **store_option)

    audit = commands.add_parser("audit", help="check the tamper-evident hash chain of stored events")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser("verify", help="recompute the chain; report the first break")
    verify.add_argument("--chargepoint", help="only this charge point's events")
    verify.add_argument("--store", **store_option)

    authority = commands.add_parser("ca", help="the built-in certificate authority for charge point certificates")
    authority_commands = authority.add_subparsers(dest="ca_command", required=True)
    init = authority_commands.add_parser("init", help="make the CA key and certificate under DATA_DIR/ca")
    init.add_argument("--cpo-name", metavar="NAME", help="the CA's O (and CN prefix)")
    init.add_argument("--data-dir", default=os.environ.get("CSMS_DATA_DIR", "csms-files"),
                      help="as for serve (default %(default)s)")

    projections = commands.add_parser("projections", help="read-model maintenance")
    projection_commands = projections.add_subparsers(dest="projections_command", required=True)
    rebuild = projection_commands.add_parser("rebuild", help="drop every read model and rebuild it from the events")
    rebuild.add_argument("--store", **store_option)
    return parser.parse_args(argv)


def serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        store_kind = parse_store_url(args.store).kind
    except StoreUrlError as failure:
        print(f"csms: {failure}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("csms: --workers is a number of processes, at least 1", file=sys.stderr)
        return 2
    if args.workers > 1 and store_kind != "postgresql":
        print(f"csms: --workers {args.workers} needs a PostgreSQL store (--store postgresql://...): "
              f"the {store_kind} store has one writer and no registry to make processes one central system, "
              "so it runs as one process (leave --workers out)", file=sys.stderr)
        return 2
    token = args.api_token
    if not token:
        token = secrets.token_urlsafe(32)
        print(f"API token (shown once): {token}", flush=True)
    tls_files = None
    if args.tls_cert or args.tls_key:
        if len(args.tls_cert) != len(args.tls_key) or len(args.tls_cert) > 2:
            print("csms: give --tls-cert and --tls-key in pairs, at most two (an RSA and an ECDSA one)",
                  file=sys.stderr)
            return 2
        tls_files = TlsFiles(pairs=tuple(zip(args.tls_cert, args.tls_key, strict=True)),
                             client_cas=(*args.tls_client_ca, *([args.ca_cert] if args.ca_cert else [])),
                             optional_cas=() if args.ca_cert else (os.path.join(args.data_dir, "ca", "ca.crt"),))
    elif args.tls_port is not None or args.tls_client_ca:
        print("csms: --tls-port and --tls-client-ca need --tls-cert and --tls-key", file=sys.stderr)
        return 2
    try:
        tls_context = server_context(tls_files) if tls_files is not None else None
    except TlsError as failure:
        print(f"csms: {failure}", file=sys.stderr)
        return 2
    try:
        base_url = public_url(args.public_url, args.host, args.port,
                              "https" if tls_context is not None and args.tls_port is None else "http")
    except PublicUrlError as failure:
        print(f"csms: {failure}", file=sys.stderr)
        return 2
    try:
        ca_cert, ca_key = certificate_authority_files(args)
    except ca.CaError as failure:
        print(f"csms: {failure}", file=sys.stderr)
        return 2
    try:
        node_lease = float(os.environ.get("CSMS_NODE_LEASE", Settings.node_lease))
        if not 0 < node_lease < 86400:
            raise ValueError
    except ValueError:
        print("csms: CSMS_NODE_LEASE must be a number of seconds above 0", file=sys.stderr)
        return 2
    settings = Settings(
        heartbeat_interval=args.heartbeat_interval,
        call_timeout=args.call_timeout,
        auto_register=args.auto_register,
        ping_interval=args.ping_interval,
        max_frame_size=args.max_frame_size,
        data_dir=args.data_dir,
        max_file_size=args.max_file_size,
        public_url=base_url,
        cpo_name=args.cpo_name,
        ca_cert=ca_cert,
        ca_key=ca_key,
        csr_approval=args.csr_approval,
        tls_served=tls_context is not None,
        firmware_signing_key=args.firmware_signing_key,
        firmware_signing_cert=args.firmware_signing_cert,
        node_name=args.node_name or default_node_name(args.port),
        node_lease=node_lease,  # how long a node's hold on its charge points lasts unrenewed
    )
    if args.workers == 1:
        return run_server(args, settings, token, tls_context, tls_files, lambda text: print(text, flush=True))

    def run_worker(index: int, ready: Callable[[str], None]) -> int:
        name = f"{args.node_name}:w{index}" if args.node_name else default_node_name(args.port)
        return run_server(args, replace(settings, node_name=name), token, tls_context, tls_files, ready,
                          reuse_port=True)

    return supervise(args.workers, run_worker, lambda text: print(text, flush=True),
                     reload_on_hangup=tls_context is not None)


def run_server(args: argparse.Namespace, settings: Settings, token: str, tls_context: ssl.SSLContext | None,
               tls_files: TlsFiles | None, announce: Callable[[str], None], reuse_port: bool = False) -> int:
    """One process serving until SIGINT or SIGTERM; ``announce`` gets the 'Running on' line once it listens."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional on odd platforms
        uvloop = None
    # The group-commit thread wakes from each fsync needing the GIL back; with
    # the default 5 ms switch interval it waits behind the event loop.
    sys.setswitchinterval(0.001)
    try:
        app = build_app(args.store, settings, token)
    except SigningSetupError as failure:
        print(f"csms: {failure}", file=sys.stderr)
        return 2
    loop = uvloop.new_event_loop() if uvloop else None
    if tls_context is not None and tls_files is not None:
        stats = app[HANDSHAKES] = HandshakeStats()
        listeners = [Listener(args.host, args.port, tls_context if args.tls_port is None else None)]
        if args.tls_port is not None:
            listeners.append(Listener(args.host, args.tls_port, tls_context))
        serve_tls(app, listeners, stats, lambda: reload_certificates(tls_context, tls_files, stats),
                  announce, loop, backlog=4096, shutdown_timeout=10, reuse_port=reuse_port)
        return 0
    web.run_app(app, host=args.host, port=args.port, print=announce, loop=loop, access_log=None,
                # A boot storm of thousands of charge points overflows the default 128.
                backlog=4096, shutdown_timeout=10, reuse_port=reuse_port or None)
    return 0


def certificate_authority_files(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """--ca-cert/--ca-key, else the built-in CA when `csms ca init` made one; checked to load (CaError)."""
    if (args.ca_cert is None) != (args.ca_key is None):
        raise ca.CaError("--ca-cert and --ca-key go together")
    if args.ca_cert is None:
        cert_path, key_path = ca.built_in_paths(args.data_dir)
        if not cert_path.exists():
            return None, None
        args.ca_cert, args.ca_key = str(cert_path), str(key_path)
    ca.CertificateAuthority(args.ca_cert, args.ca_key)
    return args.ca_cert, args.ca_key


def init_certificate_authority(args: argparse.Namespace) -> int:
    try:
        cert_path, key_path = ca.init(args.data_dir, args.cpo_name, utc_now())
    except (ca.CaError, OSError) as failure:
        print(f"csms: {failure}", file=sys.stderr)
        return 2
    print(f"CA certificate: {cert_path}\nCA key (mode 0600): {key_path}")
    return 0
def reload_certificates(context: ssl.SSLContext, files: TlsFiles, stats: HandshakeStats) -> None:
    """SIGHUP: the certificate and key files again, into the same context; bad files leave the old ones."""
    try:
        reload(context, files)
    except TlsError as failure:
        stats.reloads["failed"] += 1
        log.error("TLS certificates not reloaded, the previous ones stay in use: %s", failure)
        return
    stats.reloads["ok"] += 1
    log.info("TLS certificates reloaded from %s", ", ".join(certificate for certificate, _ in files.pairs))


def open_store(url: str) -> EventStore:
    try:
        parse_store_url(url)
    except StoreUrlError as failure:
        raise SystemExit(f"csms: {failure}") from None
    return EventStore(url)


def replay(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    try:
        moment = parse_ocpp_time(args.at) if args.at else None
        events = list(store.history(args.charge_point_id))
        if not events:
            print(f"csms: no charge point {args.charge_point_id} in {args.store}", file=sys.stderr)
            return 1
        shown = [event for event in events if moment is None or event.timestamp <= moment]
        for event in shown:
            print(orjson.dumps(event_view(event), default=str).decode())
        aggregate, _ = state_at(events, moment)
        state = charge_point_view(aggregate) if aggregate is not None else None
        print(orjson.dumps({"state": state}, default=str, option=orjson.OPT_INDENT_2).decode())
        return 0
    finally:
        store.close()


def audit_verify(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    try:
        result = verify(stored_events_of(store.app.recorder, args.chargepoint), store.app.mapper)
    finally:
        store.close()
    if result.first_break is not None:
        failure = result.first_break
        print(f"BROKEN: {failure.aggregate_id} version {failure.version}: {failure.reason}")
        return 1
    print(f"OK: {result.events} events in {len(result.aggregates)} chains verified")
    for aggregate_id, head in sorted(result.aggregates.items()):
        print(f"  {aggregate_id} head {head}")
    return 0


def rebuild_projections(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    try:
        read_models = ReadModels(store)
        applied = read_models.rebuild()
        read_models.db.close()
    finally:
        store.close()
    print(f"rebuilt the read models from {applied} events")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "replay":
        return replay(args)
    if args.command == "audit":
        return audit_verify(args)
    if args.command == "projections":
        return rebuild_projections(args)
    if args.command == "ca":
        return init_certificate_authority(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
