"""The composition root and the ``csms`` command line. No business logic here."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
from typing import AsyncIterator, Sequence

from aiohttp import web

from adapters import api, http, websocket
from adapters.central import CentralSystem, Settings
from adapters.store import DEFAULT_STORE, EventStore, StoreUrlError, parse_store_url
from adapters.websocket import CENTRAL

log = logging.getLogger("csms")


def build_app(store_url: str, settings: Settings, api_token: str) -> web.Application:
    app = web.Application(middlewares=[http.errors_as_json, http.bearer_token])
    app[http.API_TOKEN] = api_token

    async def central_system(app: web.Application) -> AsyncIterator[None]:
        store = await asyncio.to_thread(EventStore, store_url)
        central = CentralSystem(store, settings)
        await central.start()
        app[CENTRAL] = central
        yield
        await central.stop()
        await asyncio.to_thread(store.close)

    app.cleanup_ctx.append(central_system)
    websocket.add_routes(app)
    http.add_routes(app, api.ROUTES)
    return app


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
    serve.add_argument("--log-level", default=os.environ.get("CSMS_LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


def serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = args.api_token
    if not token:
        token = secrets.token_urlsafe(32)
        print(f"API token (shown once): {token}", flush=True)
    settings = Settings(
        heartbeat_interval=args.heartbeat_interval,
        call_timeout=args.call_timeout,
        auto_register=args.auto_register,
        ping_interval=args.ping_interval,
        max_frame_size=args.max_frame_size,
    )
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional on odd platforms
        uvloop = None
    try:
        parse_store_url(args.store)
    except StoreUrlError as failure:
        print(f"csms: {failure}", file=sys.stderr)
        return 2
    app = build_app(args.store, settings, token)
    web.run_app(app, host=args.host, port=args.port, print=lambda text: print(text, flush=True),
                loop=uvloop.new_event_loop() if uvloop else None, access_log=None)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
