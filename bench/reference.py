"""Reference servers that put the benchmark's figures in proportion to this machine.

``python -m bench.reference [--seconds 10] [--cps 100] [--repeat 3]`` runs the
throughput scenario's closed loop (``bench.run``'s own load-generator process,
charge points and mix) against two servers that store nothing and prints
calls/s for each:

- ``bare``: aiohttp with uvloop answering canned CALLRESULTs (it reads each
  frame's id and action, nothing more): a ceiling for any Python server on
  this machine, though the load generator is often the limit instead (see
  its client CPU).
- ``ocpp``: an in-memory central system built the usual way on the ``ocpp``
  package (``websockets`` transport, ``@on`` handlers, the package's schema
  validation and payload classes).

The performance issue quoted both for the machine it was written on, so their
figures here say how much faster or slower this machine is.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.loadgen import install_uvloop
from bench.ocpp import DEFAULT_ID_TAG, DEFAULT_MIX
from bench.run import Workers
from bench.server import free_port

CANNED = {
    "BootNotification": {"status": "Accepted", "currentTime": "2026-01-01T00:00:00Z", "interval": 300},
    "Heartbeat": {"currentTime": "2026-01-01T00:00:00Z"},
}  # MeterValues and StatusNotification answer {}


READY = "listening"


def announce() -> None:
    print(READY, flush=True)


def serve_bare(port: int) -> None:
    import orjson
    from aiohttp import web

    async def ocpp(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("ocpp1.6",))
        await ws.prepare(request)
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                frame = orjson.loads(message.data)
                await ws.send_str(orjson.dumps([3, frame[1], CANNED.get(frame[2], {})]).decode())
        return ws

    app = web.Application()
    app.router.add_get("/ocpp/{charge_point_id}", ocpp)
    install_uvloop()
    web.run_app(app, host="127.0.0.1", port=port, print=lambda _: announce())


def serve_ocpp_package(port: int) -> None:
    import websockets
    from ocpp.routing import on
    from ocpp.v16 import ChargePoint as OcppChargePoint
    from ocpp.v16 import call_result
    from ocpp.v16.enums import Action, RegistrationStatus

    def now() -> str:
        return datetime.now(UTC).isoformat()

    class CentralSide(OcppChargePoint):  # type: ignore[misc]
        @on(Action.boot_notification)  # type: ignore[misc]
        def on_boot(self, charge_point_vendor: str, charge_point_model: str, **_: Any) -> Any:
            return call_result.BootNotification(current_time=now(), interval=300, status=RegistrationStatus.accepted)

        @on(Action.heartbeat)  # type: ignore[misc]
        def on_heartbeat(self) -> Any:
            return call_result.Heartbeat(current_time=now())

        @on(Action.meter_values)  # type: ignore[misc]
        def on_meter_values(self, connector_id: int, meter_value: list[Any], **_: Any) -> Any:
            return call_result.MeterValues()

        @on(Action.status_notification)  # type: ignore[misc]
        def on_status(self, connector_id: int, error_code: str, status: str, **_: Any) -> Any:
            return call_result.StatusNotification()

    async def handler(connection: Any) -> None:
        central = CentralSide(connection.request.path.rsplit("/", 1)[-1], connection)
        try:
            await central.start()
        except websockets.ConnectionClosed:
            pass

    async def main() -> None:
        async with websockets.serve(handler, "127.0.0.1", port, subprotocols=["ocpp1.6"]):
            announce()
            await asyncio.Future()

    asyncio.run(main())


SERVERS = {"bare": serve_bare, "ocpp": serve_ocpp_package}


async def closed_loop(url: str, opts: argparse.Namespace) -> tuple[float, float]:
    """Calls/s over the window and the load generator's CPU share: bench.run's own workers and commands."""
    workers = await Workers.start(url, opts.cps, 1, argparse.Namespace(id_tag=DEFAULT_ID_TAG, meter_samples=10))
    try:
        connected = await workers.all("connect", start_at=time.monotonic(), deadline=time.monotonic() + 60)
        if sum(reply["booted"] for reply in connected) != opts.cps:
            raise RuntimeError(f"not every charge point booted: {connected}")
        start_at = time.monotonic() + 0.2
        measure_from = start_at + opts.warmup
        measure_to = measure_from + opts.seconds
        cpu_before = workers.cpu_seconds()
        replies = await workers.all("load", mode="closed", mix=DEFAULT_MIX, rate_per_cp=0.0, start_at=start_at,
                                    measure_from=measure_from, measure_to=measure_to, grace=5.0)
        client_cpu = (workers.cpu_seconds() - cpu_before) / (time.monotonic() - start_at)
    finally:
        await workers.close()
    errors = sum(reply["errors"]["total"] for reply in replies)
    if errors:
        raise RuntimeError(f"{errors} calls failed: {[reply['errors'] for reply in replies]}")
    return sum(reply["counters"]["completed_in_window"] for reply in replies) / opts.seconds, client_cpu


def measure(server: str, opts: argparse.Namespace) -> list[tuple[float, float]]:
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen([sys.executable, "-m", "bench.reference", "--serve", server, "--port", str(port)],
                               cwd=root, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        if process.stdout.readline().strip() != READY:  # it prints READY once listening, or exits
            raise RuntimeError(f"the {server} reference server did not start (exit status {process.wait()})")
        threading.Thread(target=process.stdout.read, daemon=True).start()  # a full pipe would block it
        return [asyncio.run(closed_loop(f"ws://127.0.0.1:{port}", opts)) for _ in range(opts.repeat)]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.reference", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--server", choices=[*SERVERS, "both"], default="both")
    p.add_argument("--cps", type=int, default=100, help="charge points, each one call at a time (one load generator)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured window")
    p.add_argument("--warmup", type=float, default=2.0, help="load before the window, seconds")
    p.add_argument("--repeat", type=int, default=3, help="windows per server; the median is printed")
    p.add_argument("--serve", choices=list(SERVERS), help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.serve:
        SERVERS[opts.serve](opts.port)
        return 0
    install_uvloop()
    print(f"| reference server | CPs | calls/s (median of {opts.repeat}) | runs | client CPU % |")
    print("|---|--:|--:|---|--:|")
    for server in SERVERS if opts.server == "both" else [opts.server]:
        runs = measure(server, opts)
        rates = [rate for rate, _ in runs]
        print(f"| {server} | {opts.cps} | {statistics.median(rates):,.0f} | "
              f"{', '.join(f'{rate:,.0f}' for rate in rates)} | "
              f"{100 * statistics.median(cpu for _, cpu in runs):.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
