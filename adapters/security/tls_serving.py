"""Serving aiohttp on several listeners, TLS among them, with every failed handshake seen.

An SSL server made by ``loop.create_server(ssl=...)`` drops a failed handshake
silently (asyncio and uvloop log it at debug level only), so a refused TLS 1.1
client or an unverifiable client certificate would leave no trace:
``count_failed_handshakes`` counts (HandshakeStats, in /metrics) and logs each.

``serve`` runs the application on its sites (plain and/or TLS) until SIGINT
or SIGTERM, and calls ``on_hangup`` on SIGHUP (the certificates' reload).
"""

from __future__ import annotations

import asyncio
import signal
import ssl
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import web

from adapters.security.tls import HandshakeStats

HANDSHAKES = web.AppKey("tls_handshakes", HandshakeStats)  # absent when no TLS is served


def count_failed_handshakes(context: ssl.SSLContext, stats: HandshakeStats) -> None:
    """Makes every failed handshake on ``context`` counted and logged.

    asyncio and uvloop make each connection's TLS object with ``context.wrap_bio``, which builds the
    context's ``sslobject_class`` (a documented hook of the ssl module); this one sees the handshake's
    outcome before the event loop drops the connection silently.
    """

    class Counted(ssl.SSLObject):
        def do_handshake(self) -> None:
            try:
                super().do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                raise  # the handshake goes on: more bytes are needed
            except ssl.SSLError as failure:
                stats.failed(failure)
                raise

    context.sslobject_class = Counted


@dataclass(frozen=True)
class Listener:
    """One address the server listens on; with a context, TLS."""

    host: str
    port: int
    context: ssl.SSLContext | None = None


def serve(app: web.Application, listeners: list[Listener], stats: HandshakeStats, on_hangup: Callable[[], None],
          print_line: Callable[[str], Any], loop: asyncio.AbstractEventLoop | None, backlog: int,
          shutdown_timeout: float, reuse_port: bool = False) -> None:
    """Runs ``app`` on its listeners until SIGINT or SIGTERM (as aiohttp's run_app does for one).

    ``reuse_port``: the listeners are bound with SO_REUSEPORT, shared with the other workers of ``--workers``.
    """
    loop = loop or asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve(app, listeners, stats, print_line, backlog, shutdown_timeout, reuse_port))
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(stop_signal, main.cancel)
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    try:
        loop.run_until_complete(main)
    except asyncio.CancelledError:
        pass
    finally:
        for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(stop_signal)
        remaining = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in remaining:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*remaining, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _serve(app: web.Application, listeners: list[Listener], stats: HandshakeStats,
                 print_line: Callable[[str], Any], backlog: int, shutdown_timeout: float, reuse_port: bool) -> None:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        for listener in listeners:
            if listener.context is not None:
                count_failed_handshakes(listener.context, stats)
            await web.TCPSite(runner, listener.host, listener.port, ssl_context=listener.context,
                              backlog=backlog, reuse_port=reuse_port or None).start()
        names = ", ".join(sorted(str(site.name) for site in runner.sites))
        print_line(f"======== Running on {names} ========\n(Press CTRL+C to quit)")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
