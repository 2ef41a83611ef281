"""Instructions per call: the server's own work, counted, not timed.

``python -m bench.instructions [--calls 300] [--server-root DIR]`` runs
``csms serve`` on a fresh SQLite store under valgrind's callgrind, drives one
charge point through a fixed cycle of the standard mix (6 MeterValues with 10
sampled values, 3 Heartbeat, 1 StatusNotification), one call at a time, and
counts the instructions the server executed for those calls, per thread.

Timings on this machine drift by a quarter within minutes; instruction
counts repeat within about a percent (the read-model follower's, which
batch by the clock, within about ten), so they tell whether a change made
the server do less. They count user-space work only (not the kernel's fsync
or socket writes), and one charge point at a time means one event per group
commit: the per-commit share is larger than under load.

Threads are told apart by what they run: the event loop (frames, validation,
the domain, replies) polls with libuv, the group-commit writer (mapping, the
audit chain, SQLite) hashes with libcrypto, the read-model follower runs
SQLite without hashing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

from bench.ocpp import DEFAULT_ID_TAG, ChargePoint
from bench.run import say
from bench.server import ROOT, Api, ServerProcess, free_port, make_store

CYCLE = ["MeterValues", "Heartbeat", "MeterValues", "StatusNotification", "MeterValues", "Heartbeat",
         "MeterValues", "MeterValues", "Heartbeat", "MeterValues"]
CHARGE_POINT = "BENCH-COUNTED"


def callgrind(pid: int, *args: str) -> None:
    done = subprocess.run(["callgrind_control", *args, str(pid)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"callgrind_control {' '.join(args)}: {done.stdout}{done.stderr}")


def role(text: str, number: str) -> str:
    if "uv__io_poll" in text:
        return "event loop"
    if "libcrypto" in text:
        return "group-commit writer"
    if "libsqlite3" in text:
        return "read-model follower"
    return f"thread {number}"


def thread_totals(out_dir: Path) -> dict[str, int]:
    """Instructions per thread from the first dump's per-thread files (cg.out.1-NN)."""
    totals: dict[str, int] = {}
    for path in sorted(out_dir.glob("cg.out.1-*")):
        text = path.read_text(errors="replace")
        summary = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.MULTILINE)
        if summary is None or int(summary.group(1)) == 0:
            continue
        thread = re.search(r"^thread:\s+(\d+)", text, re.MULTILINE)
        name = role(text, thread.group(1) if thread else path.name)
        totals[name] = totals.get(name, 0) + int(summary.group(1))
    return totals


async def read_models_caught_up(api: Api) -> None:
    """A read of the status read model waits until it holds every commit: the follower is idle after."""
    await api.get("/api/chargepoints")


async def count(opts: argparse.Namespace) -> dict[str, int]:
    out_dir = Path(tempfile.mkdtemp(prefix="csms_callgrind_"))
    store = make_store("sqlite", opts.tmpdir)
    token = secrets.token_urlsafe(16)
    wrapper = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
               f"--callgrind-out-file={out_dir}/cg.out"]
    server = ServerProcess(store, free_port(), token, 300, out_dir / "server.log", root=opts.server_root,
                           wrapper=wrapper)
    random.seed(7)  # the same meter readings every run
    try:
        say("starting csms serve under callgrind (about 15 s)")
        await server.start(timeout=600)
        async with Api(server.http, token) as api:
            await api.put(f"/api/idtags/{DEFAULT_ID_TAG}", {"status": "Accepted"})
            await api.put(f"/api/chargepoints/{CHARGE_POINT}", {"description": "counted"})
        async with aiohttp.ClientSession() as session, Api(server.http, token) as api:
            cp = ChargePoint(server.ws, CHARGE_POINT)
            await cp.connect(session)
            await cp.boot()
            await cp.start_transaction()
            for action in CYCLE * 3:  # warm: every path taken once before counting
                await cp.call(action, cp.payload_for(action))
            await read_models_caught_up(api)  # nothing from before is counted
            callgrind(server.pid, "--instr=on")
            callgrind(server.pid, "--zero")
            for number in range(opts.calls):
                action = CYCLE[number % len(CYCLE)]
                await cp.call(action, cp.payload_for(action))
            await read_models_caught_up(api)  # the last calls' read-model work is counted (and this read)
            callgrind(server.pid, "--dump")
            callgrind(server.pid, "--instr=off")
            await cp.close()
        totals = thread_totals(out_dir)
    finally:
        await server.stop(120)
        store.cleanup()
    say(f"callgrind output in {out_dir}")
    return totals


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=300, help="calls counted (a multiple of 10 keeps the mix exact)")
    p.add_argument("--server-root", type=Path, default=ROOT, help="the checkout whose `python -m app serve` runs")
    p.add_argument("--tmpdir", default=None, help="where the SQLite store's temporary directory goes")
    opts = p.parse_args(argv)
    if opts.calls < 1:
        p.error("--calls must be at least 1")
    totals = asyncio.run(count(opts))
    total = sum(totals.values())
    for name, instructions in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"{name:>12}: {instructions / opts.calls / 1e3:9.1f} k instructions per call")
    print(f"{'server':>12}: {total / opts.calls / 1e3:9.1f} k instructions per call over {opts.calls} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
